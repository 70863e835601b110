"""Fixtures for the Kaleido tests: tiny random models (fixed seeds) and a real packaged image."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from kaleido_bench.kaleido.config import VaeConfig  # noqa: E402

#: Wan2.1's VAE structure (dim_mult 1,2,4,4, 2 res blocks), tiny widths: the converter's layout.
WAN_SHAPED = VaeConfig(
    base_dim=4, z_dim=4, latents_mean=(0.1, -0.2, 0.3, 0.0), latents_std=(1.5, 0.5, 2.0, 1.0)
)
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
        (
            r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)",
            lambda m: f"upsamples.{4 * int(m[1]) + int(m[2])}.{_residual(m[3])}",
        ),
        (
            r"up_blocks\.(\d+)\.upsamplers\.0\.(.*)",
            lambda m: f"upsamples.{4 * int(m[1]) + 3}.{m[2]}",
        ),
    ):
        m = re.fullmatch(pattern, rest)
        if m:
            return f"{side}.{build(m)}"
    m = re.fullmatch(r"down_blocks\.(\d+)\.(.*)", rest)
    try:
        return f"{side}.downsamples.{m[1]}.{_residual(m[2])}"
    except KeyError:
        return f"{side}.downsamples.{m[1]}.{m[2]}"


@pytest.fixture(scope="session")
def wan_shaped_vae_config() -> VaeConfig:
    return WAN_SHAPED


@pytest.fixture(scope="session")
def wan_vae_name():
    """diffusers VAE name -> Wan's original name, to write Wan-format VAE files in tests."""
    return to_wan_name


@pytest.fixture(scope="session")
def tiny_config():
    from kaleido_bench.kaleido.config import KALEIDO_TINY

    return KALEIDO_TINY


@pytest.fixture(scope="session")
def tiny_transformer(tiny_config):
    from kaleido_bench.kaleido.transformer import build_transformer

    return build_transformer(tiny_config.transformer, seed=0)


@pytest.fixture(scope="session")
def astronaut_png(tmp_path_factory) -> Path:
    """skimage's astronaut (a real photo with a face) as a PNG file."""
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("images") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_pipeline():
    from kaleido_bench.kaleido.pipeline import KaleidoPipeline

    return KaleidoPipeline.tiny()


# --- data pipeline (kaleido/data): tiny random models of every stage, built once per session ---


@pytest.fixture(scope="session")
def data_models(tmp_path_factory):
    from data_tiny_models import write_all

    return write_all(tmp_path_factory.mktemp("data_models"))
