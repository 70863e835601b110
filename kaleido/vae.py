"""The Wan2.1 VAE (diffusers' `AutoencoderKLWan`): loading Wan's original file and latent scaling.

Kaleido ships Wan's original `Wan2.1_VAE.pth`. diffusers' `from_single_file` reads it but,
offline, wants a local config folder; we skip that: the config is `VaeConfig` (Wan2.1's
numbers, the defaults of `AutoencoderKLWan`), and the renaming is diffusers' own
`convert_wan_vae_to_diffusers`. Loading is strict: a missing or extra tensor is an error.

Latents go to the DiT normalised per channel, (mu - mean) / std, and come back as z * std + mean
(Wan's `WanVAE.encode/decode`); encoding takes the posterior mean, no sampling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kaleido_bench.kaleido.config import VaeConfig
from kaleido_bench.kaleido.errors import DOWNLOAD_HINT, CheckpointKeyError, CheckpointNotFoundError
from kaleido_bench.kaleido.weights_file import load_torch_weights

WAN_VAE_FILE = "Wan2.1_VAE.pth"


def build_vae(config: VaeConfig, *, seed: int | None = None, device: str = "cpu"):
    """A random `AutoencoderKLWan` (deterministic for `seed`) or an empty one on `meta`."""
    from diffusers import AutoencoderKLWan

    if device == "meta":
        with torch.device("meta"):
            return AutoencoderKLWan(**config.diffusers_kwargs())
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        model = AutoencoderKLWan(**config.diffusers_kwargs())
    return model.eval()


def load_vae(
    weights_dir: Path,
    config: VaeConfig,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
):
    """`AutoencoderKLWan` from `weights_dir/Wan2.1_VAE.pth` (Wan's names, converted by diffusers)."""
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    path = Path(weights_dir) / WAN_VAE_FILE
    if not path.is_file():
        raise CheckpointNotFoundError(f"Wan VAE not found: {path} is missing; {DOWNLOAD_HINT}")
    state = load_torch_weights(path)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    converted = convert_wan_vae_to_diffusers(state)
    model = build_vae(config, device="meta")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(set(converted) - set(expected))
    bad = sorted(
        f"{k} {tuple(v.shape)} (model {tuple(expected[k].shape)})"
        for k, v in converted.items()
        if k in expected and v.shape != expected[k].shape
    )
    if missing or unexpected or bad:
        raise CheckpointKeyError(str(path), missing, unexpected, bad)
    model.load_state_dict(
        {k: v.to(device=device, dtype=dtype, copy=True) for k, v in converted.items()},
        strict=True,
        assign=True,
    )
    return model.eval()


def _stats(vae, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (1, -1, 1, 1, 1)
    mean = torch.tensor(vae.config.latents_mean, device=like.device, dtype=torch.float32).view(
        shape
    )
    std = torch.tensor(vae.config.latents_std, device=like.device, dtype=torch.float32).view(shape)
    return mean, std


@torch.no_grad()
def encode(vae, pixels: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) in [-1, 1] -> normalised latents (B, C, 1 + (T-1)/4, H/8, W/8), float32."""
    dtype = next(vae.parameters()).dtype
    mu = vae.encode(pixels.to(dtype)).latent_dist.mode().float()
    mean, std = _stats(vae, mu)
    return (mu - mean) / std


@torch.no_grad()
def decode(vae, latents: torch.Tensor) -> torch.Tensor:
    """Normalised latents -> pixels (B, 3, T, H, W) clamped to [-1, 1], float32."""
    dtype = next(vae.parameters()).dtype
    mean, std = _stats(vae, latents)
    z = latents.float() * std + mean
    return vae.decode(z.to(dtype)).sample.float().clamp(-1, 1)


@torch.no_grad()
def encode_single_frames(vae, pixels: torch.Tensor) -> torch.Tensor:
    """(K, 3, 1, H, W) images -> (1, C, K, H/8, W/8): each image encoded ALONE as a one-frame clip.

    Encoding the K images as one K-frame clip would mix them through the VAE's causal time
    convolutions (and compress them 4x in time); Kaleido and Phantom-Wan both encode one image at
    a time (SPEC.md section 1; Phantom's `subject2video.py` `get_vae_latents`).
    """
    latents = [encode(vae, pixels[k : k + 1]) for k in range(pixels.shape[0])]
    return torch.cat(latents, dim=2)


def frames_from_pixels(pixels: torch.Tensor) -> np.ndarray:
    """(3, T, H, W) in [-1, 1] -> (T, H, W, 3) uint8, TRUNCATED as Wan's `cache_video` does.

    Wan (and Kaleido, VACE, Phantom-Wan, which save through it) maps x to
    clamp((x + 1) / 2, 0, 1) * 255 and casts to uint8 without rounding.
    """
    frames = (((pixels.float() + 1.0) / 2.0).clamp(0.0, 1.0) * 255.0).to(torch.uint8)
    return frames.permute(1, 2, 3, 0).cpu().numpy()
