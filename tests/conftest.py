"""Test-wide settings: offline hub, an empty weights dir, a private cache, and the shared data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Set before any test module imports huggingface_hub / transformers: offline, a miss fails fast.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
_SESSION_TMP = Path(tempfile.mkdtemp(prefix="kaleido-bench-tests-"))
os.environ["KALEIDO_BENCH_WEIGHTS"] = str(
    _SESSION_TMP / "weights"
)  # tests never see a user's weights
os.environ["KALEIDO_BENCH_CACHE"] = str(_SESSION_TMP / "cache")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """`../shared` beside the checkout (real OpenS2V files); skipped with a reason when absent."""
    if not (SHARED / "opens2v").is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


@pytest.fixture
def ctx():
    """A fresh scoring context (models, caches, frame threads), closed after the test."""
    from kaleido_bench.metrics.context import ScoringContext

    with ScoringContext.create("cpu") as context:
        yield context


@pytest.fixture
def ready(ctx):
    """`ready(metric)`: the metric set up in the test's context (the engine does this in a run)."""

    def set_up(metric):
        metric.setup(ctx)
        return metric

    return set_up
