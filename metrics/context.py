"""`ScoringContext`: what a scoring run owns and lends to its metrics (no module-level state).

One context per run (`bench/engine.py` makes it, `close()` ends it) holds:

- `pool`, a `ModelPool`: every loaded model, built once under a key that names its weights
  (file identity or tensor digest, architecture, device, dtype), so two metrics asking for the
  same weights share one object. Each model remembers which metrics asked for it (its owners);
  `release(owners)` drops the models no other metric still uses, which is how the engine frees
  one group of models before loading the next when a memory budget requires it.
- `cache`, an `EmbeddingCache`: reference embeddings and other per-reference results, keyed by
  file content.
- `frames`, a `FramePool`: the thread pool for per-frame CPU work (PIL resizes, optical flow),
  results in input order so every reduction is bit-identical to a plain loop.
- `device` and `precision` (the default for metrics whose published protocol leaves it open).

Metrics receive `context.scoped(metric_name)`: the same pools, with model requests tagged by the
asking metric. The design follows torchmetrics (a metric declares its state, the caller owns
its lifetime) and inspect_ai (the scorer gets its environment passed in, not from globals).
"""

from __future__ import annotations

import dataclasses
import gc
import os
import threading
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaleido_bench.core.once import OnceMap
from kaleido_bench.metrics.embedding_cache import EmbeddingCache

THREADS_ENV = "KALEIDO_BENCH_THREADS"


def thread_count() -> int:
    """Threads for per-frame work: `KALEIDO_BENCH_THREADS`, else every core."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(f"{THREADS_ENV} must be a whole number, got {value!r}") from None
    return os.cpu_count() or 1


class FramePool:
    """`map(fn, items)` = `[fn(x) for x in items]` spread over threads, order kept.

    Threads, not processes: PIL's `resize` and OpenCV's Farneback flow release the GIL, so frames
    run on every core without copying. Runs inline inside one of its own workers (no nested
    waits that could starve the pool) and with one thread. The pool starts on first use.
    """

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads if threads is not None else thread_count()
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._worker = threading.local()

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        items = list(items)
        if len(items) < 2 or self.threads == 1 or getattr(self._worker, "inside", False):
            return [fn(item) for item in items]
        return list(self._pool().map(fn, items))

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.threads,
                    thread_name_prefix="kaleido-bench-frames",
                    initializer=lambda: setattr(self._worker, "inside", True),
                )
            return self._executor

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None


SERIAL = FramePool(threads=1)  # immutable stand-in for callers without a context (tests, parity)


def module_bytes(value: Any) -> int:
    """Bytes of the torch parameters and buffers `value` holds (a module, or a record holding one)."""
    seen: set[int] = set()
    total = 0
    for module in _modules(value):
        for tensor in [*module.parameters(), *module.buffers()]:
            if id(tensor) not in seen:
                seen.add(id(tensor))
                total += tensor.numel() * tensor.element_size()
    return total


def _modules(value: Any, depth: int = 0) -> list[Any]:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return []
    if isinstance(value, torch.nn.Module):
        return [value]
    if depth >= 2:
        return []
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        children = [getattr(value, f.name) for f in dataclasses.fields(value)]
    elif isinstance(value, (list, tuple)):
        children = list(value)
    elif isinstance(value, dict):
        children = list(value.values())
    else:
        children = list(getattr(value, "__dict__", {}).values())
    return [m for child in children for m in _modules(child, depth + 1)]


@dataclass
class ModelPool:
    """Models built once per key, with the metrics that use each; `release` frees what a group used."""

    _memo: OnceMap[Any] = field(default_factory=OnceMap)
    _owners: dict[Hashable, set[str]] = field(default_factory=dict)
    _bytes: dict[Hashable, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    builds: int = 0

    def get(self, key: Hashable, build: Callable[[], Any], owner: str = "") -> Any:
        """The model under `key`, built by `build()` the first time anyone asks (thread-safe,
        one gate per key; a build may ask for another key)."""

        def counted() -> Any:
            value = build()
            with self._lock:
                self.builds += 1
                self._bytes[key] = module_bytes(value)
            return value

        value = self._memo.get(key, counted)
        with self._lock:
            self._owners.setdefault(key, set()).add(owner)
        return value

    def __len__(self) -> int:
        return len(self._memo)

    def resident_bytes(self) -> int:
        with self._lock:
            return sum(self._bytes.values())

    def owners(self) -> set[str]:
        with self._lock:
            return set().union(*self._owners.values()) if self._owners else set()

    def release(self, owners: Iterable[str]) -> int:
        """Forget every model used only by `owners`; returns how many. The caller must also drop
        its own references (the engine resets the metrics it set up) for the memory to go."""
        owners = set(owners)
        with self._lock:
            for users in self._owners.values():
                users -= owners
            gone = [key for key, users in self._owners.items() if not users]
            for key in gone:
                del self._owners[key]
                self._bytes.pop(key, None)
        self._memo.discard(gone)
        if gone:
            free_memory()
        return len(gone)

    def close(self) -> None:
        """Forget every model."""
        with self._lock:
            self._owners.clear()
            self._bytes.clear()
        self._memo.clear()
        free_memory()


def free_memory() -> None:
    """Collect garbage and hand cached CUDA blocks back, so released models really leave."""
    gc.collect()
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@dataclass(frozen=True)
class ScopedModels:
    """A `ModelPool` seen by one metric: its requests are tagged with the metric's name."""

    pool: ModelPool
    owner: str

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        return self.pool.get(key, build, self.owner)


@dataclass(frozen=True)
class ScoringContext:
    """Models, caches, pools, device and precision of one scoring run (see the module docstring)."""

    device: str = "cpu"
    precision: str = "fp32"
    memory_budget: int | None = None  # bytes of model memory the engine may keep resident
    pool: ModelPool = field(default_factory=ModelPool)
    cache: EmbeddingCache = field(default_factory=EmbeddingCache)
    frames: FramePool = field(default_factory=FramePool)
    owner: str = ""

    @classmethod
    def create(
        cls,
        device: str = "cpu",
        *,
        precision: str = "fp32",
        memory_budget: int | None = None,
        cache_dir: Path | None = None,
        threads: int | None = None,
    ) -> ScoringContext:
        """A fresh context; `device="auto"` picks CUDA when there is one."""
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        return cls(
            device=device,
            precision=precision,
            memory_budget=memory_budget,
            cache=EmbeddingCache(directory=cache_dir),
            frames=FramePool(threads),
        )

    @property
    def models(self) -> ScopedModels:
        """The model pool, requests tagged with this context's owner (the metric it was lent to)."""
        return ScopedModels(self.pool, self.owner)

    def scoped(self, owner: str) -> ScoringContext:
        """The same context lent to metric `owner`."""
        return dataclasses.replace(self, owner=owner)

    def release(self, owners: Iterable[str]) -> int:
        return self.pool.release(owners)

    def close(self) -> None:
        """Forget every model and cached result and stop the frame threads."""
        self.pool.close()
        self.cache.clear()
        self.frames.close()

    def __enter__(self) -> ScoringContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
