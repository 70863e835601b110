"""Fixtures of the harness tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def official_outputs(shared_dir: Path) -> Path:
    """The official scripts' per-metric JSON files for the two real videos (`../shared/opens2v/reference_outputs`)."""
    folder = shared_dir / "opens2v" / "reference_outputs"
    if not folder.is_dir():
        pytest.skip(f"official per-metric outputs not found at {folder}")
    return folder
