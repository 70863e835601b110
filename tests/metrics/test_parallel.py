"""frame_map: the per-frame thread pool keeps order, so parallel results equal the plain loop's."""

from __future__ import annotations

import threading

import numpy as np

from kaleido_bench.metrics import parallel
from kaleido_bench.metrics.motion_amplitude import farneback_amplitude


def test_order_is_kept_and_work_is_spread(monkeypatch):
    monkeypatch.setenv(parallel.THREADS_ENV, "4")
    names = parallel.frame_map(lambda i: (i, threading.current_thread().name), range(64))
    assert [i for i, _ in names] == list(range(64))
    assert all(name.startswith("kaleido-bench-frames") for _, name in names)


def test_one_thread_runs_inline(monkeypatch):
    monkeypatch.setenv(parallel.THREADS_ENV, "1")
    names = parallel.frame_map(lambda i: threading.current_thread().name, range(4))
    assert set(names) == {threading.current_thread().name}


def test_nested_calls_run_inline_instead_of_waiting_on_the_pool(monkeypatch):
    monkeypatch.setenv(parallel.THREADS_ENV, "2")
    out = parallel.frame_map(lambda i: parallel.frame_map(lambda j: i * 10 + j, range(3)), range(6))
    assert out == [[i * 10 + j for j in range(3)] for i in range(6)]


def test_bad_thread_count_is_named(monkeypatch):
    monkeypatch.setenv(parallel.THREADS_ENV, "many")
    try:
        parallel.thread_count()
    except ValueError as exc:
        assert "KALEIDO_BENCH_THREADS" in str(exc) and "'many'" in str(exc)
    else:
        raise AssertionError("no error")


def test_parallel_motion_amplitude_equals_the_single_thread_value(monkeypatch):
    grey = np.random.default_rng(0).integers(0, 256, (6, 64, 96), dtype=np.uint8)
    monkeypatch.setenv(parallel.THREADS_ENV, "1")
    single = farneback_amplitude(grey)
    monkeypatch.setenv(parallel.THREADS_ENV, "3")
    assert farneback_amplitude(grey) == single
