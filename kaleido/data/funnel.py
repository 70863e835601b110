"""The funnel report: samples in, kept, and dropped per reason (sample level), plus every
subject- and variant-level rejection, read back from the dataset's `funnel/` parts."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any


def funnel_report(out: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for part in sorted((out / "funnel").glob("part-*.parquet")):
        rows.extend(pq.read_table(part).to_pylist())
    dropped = Counter(r["reason"] for r in rows if not r["kept"])
    rejections = Counter(x for r in rows for x in r["rejections"])
    return {
        "samples_in": len(rows),
        "kept": sum(r["kept"] for r in rows),
        "dropped": dict(dropped.most_common()),
        "rejections": dict(rejections.most_common()),
    }


def funnel_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Data pipeline funnel",
        "",
        f"- samples in: {report['samples_in']}",
        f"- kept: {report['kept']}",
        "",
    ]
    lines += ["## Samples dropped, by reason", "", "| reason | samples |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in report["dropped"].items()] or ["| (none) | 0 |"]
    lines += [
        "",
        "## Every rejection (stage: reason (subject))",
        "",
        "| rejection | count |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v} |" for k, v in report["rejections"].items()] or ["| (none) | 0 |"]
    return "\n".join(lines) + "\n"


def write_funnel(out: Path, report: dict[str, Any]) -> None:
    for name, text in (
        ("funnel.json", json.dumps(report, indent=2)),
        ("funnel.md", funnel_markdown(report)),
    ):
        tmp = out / (name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, out / name)
