import threading
import time

import pytest

from kaleido_bench.core.once import OnceMap


def test_threads_asking_for_one_key_together_compute_it_once():
    memo, calls, started = OnceMap(), [], threading.Event()

    def slow():
        calls.append(1)
        started.set()
        time.sleep(0.2)
        return object()

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(memo.get("k", slow))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len({id(r) for r in results}) == 1 and len(results) == 4


def test_a_slow_build_does_not_hold_up_another_key():
    memo, release = OnceMap(), threading.Event()
    blocked = threading.Thread(target=lambda: memo.get("slow", lambda: release.wait(5)))
    blocked.start()
    try:
        time.sleep(0.05)
        started = time.perf_counter()
        assert memo.get("fast", lambda: 7) == 7
        assert time.perf_counter() - started < 1.0  # one lock for all would wait for "slow"
    finally:
        release.set()
        blocked.join()
    assert memo["slow"] is True and list(memo) in (["slow", "fast"], ["fast", "slow"])


def test_a_failed_compute_is_retried_and_clear_forgets():
    memo = OnceMap()
    with pytest.raises(ValueError):
        memo.get("k", lambda: (_ for _ in ()).throw(ValueError("boom")))
    assert "k" not in memo
    assert memo.get("k", lambda: 1) == 1 and memo.get("k", lambda: 2) == 1
    memo.clear()
    assert len(memo) == 0 and memo.get("k", lambda: 3) == 3


def test_a_key_needed_by_its_own_computation_is_an_error_not_a_deadlock():
    memo = OnceMap()
    with pytest.raises(RuntimeError, match="cycle"):
        memo.get("a", lambda: memo.get("a", lambda: 1))
    assert memo.get("a", lambda: memo.get("b", lambda: 2) + 1) == 3  # nested distinct keys are fine
