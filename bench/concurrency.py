"""How a run overlaps its work, and how much.

- Setup: the metrics' `setup` run one after another, up front. Not side by side: transformers
  replaces `torch.nn.init`'s functions process-wide while it builds a model, and two builds at
  once can leave them replaced by no-ops for the rest of the process (seen: every model built
  afterwards held uninitialised memory). `SETUP_LOCK` keeps every model build on one thread.
- Decode ahead: the next video decodes on its own thread while the current one is scored.
- Metrics side by side: one video's metrics are scored on `metric_workers` threads. This pays
  on a GPU, where one metric's CPU work (PIL resizes, optical flow, patch matching) overlaps
  another's GPU work. On a CPU, torch already keeps every core busy, so the default there is one
  metric at a time (two at once measured no faster on 2 cores).

No value depends on the overlap: a computation that metrics share is done once whoever asks
first, and each metric reduces its own numbers in its own fixed order (tested against a run one
metric at a time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


SETUP_LOCK = threading.Lock()  # one model build at a time in the process (see the module docstring)


@dataclass(frozen=True)
class Overlap:
    """How many metrics of one video are scored at once, and whether the next video decodes ahead."""

    metric_workers: int = 1
    decode_ahead: bool = False

    @classmethod
    def for_device(cls, device: str, metric_workers: int | None = None) -> Overlap:
        """Defaults: decode ahead; 4 metrics side by side on a GPU, 1 on a CPU (unless
        `metric_workers` says otherwise)."""
        if metric_workers is None:
            metric_workers = 4 if device.startswith("cuda") else 1
        if metric_workers < 1:
            raise ValueError(f"metric_workers must be at least 1, got {metric_workers}")
        return cls(metric_workers=metric_workers, decode_ahead=True)


SEQUENTIAL = (
    Overlap()
)  # one metric at a time, no decode ahead: the reference the overlap is tested against


@dataclass
class Outcome(Generic[T, R]):
    """What `fn(item)` gave: its value or the exception it raised, and its own seconds."""

    item: T
    value: R | None
    error: BaseException | None
    seconds: float


def each_timed(
    items: Sequence[T],
    fn: Callable[[T], R],
    workers: int,
    clock: Callable[[], float] = time.perf_counter,
) -> Iterator[Outcome[T, R]]:
    """`fn(item)` for every item, `workers` at a time, yielding each outcome as it ends (in input
    order with one worker). An exception is handed over in its outcome, not raised, so the caller
    decides; items not started when the caller stops (an error, Ctrl-C) are cancelled."""

    def timed(item: T) -> Outcome[T, R]:
        started = clock()
        try:
            value = fn(item)
        except Exception as exc:
            return Outcome(item, None, exc, clock() - started)
        return Outcome(item, value, None, clock() - started)

    if workers <= 1 or len(items) <= 1:
        for item in items:
            yield timed(item)
        return
    pool = ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="kaleido-bench-metric")
    try:
        position = {pool.submit(timed, item): i for i, item in enumerate(items)}
        pending = set(position)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=position.__getitem__):
                yield future.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


class DecodeAhead(Generic[T]):
    """Decodes a requested video on one background thread; `take` returns it (or raises its error).

    Holds at most the videos requested and not yet taken (the runner asks for one ahead)."""

    def __init__(self, decode: Callable[[Hashable], T], enabled: bool) -> None:
        self.decode = decode
        self._pool = (
            ThreadPoolExecutor(1, thread_name_prefix="kaleido-bench-decode") if enabled else None
        )
        self._requested: dict[Hashable, Future] = {}

    def request(self, key: Hashable) -> None:
        if self._pool is not None and key not in self._requested:
            self._requested[key] = self._pool.submit(self.decode, key)

    def take(self, key: Hashable) -> T:
        future = self._requested.pop(key, None)
        return future.result() if future is not None else self.decode(key)

    def close(self) -> None:
        if self._pool is not None:
            for future in self._requested.values():
                future.cancel()
            self._requested.clear()
            self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> DecodeAhead[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
