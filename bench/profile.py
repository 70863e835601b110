"""`kaleido-bench profile`: seconds per video for decoding and for each metric on this machine.

Model loading (`setup`) is timed once and reported apart from the per-video cost, the way a
run pays it, next to the models each metric loaded and their parameter counts. Videos are
matched to cases by file stem; a stem that is not a case of the suite gets a stand-in case
(prompt "", no references) so reference-free metrics still time it. `profile_one_by_one` times
our shared pass against the official scripts' one-metric-at-a-time way (`scoring_passes`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kaleido_bench.bench.cases import Case
from kaleido_bench.bench.concurrency import SEQUENTIAL, Overlap
from kaleido_bench.bench.engine import Engine, Job
from kaleido_bench.bench.runner import select_metrics
from kaleido_bench.bench.scoring_passes import (
    TOLERANCE,
    Agreement,
    Clock,
    PassResult,
    compare,
    describe_models,
    describe_overlap,
    score_all,
    score_one_by_one,
)
from kaleido_bench.bench.suites import load_suite
from kaleido_bench.bench.video import decode_video
from kaleido_bench.metrics.context import ScoringContext

DECODE_STAGE = "decode (PyAV rgb24)"


def profile_videos(videos: list[Path], *, suite: str = "opens2v", data_root: Path | None = None,
                   metric_names: list[str] | None = None, repeat: int = 1, device: str = "cpu") -> pd.DataFrame:
    """One row per stage ("decode", then each metric): models loaded, setup seconds and mean seconds per video.

    Scored by the engine one metric at a time (each metric's seconds are its own), on videos
    decoded once beforehand (the decode row)."""
    the_suite = load_suite(suite, data_root)
    cases = {case.id: case for case in the_suite.cases}
    metrics, skipped = select_metrics(metric_names or ["available"])
    decoded = {}
    started = time.perf_counter()
    for _ in range(repeat):
        for path in videos:
            decoded[path] = decode_video(path)
    decode_seconds = (time.perf_counter() - started) / (repeat * len(videos))
    first = next(iter(decoded.values()))
    size = {"frames": first.num_frames, "size": f"{first.height}x{first.width}"}
    rows = [{"stage": DECODE_STAGE, "models": "", "setup_s": 0.0, "s_per_video": decode_seconds, **size, "note": ""}]
    with ScoringContext.create(device) as context:
        engine = Engine(metrics, context, decode=decoded.__getitem__)
        for metric in metrics:
            engine.set_up(metric)
            seconds, notes = 0.0, set()
            jobs = [Job(cases.get(path.stem) or Case(path.stem, "", ()), path, [metric.name])
                    for _ in range(repeat) for path in videos]
            for outcome in engine.score(jobs):
                if outcome.error is not None:
                    raise outcome.error
                seconds += outcome.seconds
                if outcome.result.value is None:
                    notes.add(str(outcome.result.details.get("absent", "absent")))
            rows.append({"stage": metric.name, "models": describe_models(metric), "setup_s": engine.stats.setup[metric.name],
                         "s_per_video": seconds / (repeat * len(videos)), **size, "note": "; ".join(sorted(notes))})
    for name, reason in skipped.items():
        rows.append({"stage": name, "models": "", "setup_s": None, "s_per_video": None, "frames": None, "size": "",
                     "note": f"skipped: {reason}"})
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame) -> str:
    """A profile table as markdown: seconds to 3 decimals, value differences in 3 significant digits."""
    return table.to_markdown(index=False, floatfmt=[".3g" if column == "max_abs_diff" else ".3f"
                                                    for column in table.columns])


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
            near_zero = mine / count < 0.01  # an absent value or a result shared with an earlier metric
            rows.append(_row(name, ours.models.get(name, ""), ours.setup[name], ours.score[name] / count,
                             naive.setup[name], (naive.decode[name] + naive.score[name]) / count,
                             None if near_zero else theirs / mine, agreement.max_diff,
                             _disagreement(agreement) or ("ratio n/a: ours ~0 s" if near_zero else "")))
        decode, naive_decode = ours.decode["decode"], sum(naive.decode.values())
        rows.append(_row(DECODE_STAGE, "", 0.0, decode / count, 0.0, naive_decode / count,
                         naive_decode / decode if decode > 0 else None, None,
                         "ours: once per video; one-by-one: per metric, included in its row"))
        ours_setup, naive_setup = sum(ours.setup.values()), sum(naive.setup.values())
        rows.append(_row("total", "", ours_setup, (ours.total - ours_setup) / count, naive_setup,
                         (naive.total - naive_setup) / count, self.ratio, self.agreement.max_diff,
                         "ratio: wall clock, setup included"))
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


def _row(stage: str, models: str, ours_setup: float | None, ours_video: float | None, naive_setup: float | None,
         naive_video: float | None, ratio: float | None, max_diff: float | None, note: str) -> dict:
    return {"stage": stage, "models": models, "ours_setup_s": ours_setup, "ours_s_per_video": ours_video,
            "one_by_one_setup_s": naive_setup, "one_by_one_s_per_video": naive_video, "one_by_one_vs_ours": ratio,
            "max_abs_diff": max_diff, "note": note}


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


def profile_one_by_one(videos: list[Path], *, suite: str = "opens2v", data_root: Path | None = None,
                       metric_names: list[str] | None = None, device: str = "cpu",
                       overlap: Overlap = SEQUENTIAL) -> OneByOneProfile:
    """Time our shared pass, then the official scripts' one-metric-at-a-time way, on the same videos;
    both from empty caches. Metrics skipped by ours (weights missing) are not run one by one."""
    the_suite = load_suite(suite, data_root)
    cases = {case.id: case for case in the_suite.cases}
    clock = Clock(device)
    ours = score_all(list(videos), cases, metric_names or ["available"], device, clock, overlap)
    naive = score_one_by_one(list(videos), cases, list(ours.score), device, clock)
    return OneByOneProfile(ours, naive, compare(ours.values, naive.values), len(videos))
