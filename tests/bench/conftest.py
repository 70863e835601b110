"""Fixtures of the harness tests."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def official_outputs(shared_dir: Path) -> Path:
    """The official scripts' per-metric JSON files for the two real videos (`../shared/opens2v/reference_outputs`)."""
    folder = shared_dir / "opens2v" / "reference_outputs"
    if not folder.is_dir():
        pytest.skip(f"official per-metric outputs not found at {folder}")
    return folder


@pytest.fixture
def run_cli(monkeypatch, capsys) -> Callable[..., tuple[int, str, str]]:
    """Run `kaleido-bench ARGS` through the console entry point: (exit code, stdout, stderr)."""
    from kaleido_bench.bench.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["kaleido-bench", *args])
        with pytest.raises(SystemExit) as exit_info:
            main()
            raise SystemExit(0)
        captured = capsys.readouterr()
        return exit_info.value.code, captured.out, captured.err

    return run
