"""Fixtures for the Kaleido tests: tiny random models (fixed seeds) and a real packaged image."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


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
