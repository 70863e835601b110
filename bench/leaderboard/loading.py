"""Loading: run folders and official score folders -> one long frame of per-case records.

`load_runs(paths)` returns `Results(frame, runs)`: the long frame has one row per (run, case,
metric) with the columns `LONG_COLUMNS`:

- `source` (the folder), `kind` ("ours" | "official"), `model` (the manifest's model name plus
  the adapter's label, e.g. "kaleido-tiny (random weights)"; the folder name for official
  folders), `suite`, `domain`, `case`, `metric`;
- `value` (NaN unless `status` is "ok"), `status`: "ok", "absent" (a null value with
  `details.absent`), "failed" (a record with an error; generation failures have metric
  "generate") or "invalid" (a value that is not a finite number: NaN or infinity; it is left
  out of every mean and counted, see `aggregation`), and `details` (dict).

`runs` holds one `RunInfo` per folder: what the tables and the report need beyond the records
(the suite's case ids and categories when the suite can be loaded, where the videos are, the
metrics skipped for missing weights).

A path is one of our run folders (it has `manifest.json`; scores come from
`ResultStore(path).latest()`, so a retried error is replaced by its newer result) or a folder of
the official OpenS2V scripts' per-metric JSON files (no `manifest.json`; read with
`protocols.opens2v.read_official_folder`; its suite is the OpenS2V suite of `official_domain`).
A run's domain is its manifest's, else the one its suite's protocol gives (`protocol_for`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kaleido_bench.bench.protocols import protocol_for
from kaleido_bench.bench.protocols.opens2v import (
    OFFICIAL_DOMAIN,
    ScoreFileError,
    is_official_folder,
    read_official_folder,
    suite_of_domain,
)
from kaleido_bench.bench.store import MANIFEST, ResultStore
from kaleido_bench.core.errors import BenchError

LONG_COLUMNS = (
    "source",
    "kind",
    "model",
    "suite",
    "domain",
    "case",
    "metric",
    "value",
    "status",
    "details",
)
STATUSES = ("ok", "absent", "failed", "invalid")


@dataclass(frozen=True)
class RunInfo:
    """One input folder beyond its records.

    `case_ids` / `categories` come from the suite (None / empty when it cannot be loaded here,
    e.g. a suite file that has moved); `videos_dir` is None for official folders."""

    source: str
    kind: str
    model: str
    suite: str
    domain: str
    case_ids: tuple[str, ...] | None = None
    categories: dict[str, str] = field(default_factory=dict)
    prompts: dict[str, str] = field(default_factory=dict)
    references: dict[str, tuple[tuple[str, str, str], ...]] = field(default_factory=dict)
    videos_dir: Path | None = None
    skipped: dict[str, str] = field(default_factory=dict)

    def category(self, case: str) -> str:
        return self.categories.get(case) or case_category(case)


@dataclass(frozen=True)
class Results:
    """The long frame and the runs it came from, in input order."""

    frame: pd.DataFrame
    runs: tuple[RunInfo, ...]

    def case_ids(self) -> dict[str, frozenset[str]]:
        """source -> the ids of its suite's cases, for the runs whose suite is known."""
        return {
            run.source: frozenset(run.case_ids) for run in self.runs if run.case_ids is not None
        }

    def categories(self) -> dict[str, str]:
        """case id -> category, over every run (suite categories, else the id's prefix)."""
        out: dict[str, str] = {}
        for run in self.runs:
            out.update(run.categories)
        for case in self.frame["case"].unique().tolist():
            out.setdefault(case, case_category(case))
        return out


def case_category(case_id: str) -> str:
    """A case's category from its id, OpenS2V's convention: "singleobj_12" -> "singleobj",
    "bgobj_cat_grass" -> "bgobj" (the mini suite names its cases the same way)."""
    head = re.sub(r"_\d+$", "", case_id)
    return head.split("_")[0] if "_" in head else head


def model_label(model: Mapping[str, Any], label: str = "") -> str:
    """ "name (label)" from a manifest's model config and adapter label; the label alone when it
    already starts with the name."""
    name = str(model.get("model") or model.get("name") or "model")
    if not label:
        return name
    return label if label.startswith(name) else f"{name} ({label})"


def status_of(record) -> str:
    """ "failed" (an error), "absent" (a null value), "invalid" (not a finite number) or "ok"."""
    if record.error is not None:
        return "failed"
    if record.value is None:
        return "absent"
    try:
        value = float(record.value)
    except (TypeError, ValueError):
        return "invalid"
    return "ok" if math.isfinite(value) else "invalid"


