"""Leaderboard tables from result folders: per-metric averages and the OpenS2V Total.

The library side of `kaleido-bench leaderboard`; the CLI only parses options and calls::

    frame  = load_results(paths, official_domain="Open-Domain")       # long DataFrame
    tables = suite_tables(frame, version="v1.1", published=True,
                          aggregators=None, official_mode="official")  # {suite: DataFrame}
    text   = render(tables, "md" | "csv")                             # one string
    write_leaderboard(text, out)                                      # --out FILE

or everything at once: `leaderboard(paths, fmt="md", out=None, version="v1.1", published=False)`.
`counts_table(frame)` gives, per run and metric, how many videos were scored / absent / failed.
User errors raise `ScoreFileError` (a `BenchError`).

Inputs. A path is either one of our run folders (it has `manifest.json`; scores come from
`ResultStore(path).latest()`, so a retried error is replaced by its newer result) or a folder
of the official OpenS2V scripts' per-metric JSON files (no `manifest.json`; read with
`opens2v_total.read_official_folder`; its suite is the OpenS2V suite of `official_domain`).

The long frame (`load_results`) has one row per (run, case, metric): `source` (the folder),
`kind` ("ours" | "official"), `model` (the manifest's model name plus the adapter's label,
e.g. "kaleido-tiny (random weights)"; the folder name for official folders), `suite`,
`domain`, `case`, `metric`, `value` (NaN unless `status` is "ok"), `status` ("ok", "absent"
for a null value with `details.absent`, "failed" for a record with an error; generation
failures have metric "generate"), `details` (dict).

Tables (`suite_table`), one row per run: `model`, `kind`, `source`, `suite`, `videos` (cases
with at least one scored or absent metric), `failed` (cases with at least one failure), then:

- OpenS2V suites (name starting with "opens2v"): `version` and the Total and normalised slots
  in percent like the published CSVs (round(x * 100, 2)): `TotalScore`, `Aesthetics`,
  `MotionSmoothness`, `MotionAmplitude` (v1.0: one `Motion` column = MotionAmplitude),
  `FaceSim`, `GmeScore`, `NexusScore` (not for Human-Domain), `NaturalScore`. See
  `opens2v_total` for the arithmetic (SPEC.md section 2).
- every suite: the raw per-metric averages under our metric names (snake_case): a plain mean
  over the videos where the metric is present, or `aggregators[metric](items)` with `items` a
  list of `(value, details)` (present values only) returning a float or None
  (`metric_aggregators()` builds these from the metrics' own `aggregate`, e.g. VBench's
  frame-weighted dimensions).

A metric no video of a run has is MISSING (NaN in the frame; empty in CSV, "—" in Markdown),
never 0; a Total that needs a missing slot is missing too. Official folders keep the official
merge's quirk by default (`official_mode="official"`: a slot no video has averages to 0 before
scaling); `official_mode="ours"` treats them like our runs.

Case filter (a difference from the official merge, on purpose): for our OpenS2V runs only the
cases of the run's domain suite count (e.g. an Open-Domain run read as Human-Domain would use
its 60 human cases only), while the official `merge_result.py` scores EVERY file in its
folder and the domain only picks the weights; official folders are therefore not filtered.

`published=True` adds the published rows of `bench/data/opens2v/leaderboard/file_v1.x/
results_<domain>.csv` (kind "published"; "52.51%" parsed to 52.51; the markdown link in the
Model column split into `model` and `url`). Our rows come first in input order, then the
published ones by TotalScore, best first.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from importlib import resources
from io import StringIO
from pathlib import Path
from typing import Any

import pandas as pd

from kaleido_bench.bench.errors import UnknownNameError
from kaleido_bench.bench.opens2v_total import (
    DOMAINS,
    METRIC_TO_SLOT,
    VERSIONS,
    ScoreFileError,
    compute_total,
    is_official_folder,
    read_official_folder,
    weights_for,
)
from kaleido_bench.bench.store import GENERATE, MANIFEST, ResultStore

Aggregator = Callable[[list[tuple[float, dict[str, Any]]]], float | None]

LONG_COLUMNS = ("source", "kind", "model", "suite", "domain", "case", "metric", "value", "status", "details")
MISSING_MD = "—"

# OpenS2V domain -> our built-in suite name (bench/suites.py registers the same names)
OPENS2V_SUITES: dict[str, str] = {
    "Open-Domain": "opens2v",
    "Human-Domain": "opens2v-human",
    "Single-Domain": "opens2v-single",
}
_DOMAIN_OF_SUITE = {suite: domain for domain, suite in OPENS2V_SUITES.items()}

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
# raw metric columns: these first (in this order), any other metric after them
METRIC_ORDER = ("aesthetics", "motion_smoothness", "motion_amplitude", "face_sim_cur", "face_sim_arc",
                "gme_score", "nexus_score", "natural_score")
COUNT_COLUMNS = ("videos", "failed")
RUN_COLUMNS = ("model", "kind", "source", "suite")


# -- loading --------------------------------------------------------------------------------


def model_label(model: Mapping[str, Any], label: str = "") -> str:
    """"name (label)" from a manifest's model config and adapter label; the label alone when it
    already starts with the name."""
    name = str(model.get("model") or model.get("name") or "model")
    if not label:
        return name
    return label if label.startswith(name) else f"{name} ({label})"


def _status(record) -> str:
    if record.error is not None:
        return "failed"
    if record.value is None:
        return "absent"
    return "ok"


def _our_rows(path: Path) -> list[dict[str, Any]]:
    store = ResultStore(path)
    try:
        manifest = store.manifest()
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise ScoreFileError(f"{path / MANIFEST} cannot be read: {exc}") from None
    suite = manifest.suite or {}
    suite_name = str(suite.get("name", ""))
    domain = str(suite.get("domain") or _DOMAIN_OF_SUITE.get(suite_name, ""))
    run = {
        "source": str(path),
        "kind": "ours",
        "model": model_label(manifest.model, manifest.label),
        "suite": suite_name,
        "domain": domain,
    }
    rows = []
    for (case, metric), record in store.latest().items():
        status = _status(record)
        value = float(record.value) if status == "ok" else math.nan
        rows.append({**run, "case": case, "metric": metric, "value": value, "status": status,
                     "details": dict(record.details or {})})
    return rows


def _official_rows(path: Path, domain: str) -> list[dict[str, Any]]:
    run = {"source": str(path), "kind": "official", "model": path.name,
           "suite": OPENS2V_SUITES[domain], "domain": domain}
    rows = []
    for case, scores in read_official_folder(path).items():
        for metric, value in scores.items():
            rows.append({**run, "case": case, "metric": metric, "value": float(value), "status": "ok", "details": {}})
    return rows


def load_results(paths: Iterable[str | Path], *, official_domain: str = "Open-Domain") -> pd.DataFrame:
    """One long DataFrame (`LONG_COLUMNS`) from run folders and official score folders.

    A folder with `manifest.json` is one of our runs; a folder without one must hold official
    per-metric JSON files and is filed under the OpenS2V suite of `official_domain`. A path
    given twice is read once. A run with no score record yet contributes no rows.
    """
    if official_domain not in OPENS2V_SUITES:
        raise UnknownNameError(f"unknown OpenS2V domain {official_domain!r} (known: {', '.join(DOMAINS)})")
    rows: list[dict[str, Any]] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        key = path.resolve()
        if key in seen:
            continue
        seen.add(key)
        if (path / MANIFEST).is_file():
            rows += _our_rows(path)
        elif is_official_folder(path):
            rows += _official_rows(path, official_domain)
        elif not path.exists():
            raise ScoreFileError(f"result folder {path} does not exist")
        else:
            raise ScoreFileError(
                f"{path} is neither a result folder (no {MANIFEST}) nor a folder of official OpenS2V "
                f"score files (aesthetic_score.json, motion_amplitude.json, ..., naturalscore_1.json)"
            )
    return pd.DataFrame(rows, columns=list(LONG_COLUMNS))


# -- aggregation ----------------------------------------------------------------------------


def mean_aggregator(items: list[tuple[float, dict[str, Any]]]) -> float | None:
    """Plain mean over the videos where the metric is present; None when none is."""
    return sum(value for value, _ in items) / len(items) if items else None


def metric_aggregators(names: Iterable[str] | None = None) -> dict[str, Aggregator]:
    """Aggregators for registered metrics that override `Metric.aggregate` (e.g. VBench's
    frame-weighted dimensions); metrics that keep the plain mean are left out."""
    from kaleido_bench.metrics.base import Metric, MetricResult, load_builtin_metrics

    registry = load_builtin_metrics()
    out: dict[str, Aggregator] = {}
    for name in names if names is not None else registry.names():
        cls = registry.get(name)
        if cls.aggregate.__func__ is Metric.aggregate.__func__:
            continue
        out[name] = _metric_aggregate(cls, MetricResult)
    return out


def _metric_aggregate(metric: Any, result_type: Any) -> Aggregator:
    def aggregate(items: list[tuple[float, dict[str, Any]]]) -> float | None:
        return metric.aggregate([result_type(value, details) for value, details in items])

    return aggregate


@cache
def opens2v_case_ids(domain: str) -> frozenset[str]:
    """Case ids of the packaged official suite file of `domain`."""
    if domain not in OPENS2V_SUITES:
        raise UnknownNameError(f"unknown OpenS2V domain {domain!r} (known: {', '.join(DOMAINS)})")
    text = resources.files("kaleido_bench.bench").joinpath(f"data/opens2v/suites/{domain}_Eval.json").read_text()
    return frozenset(json.loads(text))


def is_opens2v(suite: str) -> bool:
    return suite.lower().startswith("opens2v")


def _percent_columns(domain: str, version: str) -> list[tuple[str, str]]:
    """(slot, column) of the Total and the weighted slots, in the published CSVs' order."""
    columns = [("total_score", "TotalScore")]
    for slot, _ in weights_for(domain, version):
        name = "Motion" if version == "v1.0" and slot == "motion_amplitude" else SLOT_COLUMNS[slot]
        columns.append((slot, name))
    return columns


