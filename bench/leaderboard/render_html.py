"""HTML renderer: the table as a sortable `<table>` (the report's leaderboard, and
`leaderboard --format html`, a standalone page with the CSS and JS inline: no CDN).

Each value cell shows the value, its bootstrap 95% interval and the number of cases it covers;
values of partial runs are marked "*" and values that leave out non-finite numbers "†"; a
missing value is "—". Cells carry the raw number in `data-v`, which the sorting script
(`assets/table.js`) reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from html import escape
from importlib import resources
from typing import Any

import pandas as pd

from kaleido_bench.bench.leaderboard.aggregation import excluded_notes, stat_column, value_columns
from kaleido_bench.bench.protocols import percent_columns

PARTIAL_MARK = "*"
EXCLUDED_MARK = "†"
LEGEND = (
    "Click a column header to sort. Each value: bootstrap 95% interval over cases, then n = the cases it "
    f"covers. {PARTIAL_MARK} = the run covers part of the suite (fewer videos than cases, or failures); "
    f"{EXCLUDED_MARK} = non-finite values were left out of the mean; — = missing (never 0)."
)


def asset(name: str) -> str:
    """The text of `assets/<name>` shipped beside this module."""
    return (
        resources.files("kaleido_bench.bench.leaderboard")
        .joinpath("assets", name)
        .read_text(encoding="utf-8")
    )


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def number(column: str, value: Any) -> str:
    """Percent columns with 2 decimals, raw averages with 4 significant-ish decimals."""
    if _missing(value):
        return "—"
    if column in percent_columns():
        return f"{value:.2f}"
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"


def _value_cell(row: Mapping[str, Any], column: str, partial: bool) -> str:
    value = row.get(column)
    if _missing(value):
        return '<td class="value missing" data-v="">—</td>'
    n = row.get(stat_column(column, "n"))
    low, high = row.get(stat_column(column, "ci_low")), row.get(stat_column(column, "ci_high"))
    excluded = row.get(stat_column(column, "excluded"))
    marks = ""
    title = []
    if not _missing(low) and not _missing(high):
        title.append(f"95% CI [{number(column, low)}, {number(column, high)}]")
    if not _missing(n):
        title.append(f"over {int(n)} cases")
    if partial:
        marks += f'<span class="pm" title="partial run">{PARTIAL_MARK}</span>'
    if not _missing(excluded) and excluded > 0:
        marks += f'<span class="xm" title="{int(excluded)} non-finite value(s) left out">{EXCLUDED_MARK}</span>'
        title.append(f"{int(excluded)} non-finite value(s) left out")
    extra = ""
    if not _missing(low) and not _missing(high):
        extra += f'<span class="ci">[{number(column, low)}, {number(column, high)}]</span>'
    if not _missing(n):
        extra += f'<span class="n">n={int(n)}</span>'
    return (
        f'<td class="value" data-v="{float(value)!r}" title="{escape("; ".join(title))}">'
        f"{number(column, value)}{marks}{extra}</td>"
    )


def table_html(
    table: pd.DataFrame,
    *,
    links: Mapping[str, str] | None = None,
    titles: Mapping[str, str] | None = None,
    table_id: str = "",
) -> str:
    """One sortable `<table class="board sortable">`; `links` / `titles`: per value column, a
    header link (the metric's page) and tooltip (its definition)."""
    links, titles = links or {}, titles or {}
    values = value_columns(table)
    head = [
        '<th class="text" data-type="text">model</th>',
        '<th class="text" data-type="text">kind</th>',
        '<th data-type="num" title="videos scored / cases of the suite">videos</th>',
        '<th data-type="num" title="cases with a failure">failed</th>',
    ]
    for column in values:
        label = escape(column)
        if column in links:  # a small link beside the label, so a click on the label sorts
            label += f' <a class="def" href="{escape(links[column])}" title="definition and distribution">?</a>'
        head.append(
            f'<th data-type="num" title="{escape(titles.get(column, column))}">{label}</th>'
        )
    rows = []
    for row in table.to_dict("records"):
        partial = bool(row.get("partial")) if not _missing(row.get("partial")) else False
        kind = str(row.get("kind", ""))
        classes = " ".join(c for c in (kind, "partial" if partial else "") if c)
        videos, cases, failed = row.get("videos"), row.get("cases"), row.get("failed")
        coverage = "" if _missing(videos) else str(int(videos))
        if coverage and not _missing(cases):
            coverage += f" / {int(cases)}"
        model = escape(str(row.get("model", "")))
        if row.get("url"):
            model = f'<a href="{escape(str(row["url"]))}">{model}</a>'
        cells = [
            f'<td class="text" data-v="{escape(str(row.get("model", "")))}" title="{escape(str(row.get("source", "")))}">'
            f"{model}{f'<span class=pm title=partial>{PARTIAL_MARK}</span>' if partial else ''}</td>",
            f'<td class="text kind">{escape(kind)}</td>',
            f'<td data-v="{"" if _missing(videos) else int(videos)}">{coverage or "—"}</td>',
            f'<td data-v="{"" if _missing(failed) else int(failed)}">{"—" if _missing(failed) else int(failed)}</td>',
        ]
        cells += [_value_cell(row, column, partial) for column in values]
        rows.append(f'<tr class="{classes}">' + "".join(cells) + "</tr>")
    ident = f' id="{escape(table_id)}"' if table_id else ""
    return (
        f'<table class="board sortable"{ident}><thead><tr>{"".join(head)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def notes_html(table: pd.DataFrame) -> str:
    notes = excluded_notes(table)
    return "".join(f'<p class="legend">{EXCLUDED_MARK} {escape(note)}</p>' for note in notes)


def render(tables: Mapping[str, pd.DataFrame], title: str = "kaleido-bench leaderboard") -> str:
    """A standalone page: a section per suite, CSS and JS inline."""
    body = "".join(
        f"<h2>{escape(suite)}</h2>{table_html(table)}{notes_html(table)}"
        for suite, table in tables.items()
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>body{{font-family:system-ui,sans-serif;margin:1.5em}}"
        f"{asset('table.css')}</style></head><body><h1>{escape(title)}</h1>"
        f'<p class="legend">{escape(LEGEND)}</p>{body}<script>{asset("table.js")}</script></body></html>\n'
    )
