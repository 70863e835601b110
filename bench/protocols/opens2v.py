"""The OpenS2V-Eval protocol: EVERY OpenS2V rule of the bench lives in this module.

- the suites and their domains (`SUITE_DOMAINS`: opens2v = Open-Domain, opens2v-human =
  Human-Domain, opens2v-single = Single-Domain; the loaders in `bench/suites.py` read this map),
  the cases each domain counts (`case_ids`) and where the images come from (`DATASET`);
- the seven metrics of the Total, our names -> the official slots (`METRIC_TO_SLOT`), which are
  also a run's default metrics (`DEFAULT_METRICS`), and FaceSim's case rule (`applies`);
- the Total: the official merge arithmetic (v1.1 and v1.0) as pure functions, below, and its
  bootstrap replicates (`total_replicates`, `slot_interval`) for the leaderboard's intervals;
- the official per-metric JSON files: their names and keys (`OFFICIAL_FILES`, `EXPORT_FILES`,
  `NATURAL_FILES`), read by `read_official_folder` / `official_total`, written by `bench/export.py`;
- the published leaderboards (`published_rows`, `SLOT_COLUMNS`, `PERCENT_COLUMNS`) and which
  metric explains each published column (`COLUMN_TO_METRIC`);
- `OpenS2VProtocol`, the `SuiteProtocol` that hands all of this to the leaderboard, the report
  and the CLI.

The Total in detail. Source: OpenS2V-Nexus `eval/merge_result.py` (v1.1, upstream commit 8cb7427) and
`eval/v1.0_backup/merge_result.py` (v1.0); see SPEC.md section 2. The arithmetic follows the
scripts operation for operation (same clipping, same left-to-right sums from 0, same
`(avg - lo) / (hi - lo)`, same order of the weighted terms), so totals match the official ones
to the last bit up to the order in which videos are read (1e-16).

Per video (after clipping; `None` = the video does not count for that slot)::

    aes_score          max(min(x, 7), 4)
    motion_smoothness  min(abs(x), 1)
    motion_amplitude   min(abs(x), 1)
    facesim_cur        min(x, 1)            (no lower clip)
    gme_score          min(x, 1)            (no lower clip)
    nexus_score        min(x, 0.05), a 0 is skipped (out of sum AND count)
    natural_score      max(min(x, 5), 1)

Then the mean over the videos that have the slot, min-max normalised with `RANGES`, and the
weighted sum with `WEIGHTS[(version, "Human" | "Open")]` ("Human-Domain" gets the Human
weights, any other domain the Open ones, as in the script). v1.0 has one Motion slot, which is
MotionAmplitude (`motionscore.json` -> `motion_fb`).

Two modes:

- `"official"`: the script's quirk is kept: a slot no video has averages to 0 BEFORE scaling
  (Aesthetics becomes -4/3, Natural -1/4) and enters the Total.
- `"ours"` (default for our runs): a slot no video has is MISSING (`None`) and a Total that
  needs it is `None` too; it is shown as missing, never computed from a zero.

API::

    compute_total(per_video, domain, version="v1.1", mode="ours") -> OpenS2VTotal
        per_video: {video_id: {slot: raw value or None}}
    total_from_slots(slots, domain, version="v1.1") -> float | None
    weights_for(domain, version="v1.1") -> tuple[(slot, weight), ...]
    clip_video_value(slot, value) -> float | None
    read_official_folder(folder) -> {video_id: {our metric name: value}}
    metrics_to_slots(per_video_metrics) -> {video_id: {slot: value}}
    official_total(folder, domain, version="v1.1", mode="official") -> OpenS2VTotal
    published_rows(domain, version="v1.1") -> DataFrame

Our metric names map to slots through `METRIC_TO_SLOT` (the one place that mapping lives).

Known differences from running the scripts by hand, all deliberate: the reader accepts either
`motion_amplitude.json` (v1.1's name) or `motionscore.json` (v1.0's) for MotionAmplitude
whatever the version asked for (v1.0's script reads only `motionscore.json`, v1.1's only
`motion_amplitude.json`, and would average a missing one to 0); files are read in name order
(the scripts use `os.listdir` order, which moves sums by about 1e-16); a non-numeric value
raises `ScoreFileError` instead of a traceback. Checked against both scripts on 400 random
folders (missing files and videos, out-of-range values, nexus zeros): totals and slots agree
to 1e-12.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kaleido_bench.bench.protocols.base import (
    PerVideo,
    SuiteProtocol,
    TotalColumn,
    register_protocol,
)
from kaleido_bench.core.errors import BenchError, UnknownNameError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# -- suites and domains ---------------------------------------------------------------------

SUITE_VERSION = "v1.1"  # the packaged suite files: OpenS2V-Eval v1.1
DATASET = "BestWishYsh/OpenS2V-Eval"
# our built-in suite name -> OpenS2V domain (bench/suites.py registers one loader per entry)
SUITE_DOMAINS: dict[str, str] = {
    "opens2v": "Open-Domain",
    "opens2v-human": "Human-Domain",
    "opens2v-single": "Single-Domain",
}
DOMAIN_SUITES: dict[str, str] = {domain: suite for suite, domain in SUITE_DOMAINS.items()}
# the domain of an official score folder when none is given (merge_result.py's own default)
OFFICIAL_DOMAIN = "Open-Domain"

SLOTS: tuple[str, ...] = (
    "aes_score",
    "motion_smoothness",
    "motion_amplitude",
    "facesim_cur",
    "gme_score",
    "nexus_score",
    "natural_score",
)

# our metric name -> official slot (merge_result.py's keys)
METRIC_TO_SLOT: dict[str, str] = {
    "aesthetics": "aes_score",
    "motion_smoothness": "motion_smoothness",
    "motion_amplitude": "motion_amplitude",
    "face_sim_cur": "facesim_cur",
    "gme_score": "gme_score",
    "nexus_score": "nexus_score",
    "natural_score": "natural_score",
}
SLOT_TO_METRIC: dict[str, str] = {slot: metric for metric, slot in METRIC_TO_SLOT.items()}

# min-max ranges of merge_result.py (also the per-video clip bounds where a slot clips)
RANGES: dict[str, tuple[float, float]] = {
    "aes_score": (4, 7),
    "motion_smoothness": (0, 1),
    "motion_amplitude": (0, 1),
    "facesim_cur": (0, 1),
    "gme_score": (0, 1),
    "nexus_score": (0, 0.05),
    "natural_score": (1, 5),
}

DEFAULT_METRICS: tuple[str, ...] = tuple(METRIC_TO_SLOT)

VERSIONS: tuple[str, ...] = ("v1.1", "v1.0")
DOMAINS: tuple[str, ...] = tuple(DOMAIN_SUITES)

# Weighted terms in the scripts' order (the order of the additions matters at 1e-16).
WEIGHTS: dict[tuple[str, str], tuple[tuple[str, float], ...]] = {
    ("v1.1", "Open"): (
        ("aes_score", 0.16),
        ("motion_smoothness", 0.06),
        ("motion_amplitude", 0.02),
        ("facesim_cur", 0.20),
        ("gme_score", 0.12),
        ("nexus_score", 0.20),
        ("natural_score", 0.24),
    ),
    ("v1.1", "Human"): (
        ("aes_score", 0.18),
        ("motion_smoothness", 0.09),
        ("motion_amplitude", 0.03),
        ("facesim_cur", 0.25),
        ("gme_score", 0.15),
        ("natural_score", 0.30),
    ),
    # v1.0's single Motion slot is MotionAmplitude (motionscore.json -> motion_fb).
    ("v1.0", "Open"): (
        ("aes_score", 0.12),
        ("motion_amplitude", 0.12),
        ("facesim_cur", 0.20),
        ("gme_score", 0.12),
        ("nexus_score", 0.20),
        ("natural_score", 0.24),
    ),
    ("v1.0", "Human"): (
        ("aes_score", 0.15),
        ("motion_amplitude", 0.15),
        ("facesim_cur", 0.25),
        ("gme_score", 0.15),
        ("natural_score", 0.30),
    ),
}

MODES: tuple[str, ...] = ("ours", "official")


class ScoreFileError(BenchError):
    """An official per-metric score file (or folder) that cannot be read."""


def _check_version(version: str) -> None:
    if version not in VERSIONS:
        raise UnknownNameError(
            f"unknown OpenS2V version {version!r} (known: {', '.join(VERSIONS)})"
        )


def weights_for(domain: str, version: str = "v1.1") -> tuple[tuple[str, float], ...]:
    """The (slot, weight) terms of the Total; only "Human-Domain" gets the Human weights."""
    _check_version(version)
    return WEIGHTS[(version, "Human" if domain == "Human-Domain" else "Open")]


def clip_video_value(slot: str, value: float) -> float | None:
    """One video's value as the merge script adds it; None when the script skips it (nexus 0)."""
    lo, hi = RANGES[slot]
    if slot in ("aes_score", "natural_score"):
        return max(min(value, hi), lo)
    if slot in ("motion_smoothness", "motion_amplitude"):
        return min(abs(value), hi)
    if slot in ("facesim_cur", "gme_score"):
        return min(value, hi)
    if slot == "nexus_score":
        return None if value == 0 else min(value, hi)
    raise UnknownNameError(f"unknown OpenS2V slot {slot!r} (known: {', '.join(SLOTS)})")