def _run_row(run: pd.DataFrame, *, version: str, aggregators: Mapping[str, Aggregator],
             official_mode: str) -> dict[str, Any]:
    first = run.iloc[0]
    kind, suite, domain = first["kind"], first["suite"], first["domain"]
    opens2v = is_opens2v(suite)
    if opens2v and kind == "ours" and domain in OPENS2V_SUITES:
        run = run[run["case"].isin(opens2v_case_ids(domain))]
    scored = run[(run["metric"] != GENERATE) & run["status"].isin(("ok", "absent"))]
    row: dict[str, Any] = {
        "model": first["model"], "kind": kind, "source": first["source"], "suite": suite,
        "videos": scored["case"].nunique(),
        "failed": run.loc[run["status"] == "failed", "case"].nunique(),
    }
    ok = run[run["status"] == "ok"]
    if opens2v:
        row["version"] = version
        per_video: dict[str, dict[str, float]] = {}
        for case, metric, value in ok[ok["metric"].isin(METRIC_TO_SLOT)][["case", "metric", "value"]].itertuples(index=False):
            per_video.setdefault(case, {})[METRIC_TO_SLOT[metric]] = value
        mode = official_mode if kind == "official" else "ours"
        result = compute_total(per_video, domain or "Open-Domain", version, mode)
        percent = result.percent()
        for slot, column in _percent_columns(result.domain, version):
            row[column] = percent[slot]
    for metric in dict.fromkeys(run.loc[run["metric"] != GENERATE, "metric"]):
        rows = ok[ok["metric"] == metric]
        items = list(zip(rows["value"].tolist(), rows["details"].tolist()))
        row[metric] = (aggregators.get(metric) or mean_aggregator)(items) if items else None
    return row


