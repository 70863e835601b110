"""Executors: Ray (a local cluster started here), shards in two processes, resume across executors,
and one run folder never worked on twice at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kaleido_bench.bench.executors import make_executor, parse_shard, shard_cases
from kaleido_bench.bench.locks import run_lock
from kaleido_bench.bench.store import GENERATE, ResultStore
from kaleido_bench.core.errors import BenchError, RunLockedError

RUN = [
    "run",
    "--model",
    "still",
    "--suite",
    "mini",
    "--metrics",
    "motion_amplitude,decoupling_hist",
    "-o",
    "num_frames=5",
    "-o",
    "height=64",
    "-o",
    "width=96",
    "--device",
    "cpu",
]


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KALEIDO_BENCH_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "kaleido_bench.bench.cli", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _work(root: Path) -> dict[tuple[str, str], int]:
    """How many records each (case, metric) got across every score file (2+ = done twice)."""
    counts: dict[tuple[str, str], int] = {}
    for record in ResultStore(root).records():
        if record.ok:
            counts[(record.case, record.metric)] = counts.get((record.case, record.metric), 0) + 1
    return counts


def test_shards_split_deterministically_and_parse_strictly():
    cases = tuple(range(10))
    assert shard_cases(cases, 0, 3) == (0, 3, 6, 9) and shard_cases(cases, 2, 3) == (2, 5, 8)
    assert sorted(sum((shard_cases(cases, i, 3) for i in range(3)), ())) == list(cases)
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "x/2", "1", "-1/2"):
        with pytest.raises(BenchError, match="--shard"):
            parse_shard(bad)
    with pytest.raises(BenchError, match="without --executor ray"):
        make_executor("ray", shard="0/2")


def test_a_run_folder_is_never_worked_on_twice_at_once(tmp_path):
    with run_lock(tmp_path):
        with pytest.raises(RunLockedError, match="in use by another process"), run_lock(tmp_path):
            pass
        with pytest.raises(RunLockedError), run_lock(tmp_path, (0, 2)):
            pass
    with run_lock(tmp_path, (0, 2)), run_lock(tmp_path, (1, 2)):  # two shards side by side
        with pytest.raises(RunLockedError, match="shard 0/2"), run_lock(tmp_path, (0, 2)):
            pass
        with pytest.raises(RunLockedError, match="whole run"), run_lock(tmp_path):
            pass


def test_a_second_identical_command_exits_with_a_clear_message(tmp_path):
    out = tmp_path / "run"
    first = _cli(tmp_path, *RUN, "--limit", "1", "--out", str(out))
    assert first.returncode == 0, first.stderr
    with run_lock(out):  # as if the first command were still running
        second = _cli(tmp_path, *RUN, "--limit", "1", "--out", str(out))
    assert second.returncode == 2 and "in use by another process" in second.stderr
    assert "Traceback" not in second.stderr


def test_two_shards_in_two_processes_then_local_does_no_repeated_work(tmp_path):
    out = tmp_path / "run"
    shards = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kaleido_bench.bench.cli",
                *RUN,
                "--out",
                str(out),
                "--shard",
                f"{i}/2",
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "KALEIDO_BENCH_THREADS": "1"},
        )
        for i in range(2)
    ]
    for shard in shards:
        _, err = shard.communicate(timeout=600)
        assert shard.returncode == 0, err
    assert {p.name for p in out.glob("scores*.jsonl")} == {
        "scores-shard-0-of-2.jsonl",
        "scores-shard-1-of-2.jsonl",
    }
    work = _work(out)
    assert len(work) == 10 * 3 and set(work.values()) == {
        1
    }  # 10 cases x (generate + 2 metrics), once each
    rerun = _cli(tmp_path, *RUN, "--out", str(out))
    assert rerun.returncode == 0 and _work(out) == work  # the local executor found everything done


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_ray_generates_and_scores_then_local_resumes_without_repeated_work(tmp_path):
    pytest.importorskip("ray")
    from kaleido_bench.baselines.base import get_model_class
    from kaleido_bench.bench.evaluate import run_model
    from kaleido_bench.bench.runner import select_metrics
    from kaleido_bench.bench.suites import load_suite

    suite = load_suite("mini", tmp_path / "mini").select(limit=4)
    model = get_model_class("still")(num_frames=5, height=64, width=96)
    metrics, _ = select_metrics(["motion_amplitude", "decoupling_hist"])
    out = tmp_path / "run"
    first = suite.select(limit=3)
    store, summary = run_model(
        model, first, metrics, out_dir=out, executor=make_executor("ray", ray_workers=2)
    )
    assert summary.generated == 3 and summary.scored == 6 and not summary.failures
    workers = {p.name for p in out.glob("scores-ray-*.jsonl")}
    assert (
        len(workers) == 2 and not (out / "scores.jsonl").exists()
    )  # both actors worked, each in its file
    _, again = run_model(
        model, suite, metrics, out_dir=out
    )  # the local executor finishes the 4th case
    assert (
        again.generated == 1
        and again.reused_videos == 3
        and again.scored == 2
        and again.reused_scores == 6
    )
    work = _work(out)
    assert len(work) == 4 * 3 and set(work.values()) == {1}
    assert sum(1 for (case, metric) in work if metric == GENERATE) == 4
