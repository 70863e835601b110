"""Export a run folder in other tools' formats; today the official OpenS2V per-metric JSON files.

`kaleido-bench export RUN --format opens2v --out DIR` writes what the official OpenS2V-Eval
scripts (v1.1, OpenS2V-Nexus 210eb08) would have written for the same videos, so the official
`eval/merge_result.py` can be run on our scores, and so the folder reads back through
`protocols.opens2v.read_official_folder` (the leaderboard's reader of official folders):

    aesthetic_score.json    {video: {"aes_score": x}}                  get_aesscore.py:142
    motion_amplitude.json   {video: {"motion_fb": x}}                  get_motion_amplitude.py:125
    motion_smoothness.json  {video: {"motion_smoothness": x}}          get_motion_smoothness.py:210
    facesim.json            {video: {"cur_score": x, "arc_score": y}}  get_facesim.py:214
    gmescore.json           {video: {"gme_score": x}}                  get_gmescore.py:103
    nexusscore.json         {video: {"nexus_score": x}}                get_nexusscore.py:386
    naturalscore_N.json     {video: "4"}  (one file a run, the reply)  get_naturalscore.py:190-200

each written like the scripts (`json.dump(..., indent=4)`). Which of our metrics goes to which
file and key is `protocols.opens2v.EXPORT_FILES` (built from `OFFICIAL_FILES`, the table the
reader uses). Records are the
newest per (case, metric) (`ResultStore.latest`); absent values and failures are left out, as
the official scripts leave out videos they skip. A NaturalScore record writes each VALID run's
reply to `naturalscore_<run>.json` (an invalid reply would crash the merge's `float(x)`), so the
merge's mean over the runs present equals our value. The merge reads only runs 1-3: with
`runs` > 3, `naturalscore_4.json` and later are written but ignored by it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaleido_bench.bench.protocols.opens2v import (
    EXPORT_FILES,
    NATURAL_METRIC,
    NATURAL_STEM,
    OFFICIAL_FILES,
)
from kaleido_bench.bench.store import GENERATE, MANIFEST, ResultStore, ScoreRecord
from kaleido_bench.core.atomic import write_text_atomic
from kaleido_bench.core.errors import BenchError, UnknownNameError

EXPORT_FORMATS: tuple[str, ...] = ("opens2v",)
METRIC_FILES = EXPORT_FILES  # our metric -> (official file stem, key): protocols/opens2v.py


class ExportError(BenchError):
    """A run that cannot be exported, or an output folder that would mix two exports."""


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote: videos per file, and what it left out (and why)."""

    out: Path
    files: dict[str, int]
    left_out: dict[str, int] = field(
        default_factory=dict
    )  # "absent" / "failed" / "invalid natural runs"
    not_exported: tuple[str, ...] = ()  # metrics with no official file (clip_i, decoupling, ...)

    def lines(self) -> list[str]:
        out = [f"{name}: {count} video(s)" for name, count in self.files.items()]
        out += [f"left out: {count} {why}" for why, count in self.left_out.items() if count]
        if self.not_exported:
            out.append("no official file for: " + ", ".join(self.not_exported))
        return out


def scored_records(run: str | Path) -> list[ScoreRecord]:
    """The newest record per (case, metric) of a run folder, in the order cases first appear."""
    run = Path(run)
    if not (run / MANIFEST).is_file():
        raise ExportError(f"{run} is not a result folder (no {MANIFEST})")
    return [record for record in ResultStore(run).latest().values() if record.metric != GENERATE]


def run_values(run: str | Path) -> dict[str, dict[str, float]]:
    """`{case: {metric: value}}` of a run: present values only (absent and failed left out)."""
    values: dict[str, dict[str, float]] = {}
    for record in scored_records(run):
        if record.ok and record.value is not None:
            values.setdefault(record.case, {})[record.metric] = float(record.value)
    return values