def suite_table(
    frame: pd.DataFrame,
    suite: str,
    *,
    version: str = "v1.1",
    aggregators: Mapping[str, Aggregator] | None = None,
    published: bool = False,
    official_mode: str = "official",
) -> pd.DataFrame:
    """One row per run of `suite` (see the module docstring for the columns)."""
    if version not in VERSIONS:
        raise UnknownNameError(f"unknown OpenS2V version {version!r} (known: {', '.join(VERSIONS)})")
    runs = frame[frame["suite"] == suite]
    rows = [
        _run_row(run, version=version, aggregators=aggregators or {}, official_mode=official_mode)
        for _, run in runs.groupby("source", sort=False)
    ]
    table = pd.DataFrame(rows)
    domains = [d for d in dict.fromkeys(runs["domain"]) if d]
    if is_opens2v(suite):
        domain = domains[0] if domains else _DOMAIN_OF_SUITE.get(suite, "Open-Domain")
        if published and domain in OPENS2V_SUITES:
            pub = published_rows(domain, version).assign(kind="published", source="published", suite=suite,
                                                         version=version)
            pub = pub.sort_values("TotalScore", ascending=False, na_position="last", kind="stable")
            keep = [c for c in pub.columns if c in (*RUN_COLUMNS, "version", *PERCENT_COLUMNS)]
            table = pd.concat([table, pub[keep]], ignore_index=True) if len(table) else pub[keep]
    return _order_columns(table.reset_index(drop=True))


