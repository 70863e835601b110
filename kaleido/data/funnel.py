"""The funnel report: samples in, kept, samples dropped per reason, subjects (or their
synthesised variants) dropped per stage and filter, and the kinds of the kept references, read
back from the dataset's `funnel/` parts and shards."""

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
    subjects = Counter(
        why for r in rows for why, who in zip(r["rejections"], r["rejected_subjects"]) if who
    )
    kinds: Counter[str] = Counter()
    for part in sorted(out.glob("part-*.parquet")):
        for row in pq.read_table(part, columns=["kind"]).column("kind").to_pylist():
            kinds.update(row)
    return {
        "samples_in": len(rows),
        "kept": sum(r["kept"] for r in rows),
        "dropped": dict(dropped.most_common()),
        "subjects_dropped": dict(subjects.most_common()),
        "reference_kinds": dict(kinds.most_common()),
    }


def _table(title: str, header: str, counts: dict[str, int]) -> list[str]:
    rows = [f"| {k} | {v} |" for k, v in counts.items()] or ["| (none) | 0 |"]
    return ["", f"## {title}", "", f"| {header} |", "|---|---:|", *rows]


def funnel_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Data pipeline funnel",
        "",
        f"- samples in: {report['samples_in']}",
        f"- kept: {report['kept']}",
    ]
    lines += _table("Samples dropped, by reason", "reason | samples", report["dropped"])
    lines += _table(
        "Subjects (or their synthesised variants) dropped, by stage and filter",
        "stage: reason | subjects",
        report["subjects_dropped"],
    )
    lines += _table(
        "Reference kinds in the kept samples", "kind | references", report["reference_kinds"]
    )
    return "\n".join(lines) + "\n"


def write_funnel(out: Path, report: dict[str, Any]) -> None:
    for name, text in (
        ("funnel.json", json.dumps(report, indent=2)),
        ("funnel.md", funnel_markdown(report)),
    ):
        tmp = out / (name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, out / name)
