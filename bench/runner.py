"""Run a model over a suite and score every video, resumably.

Each case becomes a `Job` for the scoring engine (`engine.py`): its video is generated, just
before it is scored, unless the run folder already has it (videos appear atomically, so
existing = complete), and it lists the metrics whose result for the current metric identity is
not stored yet. Each result is appended as it comes, with the metric's identity digest. A
failing case is recorded with its error and the run goes on; Ctrl-C leaves a consistent folder
and the same command resumes without repeating finished work (errors are retried, and a
changed metric configuration rescores).
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaleido_bench.baselines.base import check_case
from kaleido_bench.bench.concurrency import SEQUENTIAL, Overlap
from kaleido_bench.bench.engine import Engine, Job
from kaleido_bench.bench.store import GENERATE, ResultStore, ScoreRecord
from kaleido_bench.core.cases import Case, Suite
from kaleido_bench.core.errors import (
    BenchError,
    UnknownNameError,
    WeightFileError,
    WeightsMissingError,
)
from kaleido_bench.metrics.base import Metric
from kaleido_bench.metrics.context import ScoringContext
from kaleido_bench.metrics.weights import locate, weights_dir


@dataclass
class RunSummary:
    """What one invocation did (not what the folder holds in total)."""

    generated: int = 0
    reused_videos: int = 0
    scored: int = 0
    reused_scores: int = 0
    failures: list[ScoreRecord] = field(default_factory=list)
    skipped_metrics: dict[str, str] = field(default_factory=dict)


DEFAULT = "default"  # `--metrics default`: the suite protocol's `default_metrics`
NOT_INSTALLED = "not in this install: no metric of this name is registered (a suite default; see `kaleido-bench list metrics`)"


def select_metrics(
    names: Iterable[str],
    options: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    defaults: Sequence[str] = ("all",),
) -> tuple[list[Metric], dict[str, str]]:
    """Instantiate metrics by name. `available` / `all` expand to every registered metric except
    the opt-in ones (a paid API: reported as skipped, run only when named); with `available` a
    metric whose weights are missing is skipped (and reported), otherwise every missing weight
    file is listed in one error before any work starts. `options[name]` are keyword options of
    that metric; `none` selects no metric (generate only).

    `default` expands to `defaults`, the suite protocol's `default_metrics` (OpenS2V: its seven
    official metrics; other suites: `all`). Expanded like `all`: opt-in metrics are skipped
    (name them too, `default,natural_score`), and a default that no registered metric answers
    to (a metric not ported to this version yet) is skipped and reported, never an error; an
    unknown name given explicitly stays an error."""
    from kaleido_bench.metrics.base import load_builtin_metrics

    registry = load_builtin_metrics()
    names = list(names)
    if names == ["none"]:  # generate only
        return [], {}
    wanted = [item for name in names for item in (defaults if name == DEFAULT else [name])]
    skip_missing = "available" in wanted
    expanded: list[str] = []
    skipped: dict[str, str] = {}
    for name in names:
        group: list[tuple[str, bool]] = []  # (metric name, implicit: came from an expansion)
        for item in defaults if name == DEFAULT else [name]:
            if item in {"all", "available"}:
                group += [(metric, True) for metric in registry.names()]
            else:
                group.append((item, name == DEFAULT))
        for item, implicit in group:
            if item in expanded:
                continue
            if implicit and item not in registry:
                skipped.setdefault(item, NOT_INSTALLED)
                continue
            if implicit and registry.get(item).opt_in:
                skipped.setdefault(item, registry.get(item).opt_in)
                continue
            skipped.pop(item, None)  # named explicitly after all/available/default
            expanded.append(item)
    if not expanded and not skipped:
        raise UnknownNameError("no metric named: give metric names, 'all' or 'available'")
    metrics, absent = [], []
    for name in expanded:
        metric = registry.get(name)(**dict((options or {}).get(name, {})))
        missing = [w for w in metric.weights if not locate(w, metric.explicit_path(w)).found]
        if missing and skip_missing:
            skipped[name] = "weights missing: " + ", ".join(w.filename for w in missing)
            continue
        absent += [(name, weight) for weight in missing]
        metrics.append(metric)
    if absent:  # every missing file at once, not the first one
        files = "; ".join(
            f"{weights_dir() / w.filename} ({w.description}) for {name}" for name, w in absent
        )
        names = " ".join(dict.fromkeys(name for name, _ in absent))
        raise WeightsMissingError(
            f"{len(absent)} weight file(s) missing: {files}. Get them with `kaleido-bench weights download {names}` "
            "on a connected machine (`kaleido-bench weights list` shows where each was looked for), or run with "
            "`--metrics available` to skip the metrics that lack them"
        )
    return metrics, skipped


class Runner:
    """Generates (optional) and scores the cases of `suite` into `store`, through one `Engine`."""

    def __init__(
        self,
        store: ResultStore,
        suite: Suite,
        metrics: list[Metric],
        *,
        model=None,
        seed: int = 0,
        progress=None,
        overlap: Overlap = SEQUENTIAL,
        context: ScoringContext | None = None,
        worker: str | None = None,
    ) -> None:
        self.store, self.suite, self.metrics, self.model, self.seed = (
            store,
            suite,
            metrics,
            model,
            seed,
        )
        self.progress, self.overlap = progress, overlap
        self.context = context if context is not None else ScoringContext.create()
        self.worker = worker
        self.identities = {metric.name: metric.identity() for metric in metrics}
        # one engine for the Runner's life: a Runner run again on other cases (a Ray worker's)
        # keeps its metrics set up instead of setting them up per call
        self.engine = Engine(self.metrics, self.context, overlap=self.overlap)
        self._model_ready = False

    def run(self, cases: Sequence[Case] | None = None) -> RunSummary:
        """Generate and score `cases` (default: the whole suite); a Runner may be run again on
        other cases, keeping its model and the context's models loaded (Ray workers do)."""
        cases = self.suite.cases if cases is None else cases
        summary = RunSummary()
        done = self.store.done(self.identities)
        self.store.remove_leftovers([case.id for case in cases])
        jobs = [self._job(case, done, summary) for case in cases]
        task = self.progress.add_task("cases", total=len(cases)) if self.progress else None
        for outcome in self.engine.score(jobs):
            if outcome.error is not None:
                record = ScoreRecord(
                    outcome.case.id,
                    outcome.metric.name,
                    None,
                    seconds=outcome.seconds,
                    error=_describe(outcome.error),
                    config=self.identities[outcome.metric.name],
                )
            else:
                details = outcome.result.details
                if (
                    outcome.video is not None and outcome.video.warnings
                ):  # e.g. a truncated file, scored on what decodes
                    details = {**details, "video_warnings": list(outcome.video.warnings)}
                record = ScoreRecord(
                    outcome.case.id,
                    outcome.metric.name,
                    outcome.result.value,
                    details,
                    outcome.seconds,
                    config=self.identities[outcome.metric.name],
                )
                summary.scored += 1
            self._record(summary, record)
            if self.progress:
                self.progress.update(task, description=f"[bold]{outcome.case.id}")
        return summary

    def _job(self, case: Case, done: set[tuple[str, str]], summary: RunSummary) -> Job:
        """The case's video (made first when a model is set and it is missing) and its pending metrics."""
        video_path = self.store.video_path(case.id)
        pending = [m.name for m in self.metrics if (case.id, m.name) not in done]
        summary.reused_scores += len(self.metrics) - len(pending)
        prepare = None
        if self.model is not None:
            if video_path.exists():
                summary.reused_videos += 1
            else:
                prepare = lambda: self._generate(case, video_path, summary)  # noqa: E731
        return Job(case, video_path, pending, prepare)

    def _generate(self, case: Case, video_path: Path, summary: RunSummary) -> bool:
        started = time.perf_counter()
        tmp = video_path.with_name(f".{video_path.stem}.generating.mp4")
        try:
            check_case(self.model.capabilities, case, self.model.name)  # e.g. too many references
            if not self._model_ready:
                self.model.setup()
                self._model_ready = True
            details = self.model.generate(case, self.seed, tmp) or {}
            if not tmp.is_file():
                raise RuntimeError(f"model {self.model.name} wrote no video for {case.id}")
            os.replace(tmp, video_path)
        except (WeightsMissingError, WeightFileError):
            raise
        except Exception as exc:
            tmp.unlink(missing_ok=True)
            self._record(
                summary,
                ScoreRecord(
                    case.id,
                    GENERATE,
                    None,
                    seconds=time.perf_counter() - started,
                    error=_describe(exc),
                ),
            )
            return False
        summary.generated += 1
        self.store.append(
            ScoreRecord(
                case.id,
                GENERATE,
                None,
                {"video": video_path.name, **details},
                time.perf_counter() - started,
            ),
            worker=self.worker,
        )
        return True

    def _record(self, summary: RunSummary, record: ScoreRecord) -> None:
        self.store.append(record, worker=self.worker)
        if record.error:
            summary.failures.append(record)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BenchError):
        return str(exc)
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"