def _order_columns(table: pd.DataFrame) -> pd.DataFrame:
    head = [c for c in (*RUN_COLUMNS, *COUNT_COLUMNS, "version", *PERCENT_COLUMNS) if c in table.columns]
    known = [c for c in METRIC_ORDER if c in table.columns and c not in head]
    rest = known + [c for c in table.columns if c not in head and c not in known]
    table = table[head + rest].copy()
    for column in COUNT_COLUMNS:
        if column in table.columns:
            table[column] = table[column].astype("Int64")  # published rows have no counts
    for column in table.columns:
        if column not in (*RUN_COLUMNS, "version", *COUNT_COLUMNS):
            table[column] = pd.to_numeric(table[column], errors="coerce").astype(float)  # None -> NaN
    return table


def suite_tables(frame: pd.DataFrame, **options: Any) -> dict[str, pd.DataFrame]:
    """`suite_table` for every suite in `frame`, in order of first appearance."""
    return {suite: suite_table(frame, suite, **options) for suite in dict.fromkeys(frame["suite"])}


def counts_table(frame: pd.DataFrame, suite: str | None = None) -> pd.DataFrame:
    """Per run and metric (generation included as "generate"): videos scored / absent / failed.

    Not filtered by the OpenS2V case filter: it describes what the folder holds."""
    if suite is not None:
        frame = frame[frame["suite"] == suite]
    counts = (
        frame.groupby(["source", "model", "suite", "metric"], sort=False)["status"]
        .value_counts().unstack(fill_value=0)
        .reindex(columns=["ok", "absent", "failed"], fill_value=0)
        .rename(columns={"ok": "scored"})
        .reset_index()
    )
    counts.columns.name = None
    return counts


# -- published rows -------------------------------------------------------------------------

_LINK = re.compile(r"^\[(?P<name>.*)\]\((?P<url>[^)]*)\)$")


