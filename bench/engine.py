"""The one scoring loop: decode each video once, schedule the metrics, hand back every outcome.

`kaleido-bench run`, `score` and `profile` and the benchmark scripts all score through
`Engine.score`; executors (`bench/executors.py`) decide which cases a process takes, the engine
how one process scores them:

- setup: every metric with work is set up through the run's `ScoringContext`, one after another
  (`concurrency.SETUP_LOCK`: transformers patches `torch.nn.init` process-wide while it builds).
  A metric whose setup fails is retried by each case, which records the error; missing weights
  stop the run before any work.
- groups: metrics declare a model group (`Metric.needs`). Without a memory budget, or when every
  group fits in it, all metrics stay set up and each video is decoded once and scored by all of
  them. Under a budget that the groups exceed together, the engine scores group by group: a
  group's models are loaded, used on every pending video, and released (`context.release`) before
  the next group loads, so two large models are never resident together. Each video is then
  decoded once per group pass. The order never changes a value: every metric reduces its own
  numbers in its own fixed order, and shared intermediate results are exact.
- overlap: the next video decodes while the current one is scored, and on a GPU several metrics
  of one video run side by side (`concurrency.Overlap`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaleido_bench.bench.concurrency import SEQUENTIAL, SETUP_LOCK, DecodeAhead, Overlap, each_timed
from kaleido_bench.core.cases import Case
from kaleido_bench.core.errors import BenchError, WeightFileError, WeightsMissingError
from kaleido_bench.core.video import DecodedVideo, decode_video
from kaleido_bench.metrics.base import Metric, MetricResult
from kaleido_bench.metrics.context import ScoringContext

#: the same for every case: stop the run with the one clear message instead of recording it per case
FATAL = (WeightsMissingError, WeightFileError)


@dataclass
class Job:
    """One video to score: its case, where the video is, and which metrics still need it.

    `prepare`, when given, makes the video first (a model generating it) and returns False when
    it could not; the engine calls it once, in case order, just before the video is scored.
    """

    case: Case
    video: Path
    pending: list[str]
    prepare: Callable[[], bool] | None = None
    _ready: bool | None = field(default=None, repr=False)

    def ready(self) -> bool:
        if self._ready is None:
            self._ready = self.prepare() if self.prepare is not None else True
        return self._ready

    @property
    def prepared(self) -> bool:
        """Whether the video exists now (prepared, or needing no preparation)."""
        return self._ready is True or (self.prepare is None and self._ready is None)


@dataclass(frozen=True)
class Outcome:
    """One metric on one video: its result, or the error it raised, and its seconds."""

    case: Case
    metric: Metric
    result: MetricResult | None
    error: BaseException | None
    seconds: float
    video: DecodedVideo | None = None


@dataclass
class EngineStats:
    """What one `Engine.score` call did: setup seconds per metric, decode seconds, passes."""

    setup: dict[str, float] = field(default_factory=dict)
    decode: float = 0.0
    decodes: int = 0
    passes: list[list[str]] = field(default_factory=list)  # metric names of each group pass


class Engine:
    """Scores jobs with `metrics` through `context` (see the module docstring)."""

    def __init__(
        self,
        metrics: list[Metric],
        context: ScoringContext,
        *,
        overlap: Overlap = SEQUENTIAL,
        decode: Callable[[Path], DecodedVideo] = decode_video,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.metrics = list(metrics)
        self.context = context
        self.overlap = overlap
        self.decode = decode
        self.clock = clock
        self.stats = EngineStats()
        self._ready: set[str] = set()
        self._state: dict[
            str, dict[str, Any]
        ] = {}  # a metric's attributes before setup (to release it)

    # -- planning -------------------------------------------------------------------------
    def passes(self, metrics: list[Metric]) -> list[list[Metric]]:
        """Metrics grouped into passes: one pass with all of them unless a memory budget is set
        and their groups' declared model memory exceeds it; then consecutive groups are packed
        into passes that fit (a group larger than the budget alone gets its own pass)."""
        groups: dict[str, list[Metric]] = {}
        for metric in metrics:
            groups.setdefault(metric.group(), []).append(metric)
        budget = self.context.memory_budget
        sizes = {name: _group_bytes(members) for name, members in groups.items()}
        if budget is None or sum(sizes.values()) <= budget:
            return [list(metrics)] if metrics else []
        passes: list[list[Metric]] = []
        current: list[Metric] = []
        used = 0
        for name, members in groups.items():
            if current and used + sizes[name] > budget:
                passes.append(current)
                current, used = [], 0
            current.extend(members)
            used += sizes[name]
        if current:
            passes.append(current)
        return passes

    # -- setup / release ------------------------------------------------------------------
    def set_up(self, metric: Metric) -> None:
        """`metric.setup(context)` under the setup lock, timed; remembers what to reset on release."""
        if metric.name in self._ready:
            return
        started = self.clock()
        with SETUP_LOCK:
            self._state.setdefault(metric.name, dict(vars(metric)))
            metric.setup(self.context.scoped(metric.name))
        self.stats.setup[metric.name] = (
            self.stats.setup.get(metric.name, 0.0) + self.clock() - started
        )
        self._ready.add(metric.name)

    def set_up_all(self, metrics: Iterable[Metric]) -> None:
        """Set up each metric; a failing setup (other than missing weights) is left for the cases to retry."""
        for metric in metrics:
            try:
                self.set_up(metric)
            except FATAL:
                raise
            except Exception:
                continue

    def release(self, metrics: Iterable[Metric]) -> None:
        """Drop the metrics' models: reset each to its state before setup, free what only they used."""
        names = []
        for metric in metrics:
            if metric.name in self._state:
                vars(metric).clear()
                vars(metric).update(self._state.pop(metric.name))
            self._ready.discard(metric.name)
            names.append(metric.name)
        self.context.release(names)

    # -- scoring --------------------------------------------------------------------------
    def score(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        """Every pending (job, metric), pass by pass; outcomes as they finish (case order per pass).

        A job whose video cannot be prepared yields nothing (its preparer records why); a video
        that cannot be decoded yields an error outcome per pending metric.
        """
        jobs = list(jobs)
        wanted = {name for job in jobs for name in job.pending}
        active = [m for m in self.metrics if m.name in wanted]
        plan = self.passes(active) or [[]]  # no metric to run: the jobs are still prepared
        for index, group in enumerate(plan):
            names = {m.name for m in group}
            self.stats.passes.append(sorted(names))
            self.set_up_all(group)
            try:
                yield from self._score_pass(jobs, group, names)
            finally:
                if index < len(plan) - 1:
                    self.release(group)

    def _score_pass(
        self, jobs: list[Job], group: list[Metric], names: set[str]
    ) -> Iterator[Outcome]:
        todo = [job for job in jobs if names & set(job.pending) or not job.prepared]
        with DecodeAhead(self._decode_timed, self.overlap.decode_ahead) as decoder:
            for index, job in enumerate(todo):
                metrics = [m for m in group if m.name in job.pending]
                if not job.ready() or not metrics:
                    continue
                decoder.request(job.video)
                for later in todo[index + 1 : index + 2]:
                    if later.prepared:  # decode ahead only videos that already exist
                        decoder.request(later.video)
                try:
                    video = decoder.take(job.video)
                except BenchError as exc:
                    for metric in metrics:
                        yield Outcome(job.case, metric, None, exc, 0.0)
                    continue
                for outcome in each_timed(
                    metrics,
                    lambda m, v=video, c=job.case: self._score_one(m, v, c),
                    self.overlap.metric_workers,
                    self.clock,
                ):
                    if isinstance(outcome.error, FATAL):
                        raise outcome.error  # the same for every case: stop with the one clear message
                    yield Outcome(
                        job.case, outcome.item, outcome.value, outcome.error, outcome.seconds, video
                    )

    def _decode_timed(self, path: Path) -> DecodedVideo:
        started = self.clock()
        video = self.decode(path)
        self.stats.decode += self.clock() - started
        self.stats.decodes += 1
        return video

    def _score_one(self, metric: Metric, video: DecodedVideo, case: Case) -> MetricResult:
        if (
            metric.name not in self._ready
        ):  # its setup failed before: retried here, recorded on failure
            self.set_up(metric)
        return metric.score(video, case, self.context.scoped(metric.name))


def _group_bytes(metrics: list[Metric]) -> int:
    """A group's declared model memory: the largest of its metrics' (they share the group's models)."""
    return max((m.needs.model_bytes for m in metrics), default=0)


def score_all_videos(
    metrics: list[Metric],
    videos: list[tuple[Path, Case]],
    device: str = "cpu",
) -> dict[tuple[str, str], MetricResult]:
    """Every metric on every (video, case), in a fresh context closed afterwards; raises the first
    error. {(case id, metric name): result}. For scripts that compare our values with others'."""
    results: dict[tuple[str, str], MetricResult] = {}
    with ScoringContext.create(device) as context:
        jobs = [Job(case, path, [m.name for m in metrics]) for path, case in videos]
        for outcome in Engine(metrics, context).score(jobs):
            if outcome.error is not None:
                raise outcome.error
            results[(outcome.case.id, outcome.metric.name)] = outcome.result
    return results
