"""Overlapped runs (parallel setup, decode ahead, metrics side by side) give the sequential run's values."""

from __future__ import annotations

import threading
import time

import pytest

from kaleido_bench.bench.concurrency import SEQUENTIAL, DecodeAhead, Overlap, each_timed
from kaleido_bench.core.errors import VideoError
from kaleido_bench.core.video import decode_video


def test_each_timed_hands_over_every_outcome_and_errors_without_raising():
    def fn(item: int) -> int:
        if item == 2:
            raise ValueError("two")
        return item * 10

    sequential = list(each_timed([1, 2, 3], fn, workers=1))
    assert [o.item for o in sequential] == [1, 2, 3]  # input order with one worker
    assert [o.value for o in sequential] == [10, None, 30] and isinstance(
        sequential[1].error, ValueError
    )
    side_by_side = list(each_timed([1, 2, 3], fn, workers=3))
    assert sorted((o.item, o.value) for o in side_by_side) == [(1, 10), (2, None), (3, 30)]


@pytest.mark.parametrize(("workers", "all_meet"), [(3, True), (1, False)])
def test_each_timed_runs_items_at_once_only_with_workers(workers, all_meet):
    barrier = threading.Barrier(
        3, timeout=0.5 if workers == 1 else 5
    )  # passes only if all three run at once
    outcomes = list(each_timed([0, 1, 2], lambda _: barrier.wait(), workers=workers))
    assert all(o.error is None for o in outcomes) is all_meet


def test_decode_ahead_decodes_on_request_and_raises_at_take(tmp_path):
    calls = []

    def decode(key):
        calls.append((key, threading.current_thread().name))
        time.sleep(0.05)
        return decode_video(key)

    with DecodeAhead(decode, enabled=True) as decoder:
        decoder.request(tmp_path / "missing.mp4")
        assert calls == [] or calls[0][1].startswith("kaleido-bench-decode")
        with pytest.raises(VideoError, match="missing.mp4"):
            decoder.take(tmp_path / "missing.mp4")
    assert calls[0][1].startswith("kaleido-bench-decode")
    with DecodeAhead(decode, enabled=False) as inline, pytest.raises(VideoError):
        inline.take(tmp_path / "other.mp4")  # not requested: decoded here, in this thread
    assert calls[-1][1] == threading.current_thread().name


def test_setups_never_run_at_once(ctx):
    from kaleido_bench.bench.engine import Engine
    from kaleido_bench.metrics.base import Metric

    running, most = [], []

    class Slow(Metric):
        def setup(self, context) -> None:
            running.append(1)
            most.append(len(running))
            time.sleep(0.05)
            running.pop()

        def score(self, video, case, context):
            raise AssertionError("not scored")

    metrics = [type(f"Slow{i}", (Slow,), {"name": f"slow{i}"})() for i in range(4)]
    outcomes = list(each_timed(metrics, Engine(metrics, ctx).set_up, workers=4))
    assert all(o.error is None for o in outcomes) and max(most) == 1


def test_overlap_defaults():
    assert (
        Overlap.for_device("cpu").metric_workers == 1
        and Overlap.for_device("cuda:0").metric_workers == 4
    )
    assert (
        Overlap.for_device("cpu", 3).metric_workers == 3 and Overlap.for_device("cpu").decode_ahead
    )
    with pytest.raises(ValueError):
        Overlap.for_device("cpu", 0)


