"""EmbeddingCache.derived: per-file results that are not embedding rows (face searches, splits)."""

from __future__ import annotations

import threading
import time

from kaleido_bench.metrics.embedding_cache import EmbeddingCache


def test_derived_is_computed_once_per_content_and_kind_and_forgotten_by_clear(tmp_path):
    (tmp_path / "a.png").write_bytes(b"first")
    (tmp_path / "copy_of_a.png").write_bytes(b"first")
    calls: list[str] = []

    def compute(label: str):
        def run() -> object:
            calls.append(label)
            return object()

        return run

    cache = EmbeddingCache()
    first = cache.derived(tmp_path / "a.png", "kind-1", compute("a"))
    assert cache.derived(tmp_path / "a.png", "kind-1", compute("again")) is first
    assert (
        cache.derived(tmp_path / "copy_of_a.png", "kind-1", compute("copy")) is first
    )  # same bytes, other path
    other_kind = cache.derived(tmp_path / "a.png", "kind-2", compute("kind-2"))
    assert other_kind is not first and calls == ["a", "kind-2"]
    assert len(cache) == 0  # not an embedding row

    (tmp_path / "a.png").write_bytes(b"changed!")  # same path, new bytes
    assert cache.derived(tmp_path / "a.png", "kind-1", compute("changed")) is not first
    assert calls == ["a", "kind-2", "changed"]

    cache.clear()
    cache.derived(tmp_path / "copy_of_a.png", "kind-1", compute("after clear"))
    assert calls[-1] == "after clear"


def test_derived_computes_once_when_threads_ask_together(tmp_path):
    (tmp_path / "a.png").write_bytes(b"bytes")
    cache, calls, results = EmbeddingCache(), [], []

    def slow() -> object:
        calls.append(1)
        time.sleep(0.05)
        return object()

    threads = [
        threading.Thread(
            target=lambda: results.append(cache.derived(tmp_path / "a.png", "k", slow))
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(results) == 4 and all(r is results[0] for r in results)
