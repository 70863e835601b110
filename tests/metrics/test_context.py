"""ScoringContext: the frame pool keeps order, models are shared per key and freed on release / close."""

from __future__ import annotations

import gc
import threading
import weakref

import numpy as np
import pytest

from kaleido_bench.metrics.context import (
    THREADS_ENV,
    FramePool,
    ModelPool,
    ScoringContext,
    thread_count,
)
from kaleido_bench.metrics.motion_amplitude import farneback_amplitude


def test_frame_pool_keeps_order_and_uses_its_threads():
    pool = FramePool(4)
    names = pool.map(lambda i: (i, threading.current_thread().name), range(64))
    assert [i for i, _ in names] == list(range(64))
    assert any(name.startswith("kaleido-bench-frames") for _, name in names)
    pool.close()


def test_one_thread_runs_inline_and_nested_maps_do_not_deadlock():
    assert set(FramePool(1).map(lambda i: threading.current_thread().name, range(4))) == {
        threading.current_thread().name
    }
    pool = FramePool(2)
    assert pool.map(lambda i: pool.map(lambda j: i * 10 + j, range(3)), range(6)) == [
        [i * 10 + j for j in range(3)] for i in range(6)
    ]
    pool.close()


def test_thread_count_reads_the_environment(monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "3")
    assert thread_count() == 3
    monkeypatch.setenv(THREADS_ENV, "many")
    with pytest.raises(ValueError, match="KALEIDO_BENCH_THREADS.*'many'"):
        thread_count()


def test_parallel_motion_amplitude_equals_the_single_thread_value():
    grey = np.random.default_rng(0).integers(0, 256, (6, 64, 96), dtype=np.uint8)
    assert farneback_amplitude(grey, FramePool(3)) == farneback_amplitude(grey, FramePool(1))


def _linear(features: int = 256):
    import torch

    return torch.nn.Linear(features, features)


def test_models_are_built_once_per_key_and_shared_between_owners():
    pool = ModelPool()
    builds = []
    first = pool.get("k", lambda: builds.append(1) or _linear(), owner="a")
    again = pool.get("k", lambda: builds.append(1) or _linear(), owner="b")
    assert first is again and builds == [1] and pool.builds == 1
    assert pool.resident_bytes() == (256 * 256 + 256) * 4 and pool.owners() == {"a", "b"}


def test_release_frees_only_models_no_other_owner_uses():
    pool = ModelPool()
    shared = weakref.ref(pool.get("shared", _linear, owner="a"))
    pool.get("shared", lambda: None, owner="b")
    own = weakref.ref(pool.get("own", _linear, owner="a"))
    assert pool.release(["a"]) == 1
    gc.collect()
    assert own() is None and shared() is not None  # b still uses the shared one
    assert pool.release(["b"]) == 1
    gc.collect()
    assert shared() is None and len(pool) == 0 and pool.resident_bytes() == 0


def test_a_contexts_models_and_caches_are_freed_after_close(tmp_path):
    from PIL import Image

    image = tmp_path / "ref.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    context = ScoringContext.create("cpu")
    model = weakref.ref(context.scoped("metric").models.get("m", _linear))
    context.cache.embeddings([image], "m", "p", lambda paths: np.ones((len(paths), 4), np.float32))
    assert model() is not None and len(context.cache) == 1
    context.close()
    gc.collect()
    assert model() is None and len(context.pool) == 0 and len(context.cache) == 0
