"""CSV renderer: every column of the table, intervals and counts included.

A missing value is an empty field (never 0). Several suites are stacked into one table with the
union of their columns; the `suite` column tells them apart."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from kaleido_bench.bench.leaderboard.aggregation import order_columns


def to_csv(table: pd.DataFrame) -> str:
    return table.to_csv(index=False, na_rep="", float_format=None)


def render(tables: Mapping[str, pd.DataFrame]) -> str:
    if not tables:
        return ""
    frames = [t for t in tables.values() if len(t)]
    stacked = pd.concat(frames, ignore_index=True) if frames else next(iter(tables.values()))
    return to_csv(order_columns(stacked))
