"""`OnceMap`: compute each key's value once, even when several threads ask for it together.

Models, decoded-frame derivatives and per-reference results are shared between metrics that
may run side by side (`bench/concurrency.py`). Each key has its own gate, so building one
model does not hold up building another, and a second caller of the same key waits for the
first one's result instead of computing it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

V = TypeVar("V")


class OnceMap(Generic[V]):
    """A thread-safe memo: `get(key, compute)` runs `compute` at most once per key (a failed
    `compute` is retried by the next caller)."""

    def __init__(self) -> None:
        self._values: dict[Hashable, V] = {}
        self._gates: dict[Hashable, threading.Lock] = {}
        self._building: dict[Hashable, int] = {}  # key -> id of the thread computing it
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        with self._lock:
            if key in self._values:
                return self._values[key]
            if self._building.get(key) == threading.get_ident():
                raise RuntimeError(f"computing {key!r} asked for {key!r} again (a cycle)")
            gate = self._gates.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._values:
                    return self._values[key]
                self._building[key] = threading.get_ident()
            try:
                value = compute()
            finally:
                with self._lock:
                    self._building.pop(key, None)
            with self._lock:
                self._values[key] = value
                self._gates.pop(key, None)
            return value

    def __getitem__(self, key: Hashable) -> V:
        with self._lock:
            return self._values[key]

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._values

    def __iter__(self) -> Iterator[Hashable]:
        """The keys that have a value (a snapshot: safe while other threads add keys)."""
        with self._lock:
            return iter(list(self._values))

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def discard(self, keys) -> None:
        """Forget the values of `keys` (those absent are ignored)."""
        with self._lock:
            for key in keys:
                self._values.pop(key, None)

    def clear(self) -> None:
        """Forget every value (a computation still running stores its value when it ends)."""
        with self._lock:
            self._values.clear()
            self._gates.clear()
