"""Two ways to score the same videos, timed, and whether they agree (benchmarks only, not installed).

`score_all` is ours: each metric set up once, each video decoded once, frames and embeddings
shared between metrics. `score_one_by_one` models the official scripts: each metric runs on its
own after every loaded model and cache is forgotten; it loads its model once, then for every
video decodes it again and embeds the references again. Both start from empty caches, so the
ratio of their totals is what sharing buys; `compare` checks that sharing changed no value.
Used by `benchmarks/scoring_speed.py` and `benchmarks/overlap_speed.py`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kaleido_bench.bench.concurrency import SEQUENTIAL, Overlap
from kaleido_bench.bench.engine import Engine, Job
from kaleido_bench.bench.profile import DECODE_STAGE, describe_models
from kaleido_bench.bench.runner import select_metrics
from kaleido_bench.bench.suites import load_suite
from kaleido_bench.core.cases import Case
from kaleido_bench.metrics.context import ScoringContext

TOLERANCE = 1e-6  # largest |ours - one-by-one| accepted: sharing must not change a value

Values = dict[tuple[str, str], float | None]  # (video stem, metric) -> value, None when absent


def case_of(path: Path, cases: dict[str, Case]) -> Case:
    """The suite's case of a video (key = file stem), else an empty case (no prompt, no reference)."""
    return cases.get(path.stem, Case(path.stem, "", ()))


# ----------------------------------------------------------------------------- clocks and caches


