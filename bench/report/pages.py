"""HTML pages of the report, as plain strings (escaped with `html.escape`): the page frame, the
index (leaderboard, charts, categories), the gallery shell and a metric page. The data come
from `build.py`; the behaviour from `assets/*.js`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape


def frame(
    title: str,
    body: str,
    *,
    nav: Sequence[tuple[str, str]],
    root: str = "",
    scripts: Sequence[str] = ("table.js",),
) -> str:
    """A whole page: `root` is the way back to the report folder ("" or "../")."""
    links = "".join(f'<a href="{escape(root + href)}">{escape(text)}</a>' for text, href in nav)
    tags = "".join(
        f'<script src="{escape(root)}assets/{escape(name)}"></script>' for name in scripts
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        f'<link rel="stylesheet" href="{escape(root)}assets/table.css">'
        f'<link rel="stylesheet" href="{escape(root)}assets/report.css"></head>'
        f'<body><header class="top"><h1>{escape(title)}</h1><nav>{links}</nav></header>'
        f"<main>{body}</main>{tags}</body></html>\n"
    )


def figure(src: str, caption: str, alt: str) -> str:
    return (
        f'<figure><img src="{escape(src)}" alt="{escape(alt)}" loading="lazy">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def runs_table(rows: Sequence[Mapping[str, str]]) -> str:
    head = "".join(
        f"<th>{escape(c)}</th>" for c in ("model", "kind", "suite", "folder", "not scored")
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{escape(str(row.get(c, '')))}</td>"
            for c in ("model", "kind", "suite", "source", "skipped")
        )
        + "</tr>"
        for row in rows
    )
    return f'<table class="runs"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def gallery(suite: str, data: Mapping, categories: Sequence[str]) -> str:
    """The gallery's controls and an empty table that `report.js` fills from `data`."""
    options = '<option value="">all categories</option>' + "".join(
        f'<option value="{escape(c)}">{escape(c)}</option>' for c in categories
    )
    metrics = '<option value="">case order</option>' + "".join(
        f'<option value="{escape(m)}">{escape(m)}</option>' for m in data["metrics"]
    )
    models = '<option value="mean">mean of shown models</option>' + "".join(
        f'<option value="{i}">{escape(m["name"])}</option>' for i, m in enumerate(data["models"])
    )
    toggles = "".join(
        f'<label><input type="checkbox" class="model-toggle" value="{i}" checked> {escape(m["name"])}</label>'
        for i, m in enumerate(data["models"])
    )
    head = "<th>case</th>" + "".join(
        f'<th class="model-col" data-model="{i}">{escape(m["name"])}</th>'
        for i, m in enumerate(data["models"])
    )
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).replace(
        "</", "<\\/"
    )
    return (
        f'<p class="legend">Suite <b>{escape(suite)}</b>. Click a poster to play the video. Scores under each video; '
        "absent metrics and failures give their reason.</p>"
        '<div class="controls">'
        f'<label>category <select id="filter-category">{options}</select></label>'
        f'<label>search <input id="filter-search" type="search" placeholder="prompt or case id"></label>'
        f'<label>sort by <select id="sort-metric">{metrics}</select></label>'
        f'<label>of <select id="sort-model">{models}</select></label>'
        '<label><select id="sort-order"><option value="desc">high first</option>'
        '<option value="asc">low first</option></select></label>'
        f'<span class="toggles">models: {toggles}</span><span id="gallery-count"></span></div>'
        f'<table class="gallery"><thead id="gallery-head"><tr>{head}</tr></thead><tbody id="gallery-rows"></tbody>'
        '</table><button id="gallery-more" type="button">more cases</button>'
        f'<script type="application/json" id="gallery-data">{payload}</script>'
    )
