"""The Wan VAE: Wan's original file loads strictly through diffusers' converter; latents are scaled."""

from __future__ import annotations

import re

import pytest
import torch
from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

from kaleido_bench.kaleido import vae as vae_ops
from kaleido_bench.kaleido.config import VaeConfig
from kaleido_bench.kaleido.errors import CheckpointKeyError, CheckpointNotFoundError

#: Wan2.1's VAE structure (dim_mult 1,2,4,4, 2 res blocks), tiny widths: the converter's layout.
WAN_SHAPED = VaeConfig(base_dim=4, z_dim=4, latents_mean=(0.1, -0.2, 0.3, 0.0), latents_std=(1.5, 0.5, 2.0, 1.0))
_RESIDUAL = {"norm1.gamma": "residual.0.gamma", "conv1": "residual.2", "norm2.gamma": "residual.3.gamma",
             "conv2": "residual.6", "conv_shortcut": "shortcut"}  # fmt: skip


def _residual(rest: str) -> str:
    for ours, wan in _RESIDUAL.items():
        if rest.startswith(ours):
            return wan + rest[len(ours) :]
    raise KeyError(rest)


def to_wan_name(key: str) -> str:
    """diffusers' AutoencoderKLWan name -> Wan's original name (test helper; inverse of the converter)."""
    side, _, rest = key.partition(".")
    if side in ("quant_conv", "post_quant_conv"):
        return {"quant_conv": "conv1", "post_quant_conv": "conv2"}[side] + "." + rest
    for pattern, build in (
        (r"mid_block\.resnets\.(\d)\.(.*)", lambda m: f"middle.{2 * int(m[1])}.{_residual(m[2])}"),
        (r"mid_block\.attentions\.0\.(.*)", lambda m: f"middle.1.{m[1]}"),
        (r"conv_in\.(.*)", lambda m: f"conv1.{m[1]}"),
        (r"norm_out\.(.*)", lambda m: f"head.0.{m[1]}"),
        (r"conv_out\.(.*)", lambda m: f"head.2.{m[1]}"),
        (r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", lambda m: f"upsamples.{4 * int(m[1]) + int(m[2])}.{_residual(m[3])}"),
        (r"up_blocks\.(\d+)\.upsamplers\.0\.(.*)", lambda m: f"upsamples.{4 * int(m[1]) + 3}.{m[2]}"),
    ):
        m = re.fullmatch(pattern, rest)
        if m:
            return f"{side}.{build(m)}"
    m = re.fullmatch(r"down_blocks\.(\d+)\.(.*)", rest)
    try:
        return f"{side}.downsamples.{m[1]}.{_residual(m[2])}"
    except KeyError:
        return f"{side}.downsamples.{m[1]}.{m[2]}"


@pytest.fixture(scope="module")
def wan_vae_dir(tmp_path_factory):
    model = vae_ops.build_vae(WAN_SHAPED, seed=11)
    wan_state = {to_wan_name(k): v for k, v in model.state_dict().items()}
    assert set(convert_wan_vae_to_diffusers(wan_state)) == set(model.state_dict())
    folder = tmp_path_factory.mktemp("wan")
    torch.save(wan_state, folder / vae_ops.WAN_VAE_FILE)
    return folder, model


def test_wan_vae_file_loads_to_identical_latents_and_frames(wan_vae_dir):
    folder, model = wan_vae_dir
    loaded = vae_ops.load_vae(folder, WAN_SHAPED)
    pixels = torch.rand(1, 3, 5, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    latents = vae_ops.encode(loaded, pixels)
    assert latents.shape == (1, 4, 2, 4, 4)
    assert torch.equal(latents, vae_ops.encode(model, pixels))
    frames = vae_ops.decode(loaded, latents)
    assert frames.shape == (1, 3, 5, 32, 32) and frames.abs().max() <= 1
    # normalisation: (mu - mean) / std
    mu = model.encode(pixels).latent_dist.mode()
    mean = torch.tensor(WAN_SHAPED.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(WAN_SHAPED.latents_std).view(1, -1, 1, 1, 1)
    assert torch.allclose(latents, (mu - mean) / std)


def test_incomplete_wan_vae_file_fails_clearly(wan_vae_dir, tmp_path):
    folder, _ = wan_vae_dir
    state = torch.load(folder / vae_ops.WAN_VAE_FILE, weights_only=True)
    state.pop("decoder.head.2.bias")
    state["decoder.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / vae_ops.WAN_VAE_FILE)
    with pytest.raises(CheckpointKeyError, match=r"missing key\(s\): decoder\.conv_out\.bias") as info:
        vae_ops.load_vae(tmp_path, WAN_SHAPED)
    assert info.value.unexpected == ["decoder.extra.weight"]


def test_missing_vae_file_names_it(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match=r"Wan2\.1_VAE\.pth is missing.*Kaleido-14B-S2V"):
        vae_ops.load_vae(tmp_path, VaeConfig())