def _suite_info(suite: Mapping[str, Any]) -> dict[str, Any]:
    """Case ids, categories, prompts and references of a registered suite, or {} when it cannot
    be loaded here (a suite file, a data root that is gone: the table then knows less)."""
    from kaleido_bench.bench.suites import SUITES, load_suite, suite_names

    name = str(suite.get("name", ""))
    suite_names()
    if name.lower() not in SUITES:
        return {}
    root = suite.get("data_root")
    try:
        loaded = load_suite(name, Path(root) if root else None)
    except (BenchError, OSError):
        return {}
    return {
        "case_ids": tuple(case.id for case in loaded.cases),
        "categories": {case.id: case.category or case_category(case.id) for case in loaded.cases},
        "prompts": {case.id: case.prompt for case in loaded.cases},
        "references": {
            case.id: tuple(
                (str(ref.path), ref.role.value, ref.label or "") for ref in case.references
            )
            for case in loaded.cases
        },
    }


def _our_run(path: Path) -> tuple[RunInfo, list[dict[str, Any]]]:
    store = ResultStore(path)
    try:
        manifest = store.manifest()
        suite = dict(manifest.suite or {})
    except (OSError, json.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
        raise ScoreFileError(f"{path / MANIFEST} cannot be read: {exc}") from None
    suite_name = str(suite.get("name", ""))
    domain = str(suite.get("domain") or protocol_for(suite_name).domain_of(suite_name))
    model = model_label(manifest.model, manifest.label)
    try:
        skipped = store.skipped()
    except (OSError, json.JSONDecodeError):
        skipped = {}
    info = RunInfo(
        str(path),
        "ours",
        model,
        suite_name,
        domain,
        videos_dir=store.videos_dir,
        skipped=dict(skipped) if isinstance(skipped, dict) else {},
        **_suite_info(suite),
    )
    run = {
        "source": str(path),
        "kind": "ours",
        "model": model,
        "suite": suite_name,
        "domain": domain,
    }
    rows = []
    for (case, metric), record in store.latest().items():
        status = status_of(record)
        value = float(record.value) if status == "ok" else math.nan
        rows.append(
            {
                **run,
                "case": case,
                "metric": metric,
                "value": value,
                "status": status,
                "details": _details(record, status),
            }
        )
    return info, rows


def _details(record, status: str) -> dict[str, Any]:
    details = dict(record.details or {}) if isinstance(record.details, dict) else {}
    if status == "invalid":
        details.setdefault("invalid", f"value {record.value!r} is not a finite number")
    if status == "failed":
        details.setdefault("error", str(record.error))
    return details


def _official_run(path: Path, domain: str) -> tuple[RunInfo, list[dict[str, Any]]]:
    suite = suite_of_domain(domain)
    info = RunInfo(str(path), "official", path.name, suite, domain, **_suite_info({"name": suite}))
    run = {
        "source": str(path),
        "kind": "official",
        "model": path.name,
        "suite": suite,
        "domain": domain,
    }
    rows = []
    for case, scores in read_official_folder(path).items():
        for metric, value in scores.items():
            ok = math.isfinite(float(value))
            rows.append(
                {
                    **run,
                    "case": case,
                    "metric": metric,
                    "value": float(value) if ok else math.nan,
                    "status": "ok" if ok else "invalid",
                    "details": {} if ok else {"invalid": f"value {value!r} is not a finite number"},
                }
            )
    return info, rows


def load_runs(paths: Iterable[str | Path], *, official_domain: str = OFFICIAL_DOMAIN) -> Results:
    """The long frame (`LONG_COLUMNS`) and a `RunInfo` per folder.

    A folder with `manifest.json` is one of our runs; a folder without one must hold official
    per-metric JSON files and is filed under the OpenS2V suite of `official_domain`. A path
    given twice is read once. A run with no score record yet contributes no rows."""
    suite_of_domain(official_domain)  # an unknown domain fails before any folder is read
    rows: list[dict[str, Any]] = []
    runs: list[RunInfo] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        key = path.resolve()
        if key in seen:
            continue
        seen.add(key)
        if (path / MANIFEST).is_file():
            info, found = _our_run(path)
        elif is_official_folder(path):
            info, found = _official_run(path, official_domain)
        elif not path.exists():
            raise ScoreFileError(f"result folder {path} does not exist")
        else:
            raise ScoreFileError(
                f"{path} is neither a result folder (no {MANIFEST}) nor a folder of official OpenS2V "
                f"score files (aesthetic_score.json, motion_amplitude.json, ..., naturalscore_1.json)"
            )
        runs.append(info)
        rows += found
    return Results(pd.DataFrame(rows, columns=list(LONG_COLUMNS)), tuple(runs))


def load_results(
    paths: Iterable[str | Path], *, official_domain: str = OFFICIAL_DOMAIN
) -> pd.DataFrame:
    """The long frame alone (see `load_runs`)."""
    return load_runs(paths, official_domain=official_domain).frame
