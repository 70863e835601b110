"""`build_report(paths, out_dir)`: the static report of some runs, from the leaderboard tables.

Layout of `out_dir` (open `index.html` from disk; nothing is fetched from the network):

    index.html                  runs, per suite: leaderboard (sortable), radar, bars, categories
    gallery-<suite>.html        one row per case: prompt, references, each model's video
    metrics/<metric>.html       definition and per-model distribution over cases
    leaderboard.csv / .md       the same tables (the CSV with intervals and counts)
    figures/<suite>/*.svg       charts (PDF / PNG too with `figures=True`)
    assets/                     CSS and JS
    media/posters/<run>/<case>.jpg, media/refs/*.jpg, media/videos/<run>/ (videos="copy"/"link")

Everything shown is read from `leaderboard.build_table` (values, counts, partial marks,
intervals) and from the long frame (per-case scores and reasons): the report computes no
number of its own except the radar's normalisation, which is min-max over the models shown for
suites whose protocol has no scale of its own (`SuiteProtocol.radar_axes`; OpenS2V uses its
published slot scaling).
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaleido_bench.bench.leaderboard import (
    Results,
    RunInfo,
    category_tables,
    load_runs,
    metric_aggregators,
    render,
    skipped_notes,
    stat_column,
    suite_tables,
    value_columns,
)
from kaleido_bench.bench.leaderboard import bootstrap as bootstrap_module
from kaleido_bench.bench.leaderboard.render_html import LEGEND, notes_html, table_html
from kaleido_bench.bench.protocols import percent_columns, protocol_for, total_columns
from kaleido_bench.bench.protocols.opens2v import OFFICIAL_DOMAIN
from kaleido_bench.bench.report import charts, media, pages
from kaleido_bench.bench.store import GENERATE
from kaleido_bench.core.errors import BenchError, UnknownNameError


def column_metric(suite: str, column: str) -> str:
    """The metric whose page explains a table column: a protocol's Total column (OpenS2V's
    "FaceSim" -> face_sim_cur) or the metric column itself."""
    return protocol_for(suite).column_metric(column) or column


class ReportError(BenchError):
    """The report cannot be written (bad output folder, unknown option)."""


@dataclass(frozen=True)
class MetricInfo:
    """What a metric page says: from the registered class and docs/metrics.md."""

    name: str
    description: str
    higher_is_better: bool
    documentation: str  # HTML, "" when docs/metrics.md has no section for it


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


def _docs_sections() -> dict[str, str]:
    """docs/metrics.md split into "## " sections, keyed by every metric name in the heading."""
    path = Path(resources.files("kaleido_bench.bench")).parent / "docs" / "metrics.md"
    if not path.is_file():
        return {}
    sections: dict[str, str] = {}
    for block in re.split(r"^## ", path.read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]:
        heading = block.splitlines()[0]
        names = re.findall(r"[a-z][a-z0-9_]+", heading.split(":")[0])
        for name in names:
            sections.setdefault(name, "## " + block)
    return sections


def metric_info(names: Sequence[str]) -> dict[str, MetricInfo]:
    from markdown_it import MarkdownIt

    from kaleido_bench.metrics.base import load_builtin_metrics

    registry = load_builtin_metrics()
    docs = _docs_sections()
    renderer = MarkdownIt("commonmark").enable("table")
    out = {}
    for name in names:
        cls = registry.get(name) if name in registry else None
        doc = docs.get(name, "")
        out[name] = MetricInfo(
            name,
            cls.description if cls is not None else "not a registered metric of this installation",
            bool(cls.higher_is_better) if cls is not None else True,
            renderer.render(doc) if doc else "",
        )
    return out


@dataclass
class SuiteView:
    name: str
    table: pd.DataFrame
    categories: dict[str, pd.DataFrame]
    runs: list[RunInfo]
    frame: pd.DataFrame
    cases: list[str]
    metrics: list[str]


def _suite_views(results: Results, *, version: str, published: bool, reps: int) -> list[SuiteView]:
    frame = results.frame
    names = [m for m in dict.fromkeys(frame["metric"]) if m != GENERATE]
    from kaleido_bench.metrics.base import load_builtin_metrics

    registry = load_builtin_metrics()
    aggregators = metric_aggregators([m for m in names if m in registry])
    options = {
        "version": version,
        "aggregators": aggregators,
        "case_ids": results.case_ids(),
        "reps": reps,
    }
    tables = suite_tables(frame, published=published, **options)
    categories = results.categories()
    views = []
    for suite, table in tables.items():
        runs = [run for run in results.runs if run.suite == suite]
        rows = frame[frame["suite"] == suite]
        cases: list[str] = []
        for run in runs:
            cases += list(run.case_ids or ())
        cases += rows["case"].tolist()
        cases = list(dict.fromkeys(cases))
        ordered = {case: categories.get(case, "") for case in cases}
        leading = total_columns()
        metrics = [c for c in value_columns(table) if c not in leading]
        views.append(
            SuiteView(
                suite,
                table,
                category_tables(frame, suite, ordered, **options),
                runs,
                rows,
                cases,
                metrics,
            )
        )
    return views


# -- media --------------------------------------------------------------------------------


def _run_media(
    run: RunInfo, index: int, cases: Sequence[str], out_dir: Path, videos: str
) -> dict[str, Any]:
    """Posters (and copies / links) for one run; the gallery's per-model entry."""
    folder = f"{index}-{slug(Path(run.source).name)}"
    posters = out_dir / "media" / "posters" / folder
    entry = {
        "name": run.model,
        "source": run.source,
        "kind": run.kind,
        "poster": f"media/posters/{folder}/",
        "video": "",
        "have": {},
    }
    if run.videos_dir is None:
        return entry
    if videos == "reference":
        entry["video"] = media.relative_url(run.videos_dir, out_dir) + "/"
    else:
        entry["video"] = f"media/videos/{folder}/"
    for case in cases:
        source = run.videos_dir / f"{case}.mp4"
        if not source.is_file():
            continue
        if videos != "reference":
            media.place_video(source, out_dir / "media" / "videos" / folder / f"{case}.mp4", videos)
        entry["have"][case] = media.write_poster(source, posters / f"{case}.jpg")
    return entry


