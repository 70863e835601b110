"""Markdown renderer: a GitHub pipe table per suite (via tabulate), values only.

Intervals and per-value case counts stay in the CSV and the HTML report; here a missing value
is "—" (never 0), percent columns have 2 decimals and raw metric averages 4, `partial` reads
"yes" / "no", and a value that leaves out non-finite values is marked "†" with a note under
the table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from kaleido_bench.bench.leaderboard.aggregation import (
    COUNT_COLUMNS,
    RUN_COLUMNS,
    excluded_notes,
    is_stat_column,
    stat_column,
)
from kaleido_bench.bench.protocols import percent_columns

MISSING = "—"
EXCLUDED_MARK = "†"


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def cell(column: str, value: Any) -> str | None:
    if _missing(value):
        return None
    if column == "partial":
        return "yes" if value else "no"
    if column in percent_columns():
        return f"{value:.2f}"
    if column in (*COUNT_COLUMNS, "cases"):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def to_markdown(table: pd.DataFrame) -> str:
    """The table's run, count, value and coverage columns as a Markdown table."""
    columns = [c for c in table.columns if not is_stat_column(c)]
    cells = {}
    for column in columns:
        texts = [cell(column, v) for v in table[column].tolist()]
        excluded = stat_column(column, "excluded")
        if excluded in table.columns:
            texts = [
                t + EXCLUDED_MARK if t is not None and not _missing(n) and n > 0 else t
                for t, n in zip(texts, table[excluded].tolist())
            ]
        cells[column] = texts
    frame = pd.DataFrame(cells, columns=columns, dtype=object)
    numeric = [c for c in columns if c not in (*RUN_COLUMNS, "version")]
    colalign = ["right" if c in numeric else "left" for c in columns]
    return frame.to_markdown(
        index=False, missingval=MISSING, disable_numparse=True, colalign=colalign
    )


def render(tables: Mapping[str, pd.DataFrame]) -> str:
    """A "## <suite>" section per suite, with the notes on left-out values under its table."""
    sections = []
    for suite, table in tables.items():
        text = f"## {suite}\n\n{to_markdown(table)}\n"
        notes = excluded_notes(table)
        if notes:
            text += "\n" + "".join(f"{EXCLUDED_MARK} {note}\n" for note in notes)
        sections.append(text)
    return "\n".join(sections)