def natural_runs(record: ScoreRecord) -> dict[int, str]:
    """Run number -> reply string for each valid run of a NaturalScore record (see natural_score).

    A record without per-run details (made by other code) is one run holding its value: the
    merge then reads back exactly that value (`float(repr(x)) == x`).
    """
    runs = (record.details or {}).get("runs")
    if not runs:
        return {1: repr(float(record.value))}
    return {int(run["run"]): str(run["reply"]) for run in runs if run.get("score") is not None}


def opens2v_files(
    records: list[ScoreRecord],
) -> tuple[dict[str, dict[str, Any]], dict[str, int], tuple[str, ...]]:
    """The official files' contents `{stem: {video: entry}}`, counts left out, metrics with no file."""
    files: dict[str, dict[str, Any]] = {}
    left_out = {"absent": 0, "failed": 0, "invalid natural runs": 0}
    not_exported: list[str] = []
    key_order = {stem: [key for key, _ in pairs] for stem, pairs in OFFICIAL_FILES.items()}
    for record in records:
        known = record.metric in METRIC_FILES or record.metric == NATURAL_METRIC
        if not known:
            if record.metric not in not_exported:
                not_exported.append(record.metric)
            continue
        if not record.ok:
            left_out["failed"] += 1
            continue
        if record.value is None:
            left_out["absent"] += 1
            continue
        if record.metric == NATURAL_METRIC:
            runs = natural_runs(record)
            total_runs = len((record.details or {}).get("runs") or [None])
            left_out["invalid natural runs"] += total_runs - len(runs)
            for run, reply in sorted(runs.items()):
                files.setdefault(NATURAL_STEM.format(run=run), {})[record.case] = reply
            continue
        stem, key = METRIC_FILES[record.metric]
        entry = files.setdefault(stem, {}).setdefault(record.case, {})
        entry[key] = float(record.value)
    for stem, videos in files.items():  # keys in the official scripts' order (cur_score, arc_score)
        if stem in key_order:
            for video, entry in videos.items():
                videos[video] = {key: entry[key] for key in key_order[stem] if key in entry}
    return files, left_out, tuple(not_exported)


def export_opens2v(run: str | Path, out: str | Path, *, overwrite: bool = False) -> ExportSummary:
    """Write the run's scores as the official OpenS2V per-metric files into `out`.

    `out` must hold no official score file yet (the merge reads EVERY *.json of a folder, so a
    stale `naturalscore_3.json` would change the Total); `overwrite=True` deletes those first.
    """
    out = Path(out)
    files, left_out, not_exported = opens2v_files(scored_records(run))
    if not files:
        raise ExportError(
            f"run {run} has no OpenS2V metric score to export (metrics: {', '.join(METRIC_FILES)}, "
            f"{NATURAL_METRIC})"
        )
    stale = sorted(p.name for p in out.glob("*.json")) if out.is_dir() else []
    if stale and not overwrite:
        raise ExportError(
            f"{out} already holds {', '.join(stale[:5])}{' ...' if len(stale) > 5 else ''}; "
            "the official merge reads every .json file of a folder: choose an empty folder or "
            "pass --force to replace them"
        )
    for name in stale:
        (out / name).unlink()
    for stem, videos in files.items():
        write_text_atomic(out / f"{stem}.json", json.dumps(videos, indent=4))
    return ExportSummary(
        out, {f"{stem}.json": len(videos) for stem, videos in files.items()}, left_out, not_exported
    )


def export_run(
    run: str | Path, out: str | Path, fmt: str = "opens2v", *, overwrite: bool = False
) -> ExportSummary:
    """`kaleido-bench export`: dispatch on the format name."""
    if fmt not in EXPORT_FORMATS:
        raise UnknownNameError(
            f"unknown export format {fmt!r} (known: {', '.join(EXPORT_FORMATS)})"
        )
    return export_opens2v(run, out, overwrite=overwrite)