def _references(view: SuiteView, out_dir: Path) -> dict[str, list[list[str]]]:
    refs: dict[str, list[list[str]]] = {}
    folder = out_dir / "media" / "refs"
    for case in view.cases:
        for run in view.runs:
            if case in run.references:
                items = []
                for path, role, label in run.references[case]:
                    thumb = media.reference_thumbnail(Path(path), folder)
                    items.append([media.relative_url(thumb, out_dir) if thumb else "", role, label])
                refs[case] = items
                break
    return refs


def _number(value: float) -> float:
    return float(f"{value:.6g}")


def _cell(
    rows: list[tuple[str, float, str, dict]],
    position: dict[str, int],
    entry: dict[str, Any],
    case: str,
) -> dict[str, Any]:
    """One (case, model) cell: scores aligned with the metrics, reasons for what has no score."""
    scores: list[float | None] = [None] * len(position)
    reasons: dict[str, str] = {}
    generation = ""
    for metric, value, status, details in rows:
        if metric == GENERATE:
            if status == "failed":
                generation = str(details.get("error", "failed"))
        elif status == "ok" and metric in position and math.isfinite(value):
            scores[position[metric]] = _number(value)
        elif status == "absent":
            reasons[metric] = "absent: " + str(details.get("absent", "does not apply"))
        elif status == "failed":
            reasons[metric] = "failed: " + str(details.get("error", ""))[:300]
        elif status == "invalid":
            reasons[metric] = "left out: " + str(details.get("invalid", "not a finite number"))
    cell: dict[str, Any] = {
        "s": scores,
        "v": int(case in entry["have"]),
        "p": int(bool(entry["have"].get(case))),
    }
    if reasons:
        cell["r"] = reasons
    if generation:
        cell["g"] = generation[:300]
    return cell


def _gallery_data(
    view: SuiteView, entries: list[dict[str, Any]], refs: dict[str, list[list[str]]]
) -> dict[str, Any]:
    """The gallery's JSON: models (names and where their posters and videos are), metrics, and per
    case its prompt, category, references and one cell per model (None: not run on it)."""
    prompts: dict[str, str] = {}
    categories: dict[str, str] = {}
    for run in view.runs:
        for case in view.cases:
            if run.prompts.get(case):
                prompts.setdefault(case, run.prompts[case])
            categories.setdefault(case, run.category(case))
    records: dict[tuple[str, str], list[tuple[str, float, str, dict]]] = {}
    columns = ["source", "case", "metric", "value", "status", "details"]
    for source, case, metric, value, status, details in view.frame[columns].itertuples(index=False):
        records.setdefault((source, case), []).append((metric, value, status, details))
    position = {m: i for i, m in enumerate(view.metrics)}
    cases = []
    for case in view.cases:
        cells = []
        for run, entry in zip(view.runs, entries):
            rows = records.get((run.source, case))
            if rows is None and case not in entry["have"]:
                cells.append(None)
            else:
                cells.append(_cell(rows or [], position, entry, case))
        cases.append(
            {
                "id": case,
                "prompt": prompts.get(case, ""),
                "category": categories.get(case, ""),
                "refs": refs.get(case, []),
                "cells": cells,
            }
        )
    models = [{"name": e["name"], "poster": e["poster"], "video": e["video"]} for e in entries]
    return {"suite": view.name, "metrics": view.metrics, "models": models, "cases": cases}