def parse_percent(text: Any) -> float:
    """"52.51%" -> 52.51; blanks and dashes -> NaN."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return math.nan
    text = str(text).strip().rstrip("%").strip()
    if text in ("", "-", "—", "N/A"):
        return math.nan
    return float(text)


def published_rows(domain: str, version: str = "v1.1") -> pd.DataFrame:
    """The published leaderboard of `domain` shipped in the package, percent columns as floats.

    Columns: model, url, venue, evaluated_by, then TotalScore and the slot columns as named in
    the CSV without "↑" (v1.1: MotionSmoothness/MotionAmplitude; v1.0: Motion)."""
    if version not in VERSIONS:
        raise UnknownNameError(f"unknown OpenS2V version {version!r} (known: {', '.join(VERSIONS)})")
    if domain not in OPENS2V_SUITES:
        raise UnknownNameError(f"unknown OpenS2V domain {domain!r} (known: {', '.join(DOMAINS)})")
    text = resources.files("kaleido_bench.bench").joinpath(
        f"data/opens2v/leaderboard/file_{version}/results_{domain}.csv").read_text(encoding="utf-8")
    raw = pd.read_csv(StringIO(text), dtype=str, keep_default_na=False)
    raw.columns = [c.replace("↑", "").strip() for c in raw.columns]
    names, urls = [], []
    for cell in raw["Model"]:
        match = _LINK.match(cell.strip())
        names.append(match["name"] if match else cell.strip())
        urls.append(match["url"] if match else "")
    out = pd.DataFrame({"model": names, "url": urls, "venue": raw.get("Venue", ""),
                        "evaluated_by": raw.get("Evaluated by", "")})
    for column in raw.columns:
        if column in PERCENT_COLUMNS:
            out[column] = [parse_percent(cell) for cell in raw[column]]
    return out


# -- writers --------------------------------------------------------------------------------


def to_csv(table: pd.DataFrame) -> str:
    """CSV text; a missing value is an empty field (never 0)."""
    return table.to_csv(index=False, na_rep="", float_format=None)


def _md_cell(column: str, value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if column in PERCENT_COLUMNS:
        return f"{value:.2f}"
    if column in COUNT_COLUMNS:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def to_markdown(table: pd.DataFrame) -> str:
    """A Markdown (GitHub pipe) table via tabulate; missing values show as "—" (never 0).
    Percent columns with 2 decimals, raw metric averages with 4."""
    cells = pd.DataFrame(
        {column: [_md_cell(column, v) for v in table[column].tolist()] for column in table.columns},
        columns=table.columns, dtype=object,
    )
    numeric = [c for c in table.columns if c not in (*RUN_COLUMNS, "version")]
    colalign = ["right" if c in numeric else "left" for c in table.columns]
    return cells.to_markdown(index=False, missingval=MISSING_MD, disable_numparse=True, colalign=colalign)


FORMATS = ("md", "csv")


def render(tables: Mapping[str, pd.DataFrame], fmt: str = "md") -> str:
    """All tables as one text. md: a "## <suite>" section per suite. csv: one table (the
    suites stacked with the union of their columns; the `suite` column tells them apart)."""
    if fmt not in FORMATS:
        raise UnknownNameError(f"unknown leaderboard format {fmt!r} (known: {', '.join(FORMATS)})")
    if fmt == "csv":
        if not tables:
            return ""
        frames = [t for t in tables.values() if len(t)]
        stacked = pd.concat(frames, ignore_index=True) if frames else next(iter(tables.values()))
        return to_csv(_order_columns(stacked))
    return "\n".join(f"## {suite}\n\n{to_markdown(table)}\n" for suite, table in tables.items())


def format_from_path(out: str | Path, default: str = "md") -> str:
    """"csv" for a .csv file, "md" for .md/.markdown, else `default`."""
    suffix = Path(out).suffix.lower()
    return {".csv": "csv", ".md": "md", ".markdown": "md"}.get(suffix, default)


def write_leaderboard(text: str, out: str | Path) -> Path:
    """Write rendered text to `--out FILE` (parent folders created)."""
    path = Path(out).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as exc:
        raise ScoreFileError(f"cannot write leaderboard to {path}: {exc}") from None
    return path


def leaderboard(
    paths: Sequence[str | Path],
    *,
    fmt: str | None = None,
    out: str | Path | None = None,
    version: str = "v1.1",
    published: bool = False,
    aggregators: Mapping[str, Aggregator] | None = None,
    official_domain: str = "Open-Domain",
    official_mode: str = "official",
) -> str:
    """Load, tabulate, render (and write to `out` when given); returns the text.

    `fmt` None: taken from `out`'s suffix, else "md"."""
    fmt = fmt or (format_from_path(out) if out else "md")
    frame = load_results(paths, official_domain=official_domain)
    tables = suite_tables(frame, version=version, aggregators=aggregators, published=published,
                          official_mode=official_mode)
    text = render(tables, fmt)
    if out is not None:
        write_leaderboard(text, out)
    return text
