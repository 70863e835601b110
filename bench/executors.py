"""Executors: which process does which case of a run. One small interface, three implementations.

- `LocalExecutor`: this process does every case (threads inside, see `engine.py`).
- `ShardExecutor(i, N)`: this process does the cases at positions i, i+N, i+2N... of the suite
  (`--shard i/N`), a deterministic split, so N processes or a Slurm array job (`--shard
  $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`) share one run folder without overlapping.
- `RayExecutor`: cases become Ray tasks on a pool of worker actors (`--executor ray
  [--ray-address ADDR] [--ray-workers K]`), each with its CPU / GPU requirement; a local Ray
  cluster by default, or an existing one. Each worker loads the model and metrics once and
  generates and scores the cases it is given. The run folder must be on a filesystem every node
  sees (the usual shared storage of a cluster).

Every worker appends to its own `scores-<worker>.jsonl`; the store merges them, so resume
works across executors (start with Ray, finish with the local executor: nothing is done twice).
`locks.run_lock` keeps two whole-run processes, or two copies of one shard, off one folder.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kaleido_bench.bench.concurrency import SEQUENTIAL, Overlap
from kaleido_bench.bench.locks import run_lock
from kaleido_bench.bench.runner import Runner, RunSummary
from kaleido_bench.bench.store import ResultStore
from kaleido_bench.core.cases import Case, Suite
from kaleido_bench.core.errors import BenchError
from kaleido_bench.metrics.base import Metric
from kaleido_bench.metrics.context import ScoringContext


@dataclass
class RunRequest:
    """Everything a worker needs to generate and score cases into one run folder (picklable)."""

    root: Path
    suite: Suite
    metrics: list[Metric]
    model: Any = None
    seed: int = 0
    device: str = "cpu"
    overlap: Overlap = SEQUENTIAL
    memory_budget: int | None = None
    progress: Any = field(default=None, repr=False)

    def runner(self, worker: str | None = None, progress: Any = None) -> Runner:
        context = ScoringContext.create(self.device, memory_budget=self.memory_budget)
        return Runner(
            ResultStore(self.root),
            self.suite,
            self.metrics,
            model=self.model,
            seed=self.seed,
            progress=progress,
            overlap=self.overlap,
            context=context,
            worker=worker,
        )


class Executor(Protocol):
    """Runs a `RunRequest`; returns what this invocation did."""

    name: str

    def run(self, request: RunRequest) -> RunSummary: ...


@dataclass(frozen=True)
class LocalExecutor:
    """Every case in this process (the default)."""

    name: str = "local"

    def run(self, request: RunRequest) -> RunSummary:
        with run_lock(request.root):
            runner = request.runner(progress=request.progress)
            try:
                return runner.run()
            finally:
                runner.context.close()


def shard_cases(cases: tuple[Case, ...], index: int, count: int) -> tuple[Case, ...]:
    """Cases at positions index, index + count, ... (deterministic: the suite's order)."""
    return cases[index::count]


def parse_shard(text: str) -> tuple[int, int]:
    """`"i/N"` -> (i, N) with 0 <= i < N."""
    try:
        left, right = text.split("/")
        index, count = int(left), int(right)
    except ValueError:
        raise BenchError(f"--shard must look like i/N (e.g. 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise BenchError(f"--shard {text}: need 0 <= i < N")
    return index, count


@dataclass(frozen=True)
class ShardExecutor:
    """The cases of shard `index` of `count`; writes `scores-shard-<i>-of-<N>.jsonl`."""

    index: int
    count: int
    name: str = "shard"

    @property
    def worker(self) -> str:
        return f"shard-{self.index}-of-{self.count}"

    def run(self, request: RunRequest) -> RunSummary:
        with run_lock(request.root, (self.index, self.count)):
            runner = request.runner(self.worker, request.progress)
            try:
                return runner.run(shard_cases(request.suite.cases, self.index, self.count))
            finally:
                runner.context.close()


@dataclass(frozen=True)
class RayExecutor:
    """Cases as Ray tasks on `workers` actors, each needing `cpus` CPUs and `gpus` GPUs."""

    address: str | None = None
    workers: int = 1
    cpus: float = 1.0
    gpus: float | None = None  # default: 1 when the run's device is CUDA, else 0
    name: str = "ray"

    def run(self, request: RunRequest) -> RunSummary:
        try:
            import ray
            from ray.util import ActorPool
        except ImportError:
            raise BenchError("--executor ray needs Ray: pip install 'kaleido-bench[ray]'") from None
        gpus = (
            self.gpus
            if self.gpus is not None
            else (1.0 if request.device.startswith("cuda") else 0.0)
        )
        with run_lock(request.root):
            started_here = not ray.is_initialized()
            if started_here:
                ray.init(
                    address=self.address,
                    include_dashboard=False,
                    log_to_driver=False,
                    **({} if self.address else {"num_cpus": max(1, int(self.workers * self.cpus))}),
                )
            try:
                remote = ray.remote(num_cpus=self.cpus, num_gpus=gpus)(RayWorker)
                shipped = RunRequest(
                    request.root,
                    request.suite,
                    request.metrics,
                    request.model,
                    request.seed,
                    request.device,
                    request.overlap,
                    request.memory_budget,
                )
                actors = [remote.remote(shipped, f"ray-{index}") for index in range(self.workers)]
                pool = ActorPool(actors)
                summary = RunSummary()
                cases = list(request.suite.cases)
                task = (
                    request.progress.add_task("cases (ray)", total=len(cases))
                    if request.progress
                    else None
                )
                for part in pool.map_unordered(
                    lambda actor, case: actor.run_case.remote(case), cases
                ):
                    merge_summary(summary, part)
                    if request.progress:
                        request.progress.advance(task)
                for actor in actors:
                    ray.kill(actor)
                return summary
            finally:
                if started_here:
                    ray.shutdown()


class RayWorker:
    """One Ray actor: a Runner whose model and metrics stay loaded across the cases it is given."""

    def __init__(self, request: RunRequest, name: str) -> None:
        self.name = f"{name}-{socket.gethostname()}-{os.getpid()}"
        self.runner = request.runner(self.name)

    def run_case(self, case: Case) -> RunSummary:
        return self.runner.run([case])


def merge_summary(total: RunSummary, part: RunSummary) -> None:
    total.generated += part.generated
    total.reused_videos += part.reused_videos
    total.scored += part.scored
    total.reused_scores += part.reused_scores
    total.failures.extend(part.failures)
    total.skipped_metrics.update(part.skipped_metrics)


def make_executor(
    name: str = "local",
    *,
    shard: str | None = None,
    ray_address: str | None = None,
    ray_workers: int = 1,
) -> Executor:
    """The executor the command line asks for (`--executor`, `--shard`, `--ray-*`)."""
    if shard is not None:
        if name != "local":
            raise BenchError(
                "--shard splits a run between processes itself: use it without --executor ray"
            )
        return ShardExecutor(*parse_shard(shard))
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        if ray_workers < 1:
            raise BenchError("--ray-workers must be at least 1")
        return RayExecutor(address=ray_address, workers=ray_workers)
    raise BenchError(f"unknown executor {name!r} (local or ray)")
