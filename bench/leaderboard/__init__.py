"""Leaderboard tables from result folders: per-metric averages, the OpenS2V Total, case counts,
partial-run marks and bootstrap 95% intervals.

Three steps, one module each, so a new output format is one small renderer:

    results = load_runs(paths, official_domain=OFFICIAL_DOMAIN)      # loading: long frame + RunInfo
    tables  = suite_tables(results.frame, case_ids=results.case_ids(),
                           version="v1.1", published=True,
                           aggregators=metric_aggregators())          # aggregation: {suite: DataFrame}
    text    = render(tables, "md" | "csv" | "html")                   # render_markdown / _csv / _html
    write_leaderboard(text, out)                                      # --out FILE

or everything at once: `leaderboard(paths, fmt=None, out="x.csv")` (the format follows the
suffix of `out`: .csv, .md / .markdown, .html / .htm). The HTML report (`bench/report`) reads
the same tables. `build_table` (alias `suite_table`) documents the columns; `loading` documents
the long frame. User errors raise `ScoreFileError` (a `BenchError`).

`published=True` adds the published rows of the suite's protocol (`bench/protocols`; OpenS2V:
`bench/data/opens2v/leaderboard/file_v1.x/results_<domain>.csv`, kind "published"). Our rows come first in input order, then the
published ones by TotalScore, best first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from kaleido_bench.bench.leaderboard import render_csv, render_html, render_markdown
from kaleido_bench.bench.leaderboard.aggregation import (
    COUNT_COLUMNS,
    METRIC_ORDER,
    RUN_COLUMNS,
    Aggregator,
    build_table,
    category_tables,
    counts_table,
    excluded_notes,
    mean_aggregator,
    metric_aggregators,
    order_columns,
    stat_column,
    suite_table,
    suite_tables,
    value_columns,
)
from kaleido_bench.bench.leaderboard.loading import (
    LONG_COLUMNS,
    Results,
    RunInfo,
    case_category,
    load_results,
    load_runs,
    model_label,
)
from kaleido_bench.bench.leaderboard.render_csv import to_csv
from kaleido_bench.bench.leaderboard.render_markdown import MISSING as MISSING_MD
from kaleido_bench.bench.leaderboard.render_markdown import to_markdown
from kaleido_bench.bench.protocols.opens2v import (
    OFFICIAL_DOMAIN,
    PERCENT_COLUMNS,
    SLOT_COLUMNS,
    ScoreFileError,
    parse_percent,
    published_rows,
)
from kaleido_bench.core.errors import UnknownNameError

__all__ = [
    "COUNT_COLUMNS",
    "FORMATS",
    "LONG_COLUMNS",
    "METRIC_ORDER",
    "MISSING_MD",
    "PERCENT_COLUMNS",
    "RUN_COLUMNS",
    "SLOT_COLUMNS",
    "Aggregator",
    "Results",
    "RunInfo",
    "build_table",
    "case_category",
    "category_tables",
    "counts_table",
    "excluded_notes",
    "format_from_path",
    "leaderboard",
    "load_results",
    "load_runs",
    "mean_aggregator",
    "metric_aggregators",
    "model_label",
    "order_columns",
    "parse_percent",
    "published_rows",
    "render",
    "skipped_notes",
    "stat_column",
    "suite_table",
    "suite_tables",
    "to_csv",
    "to_markdown",
    "value_columns",
    "write_leaderboard",
]

RENDERERS = {"md": render_markdown.render, "csv": render_csv.render, "html": render_html.render}
FORMATS = tuple(RENDERERS)
SUFFIXES = {".csv": "csv", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html"}


def render(tables: Mapping[str, pd.DataFrame], fmt: str = "md") -> str:
    """All tables as one text. md: a "## <suite>" section per suite. csv: one table (the
    suites stacked with the union of their columns). html: a standalone sortable page."""
    if fmt not in RENDERERS:
        raise UnknownNameError(f"unknown leaderboard format {fmt!r} (known: {', '.join(FORMATS)})")
    return RENDERERS[fmt](tables)


def format_from_path(out: str | Path, default: str = "md") -> str:
    """ "csv" for a .csv file, "md" for .md/.markdown, "html" for .html/.htm, else `default`."""
    return SUFFIXES.get(Path(out).suffix.lower(), default)


def write_leaderboard(text: str, out: str | Path) -> Path:
    """Write rendered text to `--out FILE` (parent folders created)."""
    path = Path(out).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as exc:
        raise ScoreFileError(f"cannot write leaderboard to {path}: {exc}") from None
    return path


def skipped_notes(results: Results) -> list[str]:
    """ "<run folder>: <metric> skipped (<reason>)" for metrics a run skipped (missing weights)."""
    return [
        f"{Path(run.source).name}: {name} skipped ({reason})"
        for run in results.runs
        for name, reason in run.skipped.items()
    ]


def leaderboard(
    paths: Sequence[str | Path],
    *,
    fmt: str | None = None,
    out: str | Path | None = None,
    version: str = "v1.1",
    published: bool = False,
    aggregators: Mapping[str, Aggregator] | None = None,
    official_domain: str = OFFICIAL_DOMAIN,
    official_mode: str = "official",
) -> str:
    """Load, tabulate, render (and write to `out` when given); returns the text.

    `fmt` None: taken from `out`'s suffix, else "md". Markdown ends with the metrics each run
    skipped ("Not scored:"); CSV stays one plain table."""
    fmt = fmt or (format_from_path(out) if out else "md")
    if fmt not in RENDERERS:
        raise UnknownNameError(f"unknown leaderboard format {fmt!r} (known: {', '.join(FORMATS)})")
    results = load_runs(paths, official_domain=official_domain)
    tables = suite_tables(
        results.frame,
        version=version,
        aggregators=aggregators,
        published=published,
        official_mode=official_mode,
        case_ids=results.case_ids(),
    )
    text = render(tables, fmt)
    notes = skipped_notes(results)
    if fmt == "md" and notes:
        text = text.rstrip("\n") + "\n\nNot scored:\n" + "".join(f"- {note}\n" for note in notes)
    if out is not None:
        write_leaderboard(text, out)
    return text
