"""`kaleido` and `kaleido-tiny` as benchmark models: registration, options, errors, a smoke run."""

from __future__ import annotations

import pytest
import torch

from kaleido_bench.baselines.base import get_model_class
from kaleido_bench.baselines.kaleido import GpuMemoryTooSmallError, ModelOptionError
from kaleido_bench.core.cases import Case, ReferenceImage, Role
from kaleido_bench.core.errors import BenchError, WeightsMissingError
from kaleido_bench.core.video import decode_video


@pytest.fixture()
def case(astronaut_png):
    ref = ReferenceImage("crop_woman/astronaut.png", astronaut_png, Role.FACE, "Woman")
    return Case("singleface_astronaut", "A woman in a space suit smiles.", (ref,))


def test_tiny_is_registered_and_labelled():
    cls = get_model_class("kaleido-tiny")
    assert cls.label == "random weights"
    assert get_model_class("kaleido").label == ""


def test_tiny_writes_a_valid_mp4_reproducibly(case, tmp_path):
    adapter = get_model_class("kaleido-tiny")(steps="2", num_frames="9", height="64", width="64")
    adapter.generate(case, 3, tmp_path / "a.mp4")
    adapter.generate(case, 3, tmp_path / "b.mp4")
    video = decode_video(tmp_path / "a.mp4")
    assert video.frames.shape == (9, 64, 64, 3) and video.fps == 16
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    assert adapter.config()["options"]["steps"] == 2  # parsed, so "2" and 2 are the same run


def test_options_are_parsed_and_checked():
    cls = get_model_class("kaleido-tiny")
    with pytest.raises(ModelOptionError, match="no option"):
        cls(weigths="x")
    with pytest.raises(ModelOptionError, match="4k \\+ 1"):
        cls(num_frames=10)
    with pytest.raises(ModelOptionError, match="multiple of 16"):
        cls(height=50)


def test_kaleido_without_weights_names_what_to_get(tmp_path):
    cls = get_model_class("kaleido")
    with pytest.raises(WeightsMissingError, match="zai-org/Kaleido-14B-S2V"):
        cls()
    with pytest.raises(
        WeightsMissingError,
        match=r"model/latest.*Wan2\.1_VAE\.pth.*models_t5_umt5-xxl-enc-bf16\.pth",
    ):
        cls(weights=str(tmp_path), device="cpu")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "latest").write_text("5")
    with pytest.raises(WeightsMissingError, match="5/mp_rank_00_model_states.pt"):
        cls(weights=str(tmp_path), device="cpu")


def test_small_gpu_is_refused_with_what_is_needed(tmp_path, monkeypatch):
    for name in (
        "Wan2.1_VAE.pth",
        "umt5-xxl/models_t5_umt5-xxl-enc-bf16.pth",
        "umt5-xxl/tokenizer.json",
        "model/latest",
        "model/1/mp_rank_00_model_states.pt",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("1")

    class Props:
        total_memory = 24 * 1024**3

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: Props())
    with pytest.raises(
        GpuMemoryTooSmallError, match=r"needs about \d+ GiB.*has 24\.0 GiB.*offload=true"
    ) as info:
        get_model_class("kaleido")(weights=str(tmp_path), device="cuda")
    assert isinstance(info.value, BenchError)


def test_rope_continue_is_selectable(case, tmp_path):
    release = get_model_class("kaleido-tiny")(steps=1)
    shifted = get_model_class("kaleido-tiny")(steps=1, rope_continue="true")
    assert shifted.config() != release.config()
    shifted.setup()
    assert shifted.pipeline.transformer.rope.rope_continue is True
    release.generate(case, 0, tmp_path / "a.mp4")
    shifted.generate(case, 0, tmp_path / "b.mp4")
    assert (tmp_path / "a.mp4").read_bytes() != (tmp_path / "b.mp4").read_bytes()