class Clock:
    """`perf_counter` that first waits for queued CUDA work, so GPU time lands where it was spent."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.loads: list[
            float
        ] = []  # 1-minute load average at each timed step (others share the CPU)

    def now(self) -> float:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
        return time.perf_counter()

    def timed(self, fn: Callable[[], Any]) -> tuple[Any, float]:
        self.loads.append(os.getloadavg()[0])
        started = self.now()
        result = fn()
        return result, self.now() - started


# ----------------------------------------------------------------------------- the two passes


@dataclass
class PassResult:
    """Values and seconds of one pass; `decode` per metric for one-by-one, under "decode" for ours."""

    values: Values = field(default_factory=dict)
    setup: dict[str, float] = field(default_factory=dict)
    decode: dict[str, float] = field(default_factory=dict)
    score: dict[str, float] = field(default_factory=dict)
    total: float = 0.0
    overlap: Overlap = SEQUENTIAL
    cpu: float = (
        0.0  # CPU seconds of this process (all threads): barely moved by other processes' load
    )
    forget_cpu: float = 0.0  # one-by-one: CPU seconds spent clearing caches (not counted)
    models: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    face_frames: dict[str, list[int]] = field(
        default_factory=dict
    )  # metric -> [frames with a face, sampled]

    def count_faces(self, name: str, details: dict) -> None:
        """Tally how many sampled frames a face metric actually embedded (its model's real workload)."""
        if "frames_with_face" in details:
            tally = self.face_frames.setdefault(name, [0, 0])
            tally[0] += int(details["frames_with_face"])
            tally[1] += int(details.get("frames_sampled", 0))


def score_all(
    videos: list[Path],
    cases: dict[str, Case],
    names: list[str],
    device: str,
    clock: Clock,
    overlap: Overlap = SEQUENTIAL,
    options: dict[str, dict] | None = None,
) -> PassResult:
    """Ours: the scoring engine (`engine.py`) from a fresh context: each metric set up once, each
    video decoded once and shared by every metric, with the runner's overlap (`concurrency.py`).
    Per-metric seconds then overlap; `total` is the wall."""
    out = PassResult(overlap=overlap)
    started, cpu_started = clock.now(), time.process_time()
    metrics, out.skipped = select_metrics(names, options)
    with ScoringContext.create(device) as context:
        engine = Engine(metrics, context, overlap=overlap, clock=clock.now)
        engine.set_up_all(metrics)
        out.setup = {metric.name: engine.stats.setup.get(metric.name, 0.0) for metric in metrics}
        out.score = {metric.name: 0.0 for metric in metrics}
        jobs = [Job(case_of(path, cases), path, [m.name for m in metrics]) for path in videos]
        for outcome in engine.score(jobs):
            if outcome.error is not None:
                raise outcome.error
            clock.loads.append(os.getloadavg()[0])
            name = outcome.metric.name
            out.values[(outcome.case.id, name)] = outcome.result.value
            out.score[name] += outcome.seconds
            out.count_faces(name, outcome.result.details)
        out.decode["decode"] = engine.stats.decode
        out.total = clock.now() - started
        out.cpu = time.process_time() - cpu_started
        out.models = {metric.name: describe_models(metric) for metric in metrics}
    return out


def score_one_by_one(
    videos: list[Path],
    cases: dict[str, Case],
    names: list[str],
    device: str,
    clock: Clock,
    options: dict[str, dict] | None = None,
) -> PassResult:
    """The official scripts' way: per metric a fresh context (nothing shared), its model loaded once;
    per video decode and references again (the context's cache cleared). `names` are plain metric
    names (pass `list(ours.score)` after `score_all`). One metric at a time, so the engine's
    sharing and overlap are deliberately not used here."""
    from kaleido_bench.core.video import decode_video

    out = PassResult()
    for name in names:
        started, cpu_started = clock.now(), time.process_time()
        [metric], _ = select_metrics([name], options)
        with ScoringContext.create(device) as context:
            scoped = context.scoped(name)
            metric.setup(scoped)
            out.setup[name] = clock.now() - started
            out.decode[name] = out.score[name] = 0.0
            for path in videos:
                cpu_before = time.process_time()
                context.cache.clear()
                out.forget_cpu += time.process_time() - cpu_before
                video, seconds = clock.timed(lambda p=path: decode_video(p))
                out.decode[name] += seconds
                result, seconds = clock.timed(
                    lambda m=metric, v=video, p=path, c=scoped: m.score(v, case_of(p, cases), c)
                )
                out.values[(path.stem, name)] = result.value
                out.score[name] += seconds
        out.total += out.setup[name] + out.decode[name] + out.score[name]
        out.cpu += time.process_time() - cpu_started - out.forget_cpu
        out.forget_cpu = 0.0
        del metric
    return out


def describe_overlap(overlap: Overlap) -> str:
    """How ours overlapped its work, in words for the reports."""
    if overlap == SEQUENTIAL:
        return "none: decodes and metrics one after another"
    ahead = "the next video decoded ahead" if overlap.decode_ahead else "no decode ahead"
    return f"{ahead}, {overlap.metric_workers} metric(s) at once per video" + (
        "; per-metric seconds overlap, the total is the wall clock"
        if overlap.metric_workers > 1
        else ""
    )


# ----------------------------------------------------------------------------- comparison


@dataclass
class Agreement:
    """How far the two passes' values are apart; `ok` when within TOLERANCE and absent in the same places."""

    max_diff: float
    compared: int
    absent_both: int
    absent_mismatch: list[tuple[str, str]]

    @property
    def ok(self) -> bool:
        return (
            self.max_diff <= TOLERANCE
            and not self.absent_mismatch
            and not math.isnan(self.max_diff)
        )


def compare(ours: Values, naive: Values) -> Agreement:
    """Largest |ours - one-by-one| over values both have; keys where only one is absent."""
    diffs, both, mismatch = [], 0, []
    for key, a in ours.items():
        b = naive.get(key)
        if a is None and b is None:
            both += 1
        elif a is None or b is None:
            mismatch.append(key)
        else:
            diffs.append(abs(a - b))
    worst = max(diffs, default=0.0)
    if any(math.isnan(d) for d in diffs):
        worst = math.nan
    return Agreement(worst, len(diffs), both, mismatch)


# ----------------------------------------------------------------------------- the profile table


@dataclass
class OneByOneProfile:
    """Our pass and the one-by-one pass on the same videos: the per-stage table and whether values agree."""

    ours: PassResult
    naive: PassResult
    agreement: Agreement
    count: int  # videos

    @property
    def ratio(self) -> float:
        """Wall clock one-by-one / ours, setup included: what sharing models, frames and embeddings buys."""
        return self.naive.total / self.ours.total

    def table(self) -> pd.DataFrame:
        """One row per metric, then decode and the total. `s_per_video` excludes setup; one-by-one's includes
        its own decode of each video, ours decodes once for all (the decode row). The ratio compares
        setup + all videos of one-by-one with the same of ours."""
        ours, naive, count = self.ours, self.naive, self.count
        rows = []
        for name in ours.score:
            mine = ours.setup[name] + ours.score[name]
            theirs = naive.setup[name] + naive.decode[name] + naive.score[name]
            values = {key: value for key, value in ours.values.items() if key[1] == name}
            agreement = compare(values, naive.values)
            near_zero = (
                mine / count < 0.01
            )  # an absent value or a result shared with an earlier metric
            rows.append(
                _row(
                    name,
                    ours.models.get(name, ""),
                    ours.setup[name],
                    ours.score[name] / count,
                    naive.setup[name],
                    (naive.decode[name] + naive.score[name]) / count,
                    None if near_zero else theirs / mine,
                    agreement.max_diff,
                    _disagreement(agreement) or ("ratio n/a: ours ~0 s" if near_zero else ""),
                )
            )
        decode, naive_decode = ours.decode["decode"], sum(naive.decode.values())
        rows.append(
            _row(
                DECODE_STAGE,
                "",
                0.0,
                decode / count,
                0.0,
                naive_decode / count,
                naive_decode / decode if decode > 0 else None,
                None,
                "ours: once per video; one-by-one: per metric, included in its row",
            )
        )
        ours_setup, naive_setup = sum(ours.setup.values()), sum(naive.setup.values())
        rows.append(
            _row(
                "total",
                "",
                ours_setup,
                (ours.total - ours_setup) / count,
                naive_setup,
                (naive.total - naive_setup) / count,
                self.ratio,
                self.agreement.max_diff,
                "ratio: wall clock, setup included",
            )
        )
        for name, reason in ours.skipped.items():
            rows.append(_row(name, "", None, None, None, None, None, None, f"skipped: {reason}"))
        return pd.DataFrame(rows)

    def summary(self) -> list[str]:
        """The ratio, the values' agreement and, when they disagree, a line saying so."""
        agreement = self.agreement
        lines = [
            f"Ratio one-by-one / ours: {self.ratio:.2f}x (wall clock over {self.count} video(s), setup included: "
            f"ours {self.ours.total:.2f} s, one-by-one {self.naive.total:.2f} s).",
            f"Values: max |ours - one-by-one| = {agreement.max_diff:.3g} over {agreement.compared} values "
            f"(tolerance {TOLERANCE:g}); absent in both: {agreement.absent_both}; absent in one pass only: "
            f"{len(agreement.absent_mismatch)}.",
            f"Overlap in ours: {describe_overlap(self.ours.overlap)}.",
        ]
        if not agreement.ok:
            lines.append(f"VALUES DIFFER between the two passes: {_disagreement(agreement)}.")
        return lines


def _row(
    stage: str,
    models: str,
    ours_setup: float | None,
    ours_video: float | None,
    naive_setup: float | None,
    naive_video: float | None,
    ratio: float | None,
    max_diff: float | None,
    note: str,
) -> dict:
    return {
        "stage": stage,
        "models": models,
        "ours_setup_s": ours_setup,
        "ours_s_per_video": ours_video,
        "one_by_one_setup_s": naive_setup,
        "one_by_one_s_per_video": naive_video,
        "one_by_one_vs_ours": ratio,
        "max_abs_diff": max_diff,
        "note": note,
    }


def _disagreement(agreement: Agreement) -> str:
    """What is wrong with the values, "" when they agree."""
    if agreement.ok:
        return ""
    problems = []
    if not agreement.max_diff <= TOLERANCE:
        problems.append(f"max |difference| {agreement.max_diff:.3g} > {TOLERANCE:g}")
    if agreement.absent_mismatch:
        keys = ", ".join(f"{stem}/{metric}" for stem, metric in agreement.absent_mismatch)
        problems.append(f"absent in one pass only: {keys}")
    return "; ".join(problems)


def profile_one_by_one(
    videos: list[Path],
    *,
    suite: str = "opens2v",
    data_root: Path | None = None,
    metric_names: list[str] | None = None,
    device: str = "cpu",
    overlap: Overlap = SEQUENTIAL,
) -> OneByOneProfile:
    """Time our shared pass, then the official scripts' one-metric-at-a-time way, on the same videos;
    both from empty caches. Metrics skipped by ours (weights missing) are not run one by one."""
    the_suite = load_suite(suite, data_root)
    cases = {case.id: case for case in the_suite.cases}
    clock = Clock(device)
    ours = score_all(list(videos), cases, metric_names or ["available"], device, clock, overlap)
    naive = score_one_by_one(list(videos), cases, list(ours.score), device, clock)
    return OneByOneProfile(ours, naive, compare(ours.values, naive.values), len(videos))
