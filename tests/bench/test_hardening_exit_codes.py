"""Exit codes: 0 when every case worked, 1 when any case failed (CI sees it), 2 for bad input."""

from __future__ import annotations

import sys

from kaleido_bench.baselines.base import MODELS

BROKEN = """
from kaleido_bench.baselines.base import ModelAdapter


class Broken(ModelAdapter):
    def generate(self, case, seed, out_path):
        raise RuntimeError("the GPU caught fire")
"""


def test_a_run_with_failed_cases_exits_1(tmp_path, run_cli, monkeypatch):
    (tmp_path / "brokenpkg").mkdir()
    (tmp_path / "brokenpkg" / "__init__.py").write_text("")
    (tmp_path / "brokenpkg" / "models.py").write_text(BROKEN)
    monkeypatch.chdir(tmp_path)
    try:
        code, _, err = run_cli(
            "run",
            "--model",
            "brokenpkg.models:Broken",
            "--suite",
            "mini",
            "--limit",
            "2",
            "--metrics",
            "motion_amplitude",
            "--device",
            "cpu",
            "--runs-dir",
            str(tmp_path / "runs"),
        )
    finally:
        for name in [m for m in sys.modules if m.startswith("brokenpkg")]:
            del sys.modules[name]
        MODELS._items.pop("Broken", None)
    assert code == 1, err
    assert "Traceback" not in err
    assert "the GPU caught fire" in err and "2 failure(s)" in err


def test_a_clean_run_exits_0(tmp_path, run_cli):
    code, _, err = run_cli(
        "run",
        "--model",
        "still",
        "--suite",
        "mini",
        "--limit",
        "1",
        "-o",
        "num_frames=5",
        "--metrics",
        "motion_amplitude",
        "--device",
        "cpu",
        "--runs-dir",
        str(tmp_path / "runs"),
    )
    assert code == 0, err
    assert "failed 0" in err
