"""One process-wide thread pool for per-frame CPU work: PIL resizes, OpenCV optical flow.

Why threads and not processes: PIL's `resize` and OpenCV's `calcOpticalFlowFarneback` release
the GIL, so frames run on every core without copying them between processes. `frame_map`
returns results in input order and callers reduce them in that order, so every number is
bit-identical to a plain loop. `KALEIDO_BENCH_THREADS` caps the pool (default: all cores);
1 runs the plain loop.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

THREADS_ENV = "KALEIDO_BENCH_THREADS"

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()
_worker = threading.local()


def thread_count() -> int:
    value = os.environ.get(THREADS_ENV, "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(f"{THREADS_ENV} must be a whole number, got {value!r}") from None
    return os.cpu_count() or 1


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(thread_count(), thread_name_prefix="kaleido-bench-frames",
                                       initializer=lambda: setattr(_worker, "inside", True))
        return _pool


def frame_map(fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """`[fn(x) for x in items]`, spread over the pool; order kept. Runs inline inside a worker
    (no nested waits that could starve the pool) and when one thread is asked for."""
    items = list(items)
    if len(items) < 2 or thread_count() == 1 or getattr(_worker, "inside", False):
        return [fn(item) for item in items]
    return list(_executor().map(fn, items))