def normalise(slot: str, average: float) -> float:
    """Min-max scaling of merge_result.py: (avg - lo) / (hi - lo)."""
    lo, hi = RANGES[slot]
    return (average - lo) / (hi - lo)


def total_from_slots(
    slots: Mapping[str, float | None], domain: str, version: str = "v1.1"
) -> float | None:
    """Weighted sum of normalised slots in the script's order; None if a weighted slot is missing."""
    total: float = 0
    for slot, weight in weights_for(domain, version):
        value = slots.get(slot)
        if value is None:
            return None
        total += weight * value
    return total


@dataclass(frozen=True)
class OpenS2VTotal:
    """Result of the merge: normalised slots (0-1) and Total; `None` = missing (mode "ours")."""

    version: str
    domain: str
    mode: str
    total: float | None
    slots: dict[str, float | None]  # normalised, every slot (weighted or not)
    averages: dict[str, float | None]  # clipped per-video means before scaling
    counts: dict[str, int]  # videos that entered each slot's mean

    @property
    def weighted_slots(self) -> tuple[str, ...]:
        return tuple(slot for slot, _ in weights_for(self.domain, self.version))

    def percent(self) -> dict[str, float | None]:
        """Total and weighted slots as the published CSVs print them: round(x * 100, 2)."""
        out: dict[str, float | None] = {"total_score": _percent(self.total)}
        for slot in self.weighted_slots:
            out[slot] = _percent(self.slots[slot])
        return out


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def compute_total(
    per_video: Mapping[str, Mapping[str, float | None]],
    domain: str,
    version: str = "v1.1",
    mode: str = "ours",
) -> OpenS2VTotal:
    """The official merge on `{video_id: {slot: raw value}}` (a `None` or missing value = absent).

    Videos are visited in the mapping's order and each slot accumulates `total += clipped`
    from 0, exactly like `process_scores`. Unknown keys are ignored (the script ignores them).
    """
    _check_version(version)
    if mode not in MODES:
        raise UnknownNameError(f"unknown merge mode {mode!r} (known: {', '.join(MODES)})")
    sums: dict[str, float] = dict.fromkeys(SLOTS, 0)
    counts: dict[str, int] = dict.fromkeys(SLOTS, 0)
    for scores in per_video.values():
        for slot in SLOTS:
            value = scores.get(slot)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            clipped = clip_video_value(slot, value)
            if clipped is None:
                continue
            sums[slot] += clipped
            counts[slot] += 1
    averages: dict[str, float | None] = {}
    slots: dict[str, float | None] = {}
    for slot in SLOTS:
        if counts[slot]:
            averages[slot] = sums[slot] / counts[slot]
        else:
            averages[slot] = 0 if mode == "official" else None
        slots[slot] = None if averages[slot] is None else normalise(slot, averages[slot])
    total = total_from_slots(slots, domain, version)
    return OpenS2VTotal(version, domain, mode, total, slots, averages, counts)


