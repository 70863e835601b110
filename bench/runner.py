"""Run a model over a suite and score every video, resumably.

First the metrics that still have work are set up (one after another). Then for each case:
generate the video unless the run folder already has it (videos appear atomically, so
existing = complete), decode it ONCE (the next existing video decodes meanwhile), score it
with every selected metric whose result is not stored yet (side by side on a GPU, see
`concurrency.py`), and append each result as it comes. A failing case is recorded with its
error and the run goes on; Ctrl-C leaves a consistent folder and the same command resumes
without repeating finished work (errors are retried).
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaleido_bench.bench.cases import Case, Suite
from kaleido_bench.bench.concurrency import SEQUENTIAL, DecodeAhead, Overlap, each_timed, set_up
from kaleido_bench.bench.errors import BenchError, WeightsMissingError
from kaleido_bench.bench.store import GENERATE, ResultStore, ScoreRecord
from kaleido_bench.bench.video import decode_video
from kaleido_bench.metrics.base import Metric
from kaleido_bench.metrics.weights import locate, resolve


@dataclass
class RunSummary:
    """What one invocation did (not what the folder holds in total)."""

    generated: int = 0
    reused_videos: int = 0
    scored: int = 0
    reused_scores: int = 0
    failures: list[ScoreRecord] = field(default_factory=list)
    skipped_metrics: dict[str, str] = field(default_factory=dict)


def select_metrics(names: Iterable[str], device: str = "cpu",
                   options: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[list[Metric], dict[str, str]]:
    """Instantiate metrics by name. `available` / `all` expand to every registered metric except
    the opt-in ones (a paid API: reported as skipped, run only when named); with `available` a
    metric whose weights are missing is skipped (and reported), otherwise a missing weight file
    is one error before any work starts. `options[name]` are keyword options of that metric."""
    from kaleido_bench.metrics.base import load_builtin_metrics

    registry = load_builtin_metrics()
    names = list(names)
    skip_missing = "available" in names
    expanded: list[str] = []
    skipped: dict[str, str] = {}
    for name in names:
        for item in registry.names() if name in {"all", "available"} else [name]:
            if item in expanded:
                continue
            if name in {"all", "available"} and registry.get(item).opt_in:
                skipped.setdefault(item, registry.get(item).opt_in)
                continue
            skipped.pop(item, None)  # named explicitly after all/available
            expanded.append(item)
    metrics = []
    for name in expanded:
        metric = registry.get(name)(device=device, **dict((options or {}).get(name, {})))
        missing = [w for w in metric.weights if not locate(w).found]
        if missing and skip_missing:
            skipped[name] = "weights missing: " + ", ".join(w.filename for w in missing)
            continue
        for weight in missing:
            resolve(weight, metric=name)  # raises WeightsMissingError naming file and command
        metrics.append(metric)
    return metrics, skipped


class Runner:
    """Generates (optional) and scores the cases of `suite` into `store`."""

    def __init__(self, store: ResultStore, suite: Suite, metrics: list[Metric], *, model=None, seed: int = 0,
                 progress=None, overlap: Overlap = SEQUENTIAL) -> None:
        self.store, self.suite, self.metrics, self.model, self.seed = store, suite, metrics, model, seed
        self.progress, self.overlap = progress, overlap
        self._ready: set[str] = set()
        self._model_ready = False

    def run(self) -> RunSummary:
        summary = RunSummary()
        done = self.store.done()
        self._setup_metrics(done)
        task = self.progress.add_task("cases", total=len(self.suite.cases)) if self.progress else None
        with DecodeAhead(decode_video, self.overlap.decode_ahead) as decoder:
            for index, case in enumerate(self.suite.cases):
                if self.progress:
                    self.progress.update(task, description=f"[bold]{case.id}")
                self._run_case(case, done, summary, decoder, self.suite.cases[index + 1 : index + 2])
                if self.progress:
                    self.progress.advance(task)
        return summary

    def _pending(self, case: Case, done: set[tuple[str, str]]) -> list[Metric]:
        return [m for m in self.metrics if (case.id, m.name) not in done]

    def _setup_metrics(self, done: set[tuple[str, str]]) -> None:
        """Set up every metric some case still needs, before the first case. A metric whose setup fails
        stays not ready: each case retries it and records the error (missing weights stop the run)."""
        for metric in self.metrics:
            if all((c.id, metric.name) in done for c in self.suite.cases):
                continue
            try:
                set_up(metric)
            except WeightsMissingError:
                raise
            except Exception:
                continue  # not ready: the cases retry it and record the error
            self._ready.add(metric.name)

    def _run_case(self, case: Case, done: set[tuple[str, str]], summary: RunSummary, decoder: DecodeAhead,
                  following: list[Case]) -> None:
        video_path = self.store.video_path(case.id)
        if self.model is not None:
            if video_path.exists():
                summary.reused_videos += 1
            elif not self._generate(case, video_path, summary):
                return
        pending = self._pending(case, done)
        summary.reused_scores += len(self.metrics) - len(pending)
        if not pending:
            return
        decoder.request(video_path)
        for later in following:  # decoded while this case is scored
            later_path = self.store.video_path(later.id)
            if later_path.exists() and self._pending(later, done):
                decoder.request(later_path)
        try:
            video = decoder.take(video_path)
        except BenchError as exc:
            for metric in pending:
                self._record(summary, ScoreRecord(case.id, metric.name, None, error=str(exc)))
            return
        for outcome in each_timed(pending, lambda metric: self._score(metric, video, case),
                                  self.overlap.metric_workers):
            metric = outcome.item
            if isinstance(outcome.error, WeightsMissingError):
                raise outcome.error  # the same for every case: stop with the one clear message
            if outcome.error is not None:
                record = ScoreRecord(case.id, metric.name, None, seconds=outcome.seconds,
                                     error=_describe(outcome.error))
            else:
                record = ScoreRecord(case.id, metric.name, outcome.value.value, outcome.value.details,
                                     outcome.seconds)
                summary.scored += 1
            self._record(summary, record)

    def _score(self, metric: Metric, video, case: Case):
        if metric.name not in self._ready:  # its setup failed before: retried, on one thread at a time
            set_up(metric)
            self._ready.add(metric.name)
        return metric.score(video, case)

    def _generate(self, case: Case, video_path: Path, summary: RunSummary) -> bool:
        started = time.perf_counter()
        tmp = video_path.with_name(f".{video_path.stem}.generating.mp4")
        try:
            if not self._model_ready:
                self.model.setup()
                self._model_ready = True
            self.model.generate(case, self.seed, tmp)
            if not tmp.is_file():
                raise RuntimeError(f"model {self.model.name} wrote no video for {case.id}")
            os.replace(tmp, video_path)
        except WeightsMissingError:
            raise
        except Exception as exc:
            tmp.unlink(missing_ok=True)
            self._record(summary, ScoreRecord(case.id, GENERATE, None, seconds=time.perf_counter() - started,
                                              error=_describe(exc)))
            return False
        summary.generated += 1
        self.store.append(ScoreRecord(case.id, GENERATE, None, {"video": video_path.name},
                                      time.perf_counter() - started))
        return True

    def _record(self, summary: RunSummary, record: ScoreRecord) -> None:
        self.store.append(record)
        if record.error:
            summary.failures.append(record)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BenchError):
        return str(exc)
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"
