"""`vace-1.3b`, `vace-14b`, `vace-tiny`: mp4s on `mini`, reproducible seeds, reference fitting, options, weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from support.wan_checks import check_valid_reproducible_mp4s

from kaleido_bench.baselines.base import get_model_class
from kaleido_bench.bench.suites import load_suite
from kaleido_bench.core.errors import ModelOptionError, WeightsMissingError
from kaleido_bench.core.video import decode_video

SMALL = {"steps": 2, "height": 32, "width": 32, "num_frames": 5}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def mini_cases():
    cases = {case.id: case for case in load_suite("mini").cases}
    return cases["singleobj_cat"], cases["multiobject_cat_coffee"]


@pytest.fixture(scope="module")
def tiny_adapter():
    adapter = get_model_class("vace-tiny")(**SMALL)
    adapter.setup()
    return adapter


def test_tiny_writes_valid_mp4s_on_mini_reproducibly(tiny_adapter, mini_cases, tmp_path):
    check_valid_reproducible_mp4s(tiny_adapter, *mini_cases, tmp_path, (5, 32, 32))


def test_references_change_the_video(tiny_adapter, mini_cases):
    """The references reach the network: the same seed with and without them differs."""
    from kaleido_bench.baselines.cutout import load_reference
    from kaleido_bench.baselines.wan import vace

    case = mini_cases[0]
    common = dict(
        height=32,
        width=32,
        num_frames=5,
        num_steps=2,
        guidance_scale=5.0,
        seed=0,
        max_sequence_length=32,
    )
    with_refs = vace.generate(
        tiny_adapter.pipeline, case.prompt, [load_reference(case.references[0])], **common
    )
    without = vace.generate(tiny_adapter.pipeline, case.prompt, [], **common)
    assert with_refs.shape == without.shape == (5, 32, 32, 3)
    assert not np.array_equal(with_refs, without)


def _solid(width: int, height: int) -> Image.Image:
    return Image.new("RGB", (width, height), (255, 0, 0))


def test_references_are_fitted_bilinear_padded_white_and_centred(tiny_adapter):
    """As documented in baselines/wan/vace.py: scale min(H/h, W/w), int() sizes, centred on white."""
    from kaleido_bench.baselines.wan.vace import reference_canvases

    wide, tall = reference_canvases(tiny_adapter.pipeline, [_solid(80, 40), _solid(16, 64)], 64, 64)
    white = torch.ones(3)
    red = torch.tensor([1.0, -1.0, -1.0])
    # 80x40 -> 64x32, top = (64 - 32) // 2 = 16
    assert torch.equal(wide[:, :16].amin(dim=(1, 2)), white) and torch.equal(
        wide[:, 48:].amin(dim=(1, 2)), white
    )
    assert torch.allclose(wide[:, 16:48].mean(dim=(1, 2)), red)
    # 16x64 -> 16x64 (scale 1), left = (64 - 16) // 2 = 24
    assert torch.equal(tall[:, :, :24].amin(dim=(1, 2)), white) and torch.equal(
        tall[:, :, 40:].amin(dim=(1, 2)), white
    )
    assert torch.allclose(tall[:, :, 24:40].mean(dim=(1, 2)), red)
    # diffusers first rounds each image DOWN to multiples of 8: 70x45 becomes 64x40, fitted 64x40,
    # top = 12 (the release would fit 70x45 itself: 64x41, top = 11)
    (odd,) = reference_canvases(tiny_adapter.pipeline, [_solid(70, 45)], 64, 64)
    rows = (odd[1] < 1).any(dim=1).nonzero().flatten()
    assert rows.min().item() == 12 and rows.max().item() == 51


def test_options_capabilities_and_card():
    cls = get_model_class("vace-tiny")
    adapter = cls(steps="3", cfg_scale="4.5")
    assert (
        adapter.config()["options"]["steps"] == 3
        and adapter.config()["options"]["cfg_scale"] == 4.5
    )
    assert adapter.capabilities.max_references == 3 and adapter.capabilities.fps == 16
    assert cls.label == "random weights"
    with pytest.raises(ModelOptionError, match="no option"):
        cls(weights="x")
    with pytest.raises(ModelOptionError, match="4k \\+ 1"):
        cls(num_frames=10)
    for name, size in (("vace-1.3b", "1.3B"), ("vace-14b", "14B")):
        real = get_model_class(name)
        assert (
            real.parameters == size
            and f"Wan-AI/Wan2.1-VACE-{size}-diffusers" in real.weights_source
        )
        assert real.licence.startswith("Apache-2.0") and real.label == ""
        assert (
            real.weights[0].repo_id == f"Wan-AI/Wan2.1-VACE-{size}-diffusers"
            and real.weights[0].snapshot
        )


def test_real_model_without_weights_names_the_download_command(tmp_path):
    with pytest.raises(
        WeightsMissingError,
        match=r"Wan-AI/Wan2\.1-VACE-1\.3B-diffusers.*kaleido-bench weights download vace-1\.3b",
    ):
        get_model_class("vace-1.3b")()
    (tmp_path / "model_index.json").write_text("{}")
    with pytest.raises(
        WeightsMissingError,
        match=r"transformer/config\.json.*kaleido-bench weights download vace-14b",
    ):
        get_model_class("vace-14b")(weights=str(tmp_path))


def test_release_sampler_grid():
    """Wan's FlowUniPC grid: sigma_max = float32(0.999), shifted, integer timesteps (not diffusers' grid)."""
    from diffusers import UniPCMultistepScheduler

    from kaleido_bench.baselines.wan.scheduler import wan_release_scheduler

    steps, shift = 50, 16.0
    ours = wan_release_scheduler(shift)
    ours.set_timesteps(steps)
    s = np.linspace(float(np.float32(0.999)), 0.0, steps + 1)[:-1]
    expected = shift * s / (1 + (shift - 1) * s)
    assert torch.equal(ours.timesteps, torch.from_numpy(expected * 1000).long())
    assert torch.equal(ours.sigmas, torch.from_numpy(np.append(expected, 0.0).astype(np.float32)))
    stock = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift
    )
    stock.set_timesteps(steps)
    assert not torch.equal(stock.sigmas, ours.sigmas)


def test_real_adapter_loads_a_diffusers_folder_with_the_release_sampler(
    tiny_adapter, mini_cases, tmp_path
):
    """The `vace-1.3b` code path end to end on a tiny folder in the released layout (stock scheduler)."""
    from diffusers import UniPCMultistepScheduler

    from kaleido_bench.baselines.wan.scheduler import WanReleaseUniPCScheduler

    pipe = tiny_adapter.pipeline
    release_scheduler = pipe.scheduler
    pipe.scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )
    try:
        pipe.save_pretrained(tmp_path / "vace")
    finally:
        pipe.scheduler = release_scheduler
    adapter = get_model_class("vace-1.3b")(
        weights=str(tmp_path / "vace"), device="cpu", dtype="fp32", **SMALL
    )
    adapter.setup()
    assert isinstance(adapter.pipeline.scheduler, WanReleaseUniPCScheduler)
    assert adapter.pipeline.scheduler.config.flow_shift == 16.0
    assert adapter.pipeline.vae.dtype == torch.float32
    adapter.generate(mini_cases[1], 0, tmp_path / "v.mp4")
    assert decode_video(tmp_path / "v.mp4").frames.shape == (5, 32, 32, 3)