# -- charts -------------------------------------------------------------------------------


def _ours(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["kind"] != "published"]


def _radar(
    view: SuiteView, info: dict[str, MetricInfo]
) -> tuple[list[str], list[str], np.ndarray, str] | None:
    table = _ours(view.table)
    if not len(table):
        return None
    own_scale = protocol_for(view.name).radar_axes(value_columns(table))
    if own_scale is not None:
        axes, divisor, note = own_scale
        values = table[axes].to_numpy(dtype=float) / divisor
    else:
        axes = list(view.metrics)
        raw = table[axes].to_numpy(dtype=float)
        values = np.full_like(raw, np.nan)
        for j, metric in enumerate(axes):
            column = raw[:, j]
            lo, hi = (
                np.nanmin(column) if np.isfinite(column).any() else np.nan,
                np.nanmax(column) if np.isfinite(column).any() else np.nan,
            )
            if not np.isfinite(lo):
                continue
            scaled = (
                (column - lo) / (hi - lo) if hi > lo else np.where(np.isfinite(column), 1.0, np.nan)
            )
            values[:, j] = scaled if info[metric].higher_is_better else 1 - scaled
        note = (
            "Each metric min-max normalised over the models shown (1 = best of them, 0 = worst; "
            "metrics where lower is better are flipped). Missing values are drawn at 0."
        )
    if len(axes) < 3:
        return None
    return table["model"].tolist(), axes, values, note


def _charts(
    view: SuiteView, out_dir: Path, info: dict[str, MetricInfo], formats: Sequence[str]
) -> dict[str, Any]:
    folder = out_dir / "figures" / slug(view.name)
    made: dict[str, Any] = {"bars": {}, "dist": {}}
    radar = _radar(view, info)
    if radar is not None:
        models, axes, values, note = radar
        figure = charts.radar(models, axes, values, f"{view.name}: models over normalised metrics")
        made["radar"] = (
            media.relative_url(charts.save(figure, folder / "radar", formats), out_dir),
            note,
        )
    table = view.table
    for column in value_columns(table):
        rows = table[table[column].notna()]
        if not len(rows):
            continue
        colours = [
            charts.PUBLISHED_COLOUR if kind == "published" else charts.colour(i)
            for i, kind in enumerate(rows["kind"])
        ]
        labels = (
            [
                m + (" *" if p is True else "")
                for m, p in zip(rows["model"], rows["partial"].tolist())
            ]
            if "partial" in rows
            else rows["model"].tolist()
        )
        low = (
            rows[stat_column(column, "ci_low")]
            if stat_column(column, "ci_low") in rows
            else [np.nan] * len(rows)
        )
        high = (
            rows[stat_column(column, "ci_high")]
            if stat_column(column, "ci_high") in rows
            else [np.nan] * len(rows)
        )
        figure = charts.bars(
            labels,
            rows[column].tolist(),
            list(low),
            list(high),
            colours,
            f"{column} ({view.name})",
            "percent" if column in percent_columns() else column,
        )
        made["bars"][column] = media.relative_url(
            charts.save(figure, folder / f"bar-{slug(column)}", formats), out_dir
        )
    ok = view.frame[view.frame["status"] == "ok"]
    values = {
        key: group["value"].tolist() for key, group in ok.groupby(["source", "metric"], sort=False)
    }
    for metric in view.metrics:
        samples = [values.get((run.source, metric), []) for run in view.runs]
        figure = charts.distribution(
            [run.model for run in view.runs], samples, f"{metric} per case ({view.name})", metric
        )
        made["dist"][metric] = charts.save(figure, folder / f"dist-{slug(metric)}", formats)
    return made


# -- pages --------------------------------------------------------------------------------


def _nav(views: Sequence[SuiteView], metrics: Sequence[str]) -> list[tuple[str, str]]:
    nav = [("leaderboard", "index.html")]
    nav += [
        (f"gallery ({v.name})" if len(views) > 1 else "gallery", f"gallery-{slug(v.name)}.html")
        for v in views
    ]
    nav += [(f"metric: {m}", f"metrics/{slug(m)}.html") for m in metrics]
    return nav


