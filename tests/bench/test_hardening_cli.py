"""Every usage error and bad file through the console entry point: exit code 2, one line, no traceback.

Usage errors keep click's usual message (usage, a hint, and ONE `Error:` line); bad files are one
`error:` line naming the file.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from kaleido_bench.core.video import write_video
from kaleido_bench.metrics.weights import WEIGHTS_ENV

USAGE_ERRORS = [
    ("leaderboard",),  # no folder
    ("run", "--bogus"),
    ("run", "--model", "still", "--limit", "-1"),
    ("run", "--model", "still", "--limit", "0"),
    ("run", "--model", "still", "--metrics", ","),
    ("run", "--model", "still", "--device", "tpu"),
    ("score", "--videos", ".", "--metrics", ""),
    ("profile", "x.mp4", "--repeat", "0"),
    ("leaderboard", "x", "--format", "xml"),
]


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=" ".join)
def test_usage_errors_exit_2_with_clicks_message(run_cli, args):
    code, out, err = run_cli(*args)
    assert code == 2
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, err
    assert err.startswith("Usage: kaleido-bench"), err


def assert_one_error_line(code: int, out: str, err: str, *needles: str) -> str:
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _suite(tmp_path, cases) -> str:
    (tmp_path / "cat.png").write_bytes(b"")
    path = tmp_path / "suite.json"
    path.write_text(json.dumps({"cases": cases}))
    return str(path)


BAD_SUITES = {
    "reference without path": [{"prompt": "a cat", "references": [{"role": "object"}]}],
    "reference of the wrong type": [{"prompt": "a cat", "references": [42]}],
    "references not a list": [{"prompt": "a cat", "references": "cat.png"}],
    "null prompt": [{"prompt": None, "references": ["cat.png"]}],
    "reference path not text": [{"prompt": "a cat", "references": [{"path": ["cat.png"]}]}],
}


@pytest.mark.parametrize("name", BAD_SUITES)
def test_bad_suite_file(tmp_path, run_cli, name):
    suite = _suite(tmp_path, BAD_SUITES[name])
    result = run_cli(
        "run", "--model", "still", "--suite", suite, "--runs-dir", str(tmp_path / "runs")
    )
    assert_one_error_line(*result, "suite.json", "case #1")


def _run_folder(tmp_path, manifest, scores: str = "") -> str:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "scores.jsonl").write_text(scores)
    return str(folder)


def test_manifest_that_is_a_list(tmp_path, run_cli):
    assert_one_error_line(*run_cli("leaderboard", _run_folder(tmp_path, [])), "manifest.json")


def test_manifest_with_wrong_field_types(tmp_path, run_cli):
    folder = _run_folder(tmp_path, {"model": "still", "suite": "mini", "seed": 0})
    assert_one_error_line(*run_cli("leaderboard", folder), "manifest.json", "'model'")


def test_non_numeric_score(tmp_path, run_cli):
    line = json.dumps({"case": "a", "metric": "motion_amplitude", "value": "high"})
    folder = _run_folder(
        tmp_path, {"model": {"model": "still"}, "suite": {"name": "mini"}, "seed": 0}, line + "\n"
    )
    assert_one_error_line(*run_cli("leaderboard", folder), "scores.jsonl:1", "'high'")


def test_profile_with_a_weight_file_that_is_not_a_tensor_file(tmp_path, run_cli, monkeypatch):
    weights = tmp_path / "weights"
    (weights / "dino").mkdir(parents=True)
    (weights / "dino" / "dino_vitbase16_pretrain.pth").write_text("<html>404 not found</html>\n")
    monkeypatch.setenv(WEIGHTS_ENV, str(weights))
    video = write_video(tmp_path / "v.mp4", np.zeros((3, 32, 32, 3), np.uint8), 8)
    result = run_cli(
        "profile",
        str(video),
        "--suite",
        "mini",
        "--metrics",
        "subject_consistency",
        "--device",
        "cpu",
    )
    line = assert_one_error_line(*result, "dino_vitbase16_pretrain.pth", "cannot be loaded safely")
    assert "weights_only" not in line


def test_missing_data_root_names_the_dataset(tmp_path, run_cli):
    result = run_cli(
        "run",
        "--model",
        "still",
        "--suite",
        "opens2v",
        "--data-root",
        str(tmp_path / "nowhere"),
        "--runs-dir",
        str(tmp_path / "runs"),
    )
    assert_one_error_line(
        *result, str(tmp_path / "nowhere"), "does not exist", "BestWishYsh/OpenS2V-Eval"
    )


def test_empty_data_root_is_one_line(tmp_path, run_cli):
    result = run_cli(
        "run",
        "--model",
        "still",
        "--suite",
        "opens2v",
        "--data-root",
        str(tmp_path),
        "--runs-dir",
        str(tmp_path / "runs"),
    )
    assert_one_error_line(*result, "all 317 reference image(s)", "BestWishYsh/OpenS2V-Eval")


def test_metrics_all_names_every_missing_file(tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "weights"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    result = run_cli(
        "run", "--model", "still", "--metrics", "all", "--runs-dir", str(tmp_path / "runs")
    )
    line = assert_one_error_line(
        *result,
        "--metrics available",
        "dino_vitbase16_pretrain.pth",
        "aesthetic-model.pth",
        "ViT-L-14-openai.safetensors",
    )
    assert line.count("weight file(s) missing") == 1


def test_unimportable_model_path(tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_error_line(
        *run_cli("run", "--model", "nopkg.mod:Model"), "nopkg.mod:Model", str(tmp_path)
    )


def test_long_error_is_not_wrapped(tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    deep = tmp_path / ("a-very-long-folder-name" * 4) / "videos"
    result = run_cli("score", "--suite", "mini", "--videos", str(deep))
    assert_one_error_line(*result, str(deep))