# -- official per-metric JSON files ---------------------------------------------------------

# file stem -> (key inside each video's dict, our metric name); motionscore.json is v1.0's name
# for the MotionAmplitude file.
OFFICIAL_FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "aesthetic_score": (("aes_score", "aesthetics"),),
    "motion_amplitude": (("motion_fb", "motion_amplitude"),),
    "motionscore": (("motion_fb", "motion_amplitude"),),
    "motion_smoothness": (("motion_smoothness", "motion_smoothness"),),
    "facesim": (("cur_score", "face_sim_cur"), ("arc_score", "face_sim_arc")),
    "gmescore": (("gme_score", "gme_score"),),
    "nexusscore": (("nexus_score", "nexus_score"),),
}
NATURAL_FILES: tuple[str, ...] = ("naturalscore_1", "naturalscore_2", "naturalscore_3")
# merge_result.py also takes a bare number (not a dict) for these two files
_BARE_NUMBER_OK = {"motion_amplitude", "motionscore", "motion_smoothness"}


def is_official_folder(folder: str | Path) -> bool:
    """True when `folder` holds at least one official per-metric score file."""
    folder = Path(folder)
    stems = set(OFFICIAL_FILES) | set(NATURAL_FILES)
    return folder.is_dir() and any((folder / f"{stem}.json").is_file() for stem in stems)


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScoreFileError(f"score file {path} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise ScoreFileError(f"score file {path} is not a JSON object {{video_id: scores}}")
    return data


def _number(value: Any, path: Path, video: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ScoreFileError(
            f"score file {path}: video {video!r} has a non-numeric value {value!r}"
        )
    try:
        return float(value)
    except ValueError:
        raise ScoreFileError(
            f"score file {path}: video {video!r} has a non-numeric value {value!r}"
        ) from None


def read_official_folder(folder: str | Path) -> dict[str, dict[str, float]]:
    """Per-video scores from a folder of the official scripts' outputs, under OUR metric names.

    aesthetic_score.json {vid: {aes_score}} -> aesthetics; motion_amplitude.json (v1.0:
    motionscore.json) {vid: {motion_fb, motion_lk}} -> motion_amplitude (motion_fb);
    motion_smoothness.json {vid: {motion_smoothness}}; facesim.json {vid: {cur_score,
    arc_score}} -> face_sim_cur, face_sim_arc; gmescore.json; nexusscore.json;
    naturalscore_{1,2,3}.json {vid: "4"} (raw strings) -> natural_score = mean over the runs
    present for that video. A video missing from a file (or with a null) has no value there.
    Other *.json files (e.g. the merged `model_name_<domain>.json`) are ignored, as the script
    ignores them. Videos keep the order of first appearance over the files in name order.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ScoreFileError(f"score folder {folder} does not exist")
    merged: dict[str, dict[str, float]] = {}
    natural: dict[str, list[float]] = {}
    has_amplitude = (folder / "motion_amplitude.json").is_file()
    for path in sorted(folder.glob("*.json")):
        stem = path.stem
        if stem in NATURAL_FILES:
            for video, raw in _load_json(path).items():
                merged.setdefault(video, {})
                value = _number(raw, path, video)
                if value is not None:
                    natural.setdefault(video, []).append(value)
            continue
        if stem not in OFFICIAL_FILES or (stem == "motionscore" and has_amplitude):
            continue
        for video, entry in _load_json(path).items():
            scores = merged.setdefault(video, {})
            if isinstance(entry, dict):
                for key, metric in OFFICIAL_FILES[stem]:
                    value = _number(entry.get(key), path, video)
                    if value is not None:
                        scores[metric] = value
            elif stem in _BARE_NUMBER_OK:
                value = _number(entry, path, video)
                if value is not None:
                    scores[OFFICIAL_FILES[stem][0][1]] = value
    for video, runs in natural.items():
        # naturalscore_1, _2, _3 in that order, as the script sums them
        merged[video]["natural_score"] = sum(runs) / len(runs)
    return merged


def metrics_to_slots(
    per_video: Mapping[str, Mapping[str, float | None]],
) -> dict[str, dict[str, float | None]]:
    """`{video: {our metric: value}}` -> `{video: {slot: value}}`; other metrics are dropped."""
    return {
        video: {METRIC_TO_SLOT[m]: v for m, v in scores.items() if m in METRIC_TO_SLOT}
        for video, scores in per_video.items()
    }


def official_total(
    folder: str | Path, domain: str, version: str = "v1.1", mode: str = "official"
) -> OpenS2VTotal:
    """merge_result.py on a folder of official per-metric JSON files (every video in it counts)."""
    if not is_official_folder(folder):
        raise ScoreFileError(
            f"{folder} holds no official OpenS2V score files ({', '.join(sorted(OFFICIAL_FILES))}, naturalscore_N)"
        )
    return compute_total(metrics_to_slots(read_official_folder(folder)), domain, version, mode)


# our metric -> (official file stem, key inside each video's dict), what `bench/export.py` writes;
# motionscore.json is v1.0's name for the MotionAmplitude file: v1.1's motion_amplitude.json wins
EXPORT_FILES: dict[str, tuple[str, str]] = {
    metric: (stem, key)
    for stem, pairs in OFFICIAL_FILES.items()
    if stem != "motionscore"
    for key, metric in pairs
}
NATURAL_METRIC = "natural_score"
NATURAL_STEM = "naturalscore_{run}"  # get_naturalscore.py:190-200, one file a run


# -- suites: cases that count -----------------------------------------------------------------


def suite_of_domain(domain: str) -> str:
    """Our built-in suite name of an OpenS2V domain ("Open-Domain" -> "opens2v")."""
    if domain not in DOMAIN_SUITES:
        raise UnknownNameError(f"unknown OpenS2V domain {domain!r} (known: {', '.join(DOMAINS)})")
    return DOMAIN_SUITES[domain]


def suite_file(domain: str) -> str:
    """Text of the packaged official suite file of `domain` (`<domain>_Eval.json`)."""
    suite_of_domain(domain)
    return (
        resources.files("kaleido_bench.bench")
        .joinpath(f"data/opens2v/suites/{domain}_Eval.json")
        .read_text()
    )


@cache
def case_ids(domain: str) -> frozenset[str]:
    """Case ids of the packaged official suite file of `domain`."""
    return frozenset(json.loads(suite_file(domain)))


def dataset_hint(suite: str) -> str:
    """Where a built-in OpenS2V suite's reference images come from ("" for other suites)."""
    if suite in SUITE_DOMAINS or suite in {domain.lower() for domain in DOMAINS}:
        return (
            f"; suite {suite!r} reads the images of the public dataset {DATASET} "
            f"(`hf download {DATASET} --repo-type dataset --local-dir DIR`, then --data-root DIR)"
        )
    return ""


# -- published leaderboards -------------------------------------------------------------------
# `bench/data/opens2v/leaderboard/file_v1.x/results_<domain>.csv` (copies of the CSVs in
# OpenS2V-Nexus, SPEC.md section 2): "52.51%" is parsed to 52.51 and the markdown link in the
# Model column is split into `model` and `url`.

# slot -> column of the published CSVs (without their "↑")
SLOT_COLUMNS: dict[str, str] = {
    "total_score": "TotalScore",
    "aes_score": "Aesthetics",
    "motion_smoothness": "MotionSmoothness",
    "motion_amplitude": "MotionAmplitude",
    "facesim_cur": "FaceSim",
    "gme_score": "GmeScore",
    "nexus_score": "NexusScore",
    "natural_score": "NaturalScore",
}
PERCENT_COLUMNS = ("TotalScore", "Aesthetics", "Motion", *list(SLOT_COLUMNS.values())[2:])
# published column -> our metric whose page explains it (v1.0's one Motion column is MotionAmplitude)
COLUMN_TO_METRIC: dict[str, str] = {
    column: SLOT_TO_METRIC[slot] for slot, column in SLOT_COLUMNS.items() if slot in SLOT_TO_METRIC
} | {"Motion": "motion_amplitude"}

_LINK = re.compile(r"^\[(?P<name>.*)\]\((?P<url>[^)]*)\)$")


def parse_percent(text: Any) -> float:
    """ "52.51%" -> 52.51; blanks and dashes -> NaN."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return math.nan
    text = str(text).strip().rstrip("%").strip()
    if text in ("", "-", "—", "N/A"):
        return math.nan
    return float(text)


def published_rows(domain: str, version: str = "v1.1") -> pd.DataFrame:
    """The published leaderboard of `domain`, percent columns as floats.

    Columns: model, url, venue, evaluated_by, then TotalScore and the slot columns as named in
    the CSV without "↑" (v1.1: MotionSmoothness/MotionAmplitude; v1.0: Motion)."""
    import pandas as pd

    _check_version(version)
    suite_of_domain(domain)
    text = (
        resources.files("kaleido_bench.bench")
        .joinpath(f"data/opens2v/leaderboard/file_{version}/results_{domain}.csv")
        .read_text(encoding="utf-8")
    )
    raw = pd.read_csv(StringIO(text), dtype=str, keep_default_na=False)
    raw.columns = [c.replace("↑", "").strip() for c in raw.columns]
    names, urls = [], []
    for cell in raw["Model"]:
        match = _LINK.match(cell.strip())
        names.append(match["name"] if match else cell.strip())
        urls.append(match["url"] if match else "")
    out = pd.DataFrame(
        {
            "model": names,
            "url": urls,
            "venue": raw.get("Venue", ""),
            "evaluated_by": raw.get("Evaluated by", ""),
        }
    )
    for column in raw.columns:
        if column in PERCENT_COLUMNS:
            out[column] = [parse_percent(cell) for cell in raw[column]]
    return out


# -- bootstrap intervals of the Total (leaderboard) --------------------------------------------


def percent_columns_for(domain: str, version: str) -> list[tuple[str, str]]:
    """(slot, column) of the Total and the weighted slots, in the published CSVs' order."""
    columns = [("total_score", "TotalScore")]
    for slot, _ in weights_for(domain, version):
        name = "Motion" if version == "v1.0" and slot == "motion_amplitude" else SLOT_COLUMNS[slot]
        columns.append((slot, name))
    return columns


def total_replicates(
    per_video: dict[str, dict[str, float]],
    domain: str,
    version: str,
    mode: str,
    reps: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Bootstrap replicates of the Total and each slot (percent) when every video is resampled:
    the merge's arithmetic vectorised over replicates (clipped per-video values, slot means over
    the drawn videos that have the slot, min-max scaling, weighted sum). A slot no drawn video
    has is NaN in mode "ours" (that replicate is left out) and 0 before scaling in "official"."""
    import numpy as np

    from kaleido_bench.bench.leaderboard import bootstrap

    cases = list(per_video)
    draws = bootstrap.weights(len(cases), reps, seed)
    slots: dict[str, np.ndarray] = {}
    for slot in SLOTS:
        clipped = []
        for case in cases:
            value = per_video[case].get(slot)
            kept = None if value is None else clip_video_value(slot, value)
            clipped.append(np.nan if kept is None else kept)
        column = np.asarray(clipped)
        present = np.isfinite(column)
        counts = draws @ present
        sums = draws @ np.where(present, column, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            average = np.where(
                counts > 0, sums / np.maximum(counts, 1), 0.0 if mode == "official" else np.nan
            )
        slots[slot] = normalise(slot, average)
    total = np.zeros(reps)
    for slot, weight in weights_for(domain, version):
        total = total + weight * slots[slot]
    return {"total_score": total * 100, **{slot: values * 100 for slot, values in slots.items()}}


def slot_interval(
    per_video: dict[str, dict[str, float]], slot: str, reps: int, seed: int
) -> tuple[float, float]:
    """Interval of one normalised slot (percent): its mean is over the videos that have the slot,
    so those are what is resampled (the Total resamples every video). The scaling is affine and
    increasing, so the interval of the scaled mean is the scaled interval of the mean."""
    from kaleido_bench.bench.leaderboard import bootstrap

    clipped = [
        clip_video_value(slot, scores[slot])
        for scores in per_video.values()
        if scores.get(slot) is not None
    ]
    low, high = bootstrap.mean_interval([x for x in clipped if x is not None], reps, seed)
    return normalise(slot, low) * 100, normalise(slot, high) * 100


# -- the protocol -------------------------------------------------------------------------------


@register_protocol
class OpenS2VProtocol(SuiteProtocol):
    """OpenS2V-Eval: the three domain suites (and any suite whose name starts with "opens2v")."""

    name = "opens2v"
    suite_names = tuple(SUITE_DOMAINS)
    default_metrics = DEFAULT_METRICS
    versions = VERSIONS
    total_column = "TotalScore"
    total_metrics = tuple(METRIC_TO_SLOT)
    columns = PERCENT_COLUMNS
    percent_columns = PERCENT_COLUMNS
    dataset = DATASET

    def claims(self, suite_name: str) -> bool:
        return suite_name.lower().startswith("opens2v")

    def domain_of(self, suite_name: str) -> str:
        return SUITE_DOMAINS.get(suite_name.lower(), "")

    def applies(self, metric: str, case_id: str) -> bool:
        """FaceSim scores only the face case families (get_facesim.py `process_video_files`;
        `metrics/face_rules.py`); every other metric applies to every case."""
        if metric.startswith("face_sim"):
            from kaleido_bench.metrics.face_rules import is_face_case

            return is_face_case(case_id)
        return True

    def counted_case_ids(self, domain: str) -> frozenset[str] | None:
        """Our runs count only the cases of their domain's suite file. The official
        merge_result.py scores every file of its folder (the domain only picks the weights), so
        official folders are not filtered (the leaderboard applies this to our runs only)."""
        return case_ids(domain) if domain in DOMAIN_SUITES else None

    def total(
        self, per_video: PerVideo, *, domain: str = "", version: str = "", mode: str = "ours"
    ) -> float | None:
        return compute_total(
            metrics_to_slots(per_video), domain or "Open-Domain", version or "v1.1", mode
        ).total

    def table_columns(
        self,
        per_video: PerVideo,
        invalid: Sequence[tuple[str, str]] = (),
        *,
        domain: str = "",
        version: str = "",
        mode: str = "ours",
        reps: int = 0,
        seed: int = 0,
    ) -> list[TotalColumn]:
        """TotalScore and the weighted slots in percent as the published CSVs print them
        (round(x * 100, 2)); each slot's `n` is the videos in its mean, the Total's every video."""
        version = version or "v1.1"
        slots = {video: values for video, values in metrics_to_slots(per_video).items() if values}
        result = compute_total(slots, domain or "Open-Domain", version, mode)
        percent = result.percent()
        replicates = (
            total_replicates(slots, result.domain, version, mode, reps, seed)
            if slots and reps > 0
            else {}
        )
        from kaleido_bench.bench.leaderboard import bootstrap

        invalid_slots = [(case, METRIC_TO_SLOT[m]) for case, m in invalid if m in METRIC_TO_SLOT]
        out = []
        for slot, column in percent_columns_for(result.domain, version):
            if slot == "total_score":
                n = len(slots)
                ci = bootstrap.interval(replicates[slot]) if replicates else (math.nan, math.nan)
                excluded = len({case for case, _ in invalid_slots})
            else:
                n = result.counts[slot]
                ci = slot_interval(slots, slot, reps, seed)
                excluded = sum(1 for _, s in invalid_slots if s == slot)
            out.append(TotalColumn(column, percent[slot], n, ci, excluded, digits=2))
        return out

    def published_rows(self, domain: str, version: str = "") -> pd.DataFrame | None:
        domain = domain or "Open-Domain"
        return published_rows(domain, version or "v1.1") if domain in DOMAIN_SUITES else None

    def radar_axes(self, value_columns: list[str]) -> tuple[list[str], float, str] | None:
        axes = [c for c in value_columns if c in PERCENT_COLUMNS and c != "TotalScore"]
        return axes, 100.0, "OpenS2V's normalised slots (the published min-max ranges), 0-1."

    def column_metric(self, column: str) -> str | None:
        return COLUMN_TO_METRIC.get(column)
