"""The Wan VAE: Wan's original file loads strictly through diffusers' converter; latents are scaled."""

from __future__ import annotations

import pytest
import torch
from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

from kaleido_bench.kaleido import vae as vae_ops
from kaleido_bench.kaleido.config import VaeConfig
from kaleido_bench.kaleido.errors import CheckpointKeyError, CheckpointNotFoundError


@pytest.fixture(scope="module")
def wan_vae_dir(tmp_path_factory, wan_shaped_vae_config, wan_vae_name):
    model = vae_ops.build_vae(wan_shaped_vae_config, seed=11)
    wan_state = {wan_vae_name(k): v for k, v in model.state_dict().items()}
    assert set(convert_wan_vae_to_diffusers(wan_state)) == set(model.state_dict())
    folder = tmp_path_factory.mktemp("wan")
    torch.save(wan_state, folder / vae_ops.WAN_VAE_FILE)
    return folder, model


def test_wan_vae_file_loads_to_identical_latents_and_frames(wan_vae_dir, wan_shaped_vae_config):
    folder, model = wan_vae_dir
    config = wan_shaped_vae_config
    loaded = vae_ops.load_vae(folder, config)
    pixels = torch.rand(1, 3, 5, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    latents = vae_ops.encode(loaded, pixels)
    assert latents.shape == (1, 4, 2, 4, 4)
    assert torch.equal(latents, vae_ops.encode(model, pixels))
    frames = vae_ops.decode(loaded, latents)
    assert frames.shape == (1, 3, 5, 32, 32) and frames.abs().max() <= 1
    # normalisation: (mu - mean) / std
    mu = model.encode(pixels).latent_dist.mode()
    mean = torch.tensor(config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(config.latents_std).view(1, -1, 1, 1, 1)
    assert torch.allclose(latents, (mu - mean) / std)


def test_incomplete_wan_vae_file_fails_clearly(wan_vae_dir, wan_shaped_vae_config, tmp_path):
    folder, _ = wan_vae_dir
    state = torch.load(folder / vae_ops.WAN_VAE_FILE, weights_only=True)
    state.pop("decoder.head.2.bias")
    state["decoder.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / vae_ops.WAN_VAE_FILE)
    with pytest.raises(
        CheckpointKeyError, match=r"missing key\(s\): decoder\.conv_out\.bias"
    ) as info:
        vae_ops.load_vae(tmp_path, wan_shaped_vae_config)
    assert info.value.unexpected == ["decoder.extra.weight"]


def test_missing_vae_file_names_it(tmp_path):
    with pytest.raises(
        CheckpointNotFoundError, match=r"Wan2\.1_VAE\.pth is missing.*Kaleido-14B-S2V"
    ):
        vae_ops.load_vae(tmp_path, VaeConfig())
