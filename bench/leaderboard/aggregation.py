"""Aggregation: the long frame -> one table per suite (or per category of a suite).

`build_table` is the ONE table-building function; markdown, CSV and the HTML report all render
its DataFrame. One row per run (our runs first in input order, then published rows by
TotalScore, best first), columns in this order:

- `model`, `kind`, `source`, `suite`; `videos` (cases with at least one scored or absent
  metric), `failed` (cases with at least one failure);
- suites whose protocol has a Total (`bench/protocols`; OpenS2V's today): `version` when the
  Total is versioned, then the columns the protocol fills (`SuiteProtocol.table_columns`). For
  OpenS2V: the Total and normalised slots in percent like the published CSVs (round(x * 100,
  2)): `TotalScore`, `Aesthetics`, `MotionSmoothness`, `MotionAmplitude` (v1.0: one `Motion`
  column = MotionAmplitude), `FaceSim`, `GmeScore`, `NexusScore` (not for Human-Domain),
  `NaturalScore` (the arithmetic: `protocols/opens2v.py`, SPEC.md section 2);
- every suite: the raw per-metric averages under our metric names (snake_case): a plain mean
  over the cases where the metric is present, or `aggregators[metric](items)` with `items` a
  list of `(value, details)` (present values only; `metric_aggregators()` builds these from
  the metric classes' own `aggregate` classmethod, e.g. VBench's frame-weighted dimensions);
- `cases` (the suite's cases, when the suite is known) and `partial` (True when the run scored
  fewer videos than the suite has cases, or a case failed: its values cover part of the suite);
- per value column `X`: `X.n` (cases the value covers), `X.ci_low` / `X.ci_high` (bootstrap
  95% interval over those cases, `bootstrap.py`), and `X.excluded` (values left out because
  they are not finite numbers; the column exists only when some run has one).

A metric no video of a run has is MISSING (NaN), never 0; a Total that needs a missing slot is
missing too. A value that is NaN or infinite in `scores.jsonl` ("invalid" in the long frame) is
left out of the mean and counted in `X.excluded`, so one bad line never hides a column. Official
folders keep the official merge's quirk by default (`official_mode="official"`: a slot no video
has averages to 0 before scaling); `official_mode="ours"` treats them like our runs.

Case filter: a protocol may fix the cases that count for our runs
(`SuiteProtocol.counted_case_ids`). OpenS2V counts only the cases of the run's domain suite,
a difference from the official merge on purpose: `merge_result.py` scores EVERY file in its
folder and the domain only picks the weights, so official folders are not filtered.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

from kaleido_bench.bench.leaderboard import bootstrap
from kaleido_bench.bench.protocols import check_version, protocol_for, total_columns
from kaleido_bench.bench.store import GENERATE

Aggregator = Callable[[list[tuple[float, dict[str, Any]]]], float | None]

# raw metric columns: these first (in this order), any other metric after them
METRIC_ORDER = (
    "aesthetics",
    "motion_smoothness",
    "motion_amplitude",
    "face_sim_cur",
    "face_sim_arc",
    "gme_score",
    "nexus_score",
    "natural_score",
)
RUN_COLUMNS = ("model", "kind", "source", "suite")
COUNT_COLUMNS = ("videos", "failed")
COVERAGE_COLUMNS = ("cases", "partial")
STATS = ("n", "ci_low", "ci_high", "excluded")
_INFO = (*RUN_COLUMNS, *COUNT_COLUMNS, "version", *COVERAGE_COLUMNS)


def stat_column(column: str, stat: str) -> str:
    """ "aesthetics" + "ci_low" -> "aesthetics.ci_low" (metric names never hold a dot)."""
    return f"{column}.{stat}"


def value_columns(table: pd.DataFrame) -> list[str]:
    """The columns that hold values (percent slots and metric averages), in table order."""
    return [c for c in table.columns if c not in _INFO and "." not in c]


def is_stat_column(column: str) -> bool:
    return "." in column and column.rsplit(".", 1)[1] in STATS


# -- aggregators ----------------------------------------------------------------------------


def mean_aggregator(items: list[tuple[float, dict[str, Any]]]) -> float | None:
    """Plain mean over the cases where the metric is present; None when none is."""
    return sum(value for value, _ in items) / len(items) if items else None


def metric_aggregators(names: Iterable[str] | None = None) -> dict[str, Aggregator]:
    """Aggregators for registered metrics whose class overrides `Metric.aggregate` (a
    classmethod, so no metric is built); metrics that keep the plain mean are left out."""
    from kaleido_bench.metrics.base import Metric, MetricResult, load_builtin_metrics

    registry = load_builtin_metrics()
    out: dict[str, Aggregator] = {}
    for name in names if names is not None else registry.names():
        cls = registry.get(name)
        if cls.aggregate.__func__ is Metric.aggregate.__func__:
            continue
        out[name] = _class_aggregate(cls, MetricResult)
    return out


def _class_aggregate(metric: Any, result_type: Any) -> Aggregator:
    def aggregate(items: list[tuple[float, dict[str, Any]]]) -> float | None:
        return metric.aggregate([result_type(value, details) for value, details in items])

    return aggregate


# -- one run --------------------------------------------------------------------------------


def _put(
    row: dict[str, Any],
    column: str,
    value: float | None,
    n: int,
    ci: tuple[float, float],
    excluded: int = 0,
    digits: int | None = None,
) -> None:
    low, high = ci
    if digits is not None:
        low, high = (round(x, digits) if math.isfinite(x) else x for x in (low, high))
    row[column] = value
    row[stat_column(column, "n")] = n
    row[stat_column(column, "ci_low")] = low if value is not None else math.nan
    row[stat_column(column, "ci_high")] = high if value is not None else math.nan
    row[stat_column(column, "excluded")] = excluded


def _run_row(
    run: pd.DataFrame,
    *,
    version: str,
    aggregators: Mapping[str, Aggregator],
    official_mode: str,
    case_ids: Mapping[str, frozenset[str]],
    restrict: frozenset[str] | None,
    reps: int,
    seed: int,
) -> dict[str, Any]:
    first = run.iloc[0]
    kind, suite, domain, source = first["kind"], first["suite"], first["domain"], first["source"]
    protocol = protocol_for(suite)
    counted = protocol.counted_case_ids(domain)
    known = counted if counted is not None else case_ids.get(source)
    if counted is not None and kind == "ours":
        run = run[run["case"].isin(counted)]
    if restrict is not None:
        run = run[run["case"].isin(restrict)]
        known = known & restrict if known is not None else None
    scored = run[(run["metric"] != GENERATE) & run["status"].isin(("ok", "absent"))]
    row: dict[str, Any] = {
        "model": first["model"],
        "kind": kind,
        "source": source,
        "suite": suite,
        "videos": scored["case"].nunique(),
        "failed": run.loc[run["status"] == "failed", "case"].nunique(),
    }
    ok = run[run["status"] == "ok"]
    invalid = run[run["status"] == "invalid"]
    if protocol.has_total:
        if protocol.versions:
            row["version"] = version
        reads = protocol.total_metrics
        used = ok if reads is None else ok[ok["metric"].isin(reads)]
        per_video: dict[str, dict[str, float]] = {}
        for case, metric, value in used[["case", "metric", "value"]].itertuples(index=False):
            per_video.setdefault(case, {})[metric] = value
        bad = invalid if reads is None else invalid[invalid["metric"].isin(reads)]
        columns = protocol.table_columns(
            per_video,
            list(bad[["case", "metric"]].itertuples(index=False, name=None)),
            domain=domain,
            version=version,
            mode=official_mode if kind == "official" else "ours",
            reps=reps,
            seed=seed,
        )
        for column in columns:
            _put(
                row, column.name, column.value, column.n, column.ci, column.excluded, column.digits
            )
    metrics = dict.fromkeys(run.loc[run["metric"] != GENERATE, "metric"])
    for metric in metrics:
        rows = ok[ok["metric"] == metric]
        items = list(zip(rows["value"].tolist(), rows["details"].tolist()))
        aggregate = aggregators.get(metric)
        value = (aggregate or mean_aggregator)(items) if items else None
        if aggregate is None:
            ci = bootstrap.mean_interval([v for v, _ in items], reps, seed)
        else:
            ci = bootstrap.statistic_interval(items, aggregate, reps, seed)
        _put(row, metric, value, len(items), ci, int((invalid["metric"] == metric).sum()))
    row["cases"] = len(known) if known is not None else None
    row["partial"] = bool(row["failed"] or (known is not None and row["videos"] < len(known)))
    return row


# -- tables ---------------------------------------------------------------------------------


def build_table(
    frame: pd.DataFrame,
    suite: str,
    *,
    version: str = "v1.1",
    aggregators: Mapping[str, Aggregator] | None = None,
    published: bool = False,
    official_mode: str = "official",
    case_ids: Mapping[str, frozenset[str]] | None = None,
    restrict: Iterable[str] | None = None,
    reps: int = bootstrap.REPS,
    seed: int = bootstrap.SEED,
) -> pd.DataFrame:
    """One row per run of `suite` (see the module docstring for the columns).

    `case_ids`: source -> its suite's case ids (from `Results.case_ids()`; a protocol with
    `counted_case_ids` knows its own), for `cases` / `partial`. `restrict`: only these cases (a category). `reps`:
    bootstrap replicates (0: no intervals)."""
    check_version(version)
    runs = frame[frame["suite"] == suite]
    subset = frozenset(restrict) if restrict is not None else None
    rows = [
        _run_row(
            run,
            version=version,
            aggregators=aggregators or {},
            official_mode=official_mode,
            case_ids=case_ids or {},
            restrict=subset,
            reps=reps,
            seed=seed,
        )
        for _, run in runs.groupby("source", sort=False)
    ]
    table = pd.DataFrame(rows)
    domains = [d for d in dict.fromkeys(runs["domain"]) if d]
    protocol = protocol_for(suite)
    pub = None
    if published and subset is None:
        pub = protocol.published_rows(domains[0] if domains else protocol.domain_of(suite), version)
    if pub is not None:
        pub = pub.assign(kind="published", source="published", suite=suite)
        if protocol.versions:
            pub = pub.assign(version=version)
        if protocol.total_column in pub.columns:
            pub = pub.sort_values(
                protocol.total_column, ascending=False, na_position="last", kind="stable"
            )
        keep = [c for c in pub.columns if c in (*RUN_COLUMNS, "version", *protocol.columns)]
        table = pd.concat([table, pub[keep]], ignore_index=True) if len(table) else pub[keep]
    return order_columns(table.reset_index(drop=True))


suite_table = build_table


def order_columns(table: pd.DataFrame) -> pd.DataFrame:
    """Columns in the documented order and dtypes: counts as Int64 (published rows have none),
    `partial` as boolean, values and intervals as float (None -> NaN). `X.excluded` columns
    that are 0 for every run are dropped."""
    leading = total_columns()
    head = [c for c in (*RUN_COLUMNS, *COUNT_COLUMNS, "version", *leading) if c in table.columns]
    values = [c for c in table.columns if c not in _INFO and "." not in c and c not in head]
    known = [c for c in METRIC_ORDER if c in values]
    ordered_values = (
        [c for c in head if c in leading] + known + [c for c in values if c not in known]
    )
    coverage = [c for c in COVERAGE_COLUMNS if c in table.columns]
    stats = [
        stat_column(v, s)
        for v in ordered_values
        for s in STATS
        if stat_column(v, s) in table.columns
    ]
    table = table[head + known + [c for c in values if c not in known] + coverage + stats].copy()
    for column in table.columns:
        stat = column.rsplit(".", 1)[1] if is_stat_column(column) else None
        if column in (*COUNT_COLUMNS, "cases") or stat in ("n", "excluded"):
            table[column] = pd.to_numeric(table[column], errors="coerce").astype("Int64")
        elif column == "partial":
            table[column] = table[column].astype("boolean")
        elif column not in (*RUN_COLUMNS, "version"):
            table[column] = pd.to_numeric(table[column], errors="coerce").astype(
                float
            )  # None -> NaN
    drop = [
        c for c in table.columns if c.endswith(".excluded") and not (table[c].fillna(0) > 0).any()
    ]
    return table.drop(columns=drop)


def suite_tables(frame: pd.DataFrame, **options: Any) -> dict[str, pd.DataFrame]:
    """`build_table` for every suite in `frame`, in order of first appearance."""
    return {suite: build_table(frame, suite, **options) for suite in dict.fromkeys(frame["suite"])}


def category_tables(
    frame: pd.DataFrame, suite: str, categories: Mapping[str, str], **options: Any
) -> dict[str, pd.DataFrame]:
    """`build_table` per category of `suite` (OpenS2V's eight: singleobj, singlehuman, ...),
    in the order of `categories` (case id -> category); no published rows."""
    cases = set(frame.loc[frame["suite"] == suite, "case"])
    groups: dict[str, list[str]] = {}
    for case, category in categories.items():
        groups.setdefault(category, []).append(case)
    options = {**options, "published": False}
    return {
        category: build_table(frame, suite, restrict=members, **options)
        for category, members in groups.items()
        if cases & set(members)
    }


def excluded_notes(table: pd.DataFrame) -> list[str]:
    """One line per (run, column) whose value leaves out non-finite values."""
    notes = []
    for column in [c for c in table.columns if c.endswith(".excluded")]:
        value_column = column[: -len(".excluded")]
        for model, source, count in table[["model", "source", column]].itertuples(index=False):
            if pd.notna(count) and count > 0:
                notes.append(
                    f"{model} ({source}): {value_column} leaves out {count} value(s) that are "
                    "not finite numbers (NaN or infinity in scores.jsonl)"
                )
    return notes


def counts_table(frame: pd.DataFrame, suite: str | None = None) -> pd.DataFrame:
    """Per run and metric (generation included as "generate"): videos scored / absent / failed /
    invalid. Not filtered by a protocol's case filter: it describes what the folder holds."""
    if suite is not None:
        frame = frame[frame["suite"] == suite]
    counts = (
        frame.groupby(["source", "model", "suite", "metric"], sort=False)["status"]
        .value_counts()
        .unstack(fill_value=0)
        .reindex(columns=["ok", "absent", "failed", "invalid"], fill_value=0)
        .rename(columns={"ok": "scored"})
        .reset_index()
    )
    counts.columns.name = None
    return counts
