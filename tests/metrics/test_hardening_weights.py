"""Weight files that cannot be loaded safely: one error naming the file, nothing executed, no advice to
disable the check; and `--metrics all` names every missing file at once."""

from __future__ import annotations

import os

import pytest
import torch

from kaleido_bench.bench.runner import select_metrics
from kaleido_bench.core.errors import WeightFileError, WeightsMissingError
from kaleido_bench.metrics import backbones
from kaleido_bench.metrics.weights import WEIGHTS_ENV, load_tensor_file


class _Payload:
    """Pickles to a call of os.system: what a hostile .pth carries."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _bad_files(tmp_path):
    good = tmp_path / "good.pth"
    torch.save({"w": torch.zeros(3)}, good)
    files = {
        "text.pth": b"hello, not a checkpoint\n" * 4,
        "empty.pth": b"",
        "truncated.pth": good.read_bytes()[: good.stat().st_size // 2],
        "text.safetensors": b"not a safetensors header",
    }
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    evil = tmp_path / "evil.pth"
    torch.save({"w": _Payload(tmp_path / "EXECUTED")}, evil)
    return [*paths, evil]


def test_every_unloadable_weight_file_is_one_error_naming_it(tmp_path):
    for path in _bad_files(tmp_path):
        with pytest.raises(WeightFileError) as info:
            load_tensor_file(path, metric="aesthetics")
        message = str(info.value)
        assert str(path) in message and "cannot be loaded safely" in message, message
        assert "weights_only" not in message and "\n" not in message, message
        assert "kaleido-bench weights download aesthetics" in message
    assert not (tmp_path / "EXECUTED").exists()  # the pickled call never ran


def test_pickled_code_is_named_as_such(tmp_path):
    evil = _bad_files(tmp_path)[-1]
    with pytest.raises(WeightFileError, match="pickled Python objects"):
        load_tensor_file(evil)


def test_a_good_file_loads(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pth")
    assert torch.equal(load_tensor_file(tmp_path / "ok.pth")["w"], torch.ones(2))


def test_library_loaders_report_the_file_too(ctx, tmp_path):
    """open_clip and the DINO loader are handed the file: their failures are the same one error."""
    bad = tmp_path / "ViT-B-32.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(WeightFileError, match="ViT-B-32.safetensors"):
        backbones._open_clip_text_tensors(bad)
    bad_pth = tmp_path / "dino.pth"
    bad_pth.write_bytes(b"garbage")
    with pytest.raises(WeightFileError, match="dino.pth"):
        backbones.load_dino_v1(
            ctx, bad_pth, model_overrides={"depth": 1, "embed_dim": 32, "num_heads": 2}
        )


def test_metrics_all_lists_every_missing_file_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))  # nothing cached either
    with pytest.raises(WeightsMissingError) as info:
        select_metrics(["subject_consistency", "background_consistency", "aesthetics"])
    message = str(info.value)
    for filename in (
        "dino_vitbase16_pretrain.pth",
        "ViT-B-32-openai.safetensors",
        "aesthetic-model.pth",
    ):
        assert filename in message, message
    assert "--metrics available" in message
    assert "weights download subject_consistency background_consistency aesthetics" in message