def test_ctrl_c_in_a_metric_thread_stops_the_run_and_the_rerun_finishes_the_rest(tmp_path):
    import numpy as np

    from kaleido_bench.bench.evaluate import score_videos
    from kaleido_bench.bench.store import ResultStore
    from kaleido_bench.bench.suites import load_suite
    from kaleido_bench.core.video import write_video
    from kaleido_bench.metrics.base import Metric, MetricResult

    suite = load_suite("mini", tmp_path / "mini").select(limit=3)
    for case in suite.cases:
        write_video(
            tmp_path / "videos" / f"{case.id}.mp4", np.full((4, 32, 48, 3), 99, np.uint8), 8.0
        )
    calls: list[tuple[str, str]] = []
    stop_at = suite.cases[1].id

    class Frames(Metric):
        name = "frames"

        def score(self, video, case, context):
            calls.append((case.id, self.name))
            if case.id == stop_at and self.name == "frames_stop":
                raise KeyboardInterrupt
            return MetricResult(float(video.num_frames))

    class Stops(Frames):
        name = "frames_stop"

    overlap = Overlap(metric_workers=2, decode_ahead=True)
    with pytest.raises(KeyboardInterrupt):
        score_videos(
            tmp_path / "videos",
            suite,
            [Frames(), Stops()],
            out_dir=tmp_path / "run",
            overlap=overlap,
        )
    stored = {(r.case, r.metric) for r in ResultStore(tmp_path / "run").records()}
    assert (suite.cases[0].id, "frames") in stored and (stop_at, "frames_stop") not in stored
    calls.clear()
    stop_at = None
    _, summary, _ = score_videos(
        tmp_path / "videos", suite, [Frames(), Stops()], out_dir=tmp_path / "run", overlap=overlap
    )
    assert summary.scored == 6 - len(stored) and summary.reused_scores == len(stored)
    assert not set(calls) & stored  # nothing finished before Ctrl-C was scored again


# ----------------------------------------------------------------------------- a whole run, every metric

pytest.importorskip("torch")
pytest.importorskip("insightface")

ALL_METRICS = (
    "aesthetics",
    "clip_i",
    "clip_i_l14",
    "clip_t",
    "clip_t_l14",
    "dino_i",
    "decoupling",
    "subject_consistency",
    "background_consistency",
    "face_sim_arc",
    "face_sim_cur",
    "face_sim_dlib",
    "motion_amplitude",
    "decoupling_hist",
)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_an_overlapped_run_stores_the_sequential_runs_values(tmp_path, monkeypatch):
    from kaleido_bench.baselines.base import get_model_class
    from kaleido_bench.bench.evaluate import run_model, score_videos

    TOLERANCE = 1e-6  # as benchmarks/one_by_one.py: the overlap must not change a value
    from support.random_weights import metric_options, write_random_weights

    from kaleido_bench.bench.store import ResultStore
    from kaleido_bench.bench.suites import load_suite
    from kaleido_bench.metrics.base import get_metric_class

    weights = tmp_path / "weights"
    write_random_weights(weights, ALL_METRICS, size="tiny", seed=0)
    monkeypatch.setenv("KALEIDO_BENCH_WEIGHTS", str(weights))
    suite = load_suite("mini", tmp_path / "mini").select(limit=3)
    made, _ = run_model(
        get_model_class("collage")(height=160, width=288, num_frames=12),
        suite,
        [],
        out_dir=tmp_path / "made",
    )

    def scored(name: str, overlap: Overlap) -> dict:
        metrics = [get_metric_class(m)(**metric_options(m, "tiny")) for m in ALL_METRICS]
        store, summary, _ = score_videos(
            made.root / "videos", suite, metrics, out_dir=tmp_path / name, overlap=overlap
        )
        assert not summary.failures, summary.failures
        return {(r.case, r.metric): r.value for r in ResultStore(store.root).records()}

    import torch
    from transformers.initialization import TORCH_INIT_FUNCTIONS

    sequential = scored("sequential", SEQUENTIAL)
    overlapped = scored("overlapped", Overlap(metric_workers=4, decode_ahead=True))
    # transformers patches torch.nn.init process-wide while it builds a model: builds side by side
    # once left them as no-ops for the rest of the process
    assert all(getattr(torch.nn.init, name) is fn for name, fn in TORCH_INIT_FUNCTIONS.items())
    assert set(sequential) == set(overlapped) and len(sequential) == len(suite.cases) * len(
        ALL_METRICS
    )
    assert sum(v is not None for v in sequential.values()) >= 2 * len(
        ALL_METRICS
    )  # mostly real numbers
    for key, value in sequential.items():
        other = overlapped[key]
        assert (value is None) == (other is None), key
        if value is not None:
            assert abs(value - other) <= TOLERANCE, (key, value, other)