def _index(
    views: Sequence[SuiteView],
    results: Results,
    made: dict[str, dict[str, Any]],
    info: dict[str, MetricInfo],
    title: str,
) -> str:
    rows = [
        {
            "model": run.model,
            "kind": run.kind,
            "suite": run.suite,
            "source": run.source,
            "skipped": ", ".join(run.skipped) or "—",
        }
        for run in results.runs
    ]
    body = [
        "<h2>Runs</h2>",
        pages.runs_table(rows),
        '<p class="legend">Downloads: <a href="leaderboard.csv">leaderboard.csv</a> (every value with its case '
        'count and bootstrap 95% interval) · <a href="leaderboard.md">leaderboard.md</a>.</p>',
    ]
    for view in views:
        links = {
            c: f"metrics/{slug(column_metric(view.name, c))}.html"
            for c in value_columns(view.table)
            if column_metric(view.name, c) in info
        }
        titles = {c: info[column_metric(view.name, c)].description for c in links}
        body.append(f'<h2 id="suite-{slug(view.name)}">{pages.escape(view.name)}: leaderboard</h2>')
        body.append(f'<p class="legend">{LEGEND}</p>')
        body.append(
            table_html(view.table, links=links, titles=titles, table_id=f"board-{slug(view.name)}")
        )
        body.append(notes_html(view.table))
        charts_made = made[view.name]
        figures = []
        if "radar" in charts_made:
            src, note = charts_made["radar"]
            figures.append(pages.figure(src, note, f"radar chart of {view.name}"))
        body.append(
            f'<h3>Charts</h3><div class="figures">{"".join(figures)}'
            + "".join(
                pages.figure(
                    src,
                    f"{column}: value and bootstrap 95% interval; * = partial run; grey = published",
                    f"bar chart of {column}",
                )
                for column, src in charts_made["bars"].items()
            )
            + "</div>"
        )
        body.append(
            f'<h3>Per category</h3><p class="legend">The same table on each category\'s cases '
            f"({len(view.categories)} categories).</p>"
        )
        for category, table in view.categories.items():
            cases = table["cases"].dropna()
            size = f"{int(cases.max())} cases" if len(cases) else ""
            name = pages.escape(category)
            body.append(
                f'<details class="category-table" data-category="{name}"><summary>{name} '
                f"<small>{size}</small></summary>"
                + table_html(
                    table,
                    links=links,
                    titles=titles,
                    table_id=f"cat-{slug(view.name)}-{slug(category)}",
                )
                + notes_html(table)
                + "</details>"
            )
    return "".join(body)


def _stats_rows(view: SuiteView, metric: str) -> str:
    table = _ours(view.table).set_index("source")
    out = []
    for run in view.runs:
        rows = view.frame[(view.frame["source"] == run.source) & (view.frame["metric"] == metric)]
        values = rows.loc[rows["status"] == "ok", "value"].to_numpy(dtype=float)
        mean = (
            table.at[run.source, metric]
            if run.source in table.index and metric in table.columns
            else math.nan
        )
        low = (
            table.at[run.source, stat_column(metric, "ci_low")]
            if stat_column(metric, "ci_low") in table.columns
            else math.nan
        )
        high = (
            table.at[run.source, stat_column(metric, "ci_high")]
            if stat_column(metric, "ci_high") in table.columns
            else math.nan
        )

        def fmt(v: float) -> str:
            return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"

        counts = rows["status"].value_counts()
        cells = [
            run.model,
            str(len(values)),
            fmt(mean),
            f"[{fmt(low)}, {fmt(high)}]",
            fmt(float(np.median(values))) if len(values) else "—",
            fmt(float(values.min())) if len(values) else "—",
            fmt(float(values.max())) if len(values) else "—",
            str(int(counts.get("absent", 0))),
            str(int(counts.get("failed", 0))),
            str(int(counts.get("invalid", 0))),
        ]
        out.append("<tr>" + "".join(f"<td>{pages.escape(c)}</td>" for c in cells) + "</tr>")
    head = "".join(
        f"<th>{c}</th>"
        for c in (
            "model",
            "n",
            "value",
            "95% CI",
            "median",
            "min",
            "max",
            "absent",
            "failed",
            "left out",
        )
    )
    return (
        f'<table class="stats"><thead><tr>{head}</tr></thead><tbody>{"".join(out)}</tbody></table>'
    )


