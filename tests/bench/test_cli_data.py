"""`kaleido-bench data build`: a thin command over `kaleido.data.build`; bad input is one line, exit 2."""

from __future__ import annotations

import json

import numpy as np


def test_data_build_names_the_missing_model_and_its_download(tmp_path, run_cli, monkeypatch):
    from kaleido_bench.kaleido.data.video import write_mp4

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    (tmp_path / "clips").mkdir()
    write_mp4(tmp_path / "clips" / "a.mp4", np.zeros((4, 32, 32, 3), dtype=np.uint8))
    code, _, err = run_cli(
        "data", "build", "--input", str(tmp_path / "clips"), "--out", str(tmp_path / "ds")
    )
    assert code == 2
    assert "hf download Qwen/Qwen2.5-VL-7B-Instruct" in err and "Traceback" not in err


def test_data_build_refuses_a_missing_input_and_an_unknown_config_option(tmp_path, run_cli):
    code, _, err = run_cli(
        "data", "build", "--input", str(tmp_path / "nope"), "--out", str(tmp_path / "ds")
    )
    assert code == 2 and "does not exist" in err
    (tmp_path / "clips").mkdir()
    (tmp_path / "bad.json").write_text(json.dumps({"mix": {"cutouts": 1}}))
    code, _, err = run_cli("data", "build", "--input", str(tmp_path / "clips"), "--out", str(tmp_path / "ds"),
                           "--config", str(tmp_path / "bad.json"))  # fmt: skip
    assert code == 2 and "unknown MixConfig option(s): cutouts" in err


def test_data_build_with_nothing_to_do_writes_an_empty_manifest(tmp_path, run_cli):
    (tmp_path / "clips").mkdir()
    code, out, _ = run_cli(
        "data", "build", "--input", str(tmp_path / "clips"), "--out", str(tmp_path / "ds")
    )
    assert code == 0 and "0 clips processed" in out
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["num_samples"] == 0 and manifest["columns"] == [
        "sample_id",
        "caption",
        "video",
        "references",
        "kind",
    ]