def _metric_page(
    metric: str,
    views: Sequence[SuiteView],
    made: dict[str, dict[str, Any]],
    info: MetricInfo,
    out_dir: Path,
) -> str:
    body = [
        f'<p class="definition"><b>{pages.escape(metric)}</b>: {pages.escape(info.description)} '
        f"({'higher' if info.higher_is_better else 'lower'} is better).</p>"
    ]
    if info.documentation:
        body.append(f'<div class="definition">{info.documentation}</div>')
    else:
        body.append(
            '<p class="legend">No section of docs/metrics.md describes this metric; the definition above is '
            "the metric class's own description.</p>"
        )
    for view in views:
        if metric not in view.metrics:
            continue
        body.append(f"<h2>{pages.escape(view.name)}</h2>")
        body.append(
            '<p class="legend">value = the leaderboard value (the metric\'s own aggregate; a plain mean unless '
            "the metric says otherwise); n = cases with a value; absent = cases the metric does not apply to; "
            "left out = non-finite values.</p>"
        )
        body.append(_stats_rows(view, metric))
        figures = ""
        dist = made[view.name]["dist"].get(metric)
        if dist is not None:
            figures += pages.figure(
                "../" + media.relative_url(dist, out_dir),
                "per-case values: box = quartiles, dots = cases",
                f"distribution of {metric}",
            )
        bar = made[view.name]["bars"].get(metric)
        if bar is not None:
            figures += pages.figure(
                "../" + bar, "value and bootstrap 95% interval", f"bar chart of {metric}"
            )
        body.append(f'<div class="figures">{figures}</div>')
    return "".join(body)


def _copy_assets(out_dir: Path) -> None:
    target = out_dir / "assets"
    target.mkdir(parents=True, exist_ok=True)
    for package, names in (
        ("kaleido_bench.bench.leaderboard", ("table.css", "table.js")),
        ("kaleido_bench.bench.report", ("report.css", "report.js")),
    ):
        for name in names:
            text = resources.files(package).joinpath("assets", name).read_text(encoding="utf-8")
            (target / name).write_text(text, encoding="utf-8")


def build_report(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    figures: bool = False,
    videos: str = "reference",
    published: bool = True,
    version: str = "v1.1",
    official_domain: str = OFFICIAL_DOMAIN,
    reps: int = bootstrap_module.REPS,
    title: str = "kaleido-bench report",
) -> Path:
    """Write the report of `paths` (run folders or official score folders) into `out_dir`;
    returns the path of `index.html`. `figures`: charts as PDF and PNG too. `videos`: see
    `media.py` ("reference", "copy", "link")."""
    if videos not in media.VIDEO_MODES:
        raise UnknownNameError(
            f"unknown video placement {videos!r} (known: {', '.join(media.VIDEO_MODES)})"
        )
    if not paths:
        raise ReportError("no result folder given")
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out} exists and is not a folder")
    results = load_runs(paths, official_domain=official_domain)
    if not len(results.frame):
        raise ReportError("the result folders hold no score yet: run or score them first")
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("figures", "media/posters", "media/videos"):
        shutil.rmtree(out / stale, ignore_errors=True)
    views = _suite_views(results, version=version, published=published, reps=reps)
    metrics = list(dict.fromkeys(m for view in views for m in view.metrics))
    info = metric_info(metrics)
    formats = ("svg", "pdf", "png") if figures else ("svg",)
    made = {view.name: _charts(view, out, info, formats) for view in views}
    nav = _nav(views, metrics)
    _copy_assets(out)
    tables = {view.name: view.table for view in views}
    (out / "leaderboard.csv").write_text(render(tables, "csv"), encoding="utf-8")
    markdown = render(tables, "md")
    notes = skipped_notes(results)
    if notes:
        markdown = (
            markdown.rstrip("\n") + "\n\nNot scored:\n" + "".join(f"- {note}\n" for note in notes)
        )
    (out / "leaderboard.md").write_text(markdown, encoding="utf-8")
    index = out / "index.html"
    index.write_text(
        pages.frame(title, _index(views, results, made, info, title), nav=nav), encoding="utf-8"
    )
    for view in views:
        entries = [_run_media(run, i, view.cases, out, videos) for i, run in enumerate(view.runs)]
        data = _gallery_data(view, entries, _references(view, out))
        categories = list(dict.fromkeys(case["category"] for case in data["cases"]))
        page = pages.frame(
            f"{title}: gallery ({view.name})",
            pages.gallery(view.name, data, categories),
            nav=nav,
            scripts=("report.js",),
        )
        (out / f"gallery-{slug(view.name)}.html").write_text(page, encoding="utf-8")
    (out / "metrics").mkdir(exist_ok=True)
    for metric in metrics:
        page = pages.frame(
            f"{title}: {metric}",
            _metric_page(metric, views, made, info[metric], out),
            nav=nav,
            root="../",
        )
        (out / "metrics" / f"{slug(metric)}.html").write_text(page, encoding="utf-8")
    return index
