"""The report's figures, drawn with matplotlib's object API (no pyplot state, no GUI backend):
a radar chart of the models over normalised metrics, a bar chart per value column with its
bootstrap interval, and a per-model distribution of a metric over cases.

Every figure is written as SVG (text kept as text, a fixed hash salt and no date, so the same
table gives the same file) and, with `formats=("svg", "pdf", "png")` (`report --figures`),
as PDF and PNG for papers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure

STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "kaleido-bench",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
PUBLISHED_COLOUR = "#b0b0b0"
DOTS_UP_TO = 60  # per-case dots on distribution plots up to this many cases a model, a violin above


def colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


def save(figure: Figure, stem: Path, formats: Iterable[str] = ("svg",)) -> Path:
    """Write `stem.<format>` for each format; returns the SVG path."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    with rc_context(STYLE):
        for fmt in formats:
            metadata = (
                {"Date": None} if fmt == "svg" else ({"CreationDate": None} if fmt == "pdf" else {})
            )
            figure.savefig(
                stem.with_suffix(f".{fmt}"),
                format=fmt,
                bbox_inches="tight",
                metadata=metadata,
                dpi=150 if fmt == "png" else None,
            )
    return stem.with_suffix(".svg")


def radar(models: Sequence[str], axes: Sequence[str], values: np.ndarray, title: str) -> Figure:
    """`values` (models, axes) in [0, 1]; NaN (a metric a model lacks) is drawn at 0 and its
    axis label says so in the caption of the page."""
    with rc_context(STYLE):
        figure = Figure(figsize=(6.4, 5.2))
        ax = figure.add_subplot(projection="polar")
        angles = np.linspace(0, 2 * math.pi, len(axes), endpoint=False)
        closed = np.concatenate([angles, angles[:1]])
        for index, (model, row) in enumerate(zip(models, values)):
            row = np.nan_to_num(np.asarray(row, dtype=float), nan=0.0)
            ax.plot(
                closed,
                np.concatenate([row, row[:1]]),
                color=colour(index),
                linewidth=1.5,
                label=model,
            )
            ax.fill(closed, np.concatenate([row, row[:1]]), color=colour(index), alpha=0.12)
        ax.set_xticks(angles, list(axes))
        ax.set_ylim(0, 1)
        ax.set_yticks([0.25, 0.5, 0.75, 1.0], ["", "0.5", "", "1"])
        ax.set_title(title, pad=18)
        ax.legend(loc="upper left", bbox_to_anchor=(1.08, 1.0), frameon=False, fontsize=8)
    return figure


def bars(
    labels: Sequence[str],
    values: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    colours: Sequence[str],
    title: str,
    xlabel: str = "",
) -> Figure:
    """Horizontal bars, best at the top as given, with the 95% interval as an error bar."""
    count = len(labels)
    with rc_context(STYLE):
        figure = Figure(figsize=(5.6, 0.9 + 0.28 * count))
        ax = figure.add_subplot()
        positions = np.arange(count)[::-1]
        heights = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0)
        ax.barh(positions, heights, color=list(colours), height=0.7)
        low = np.asarray(lows, dtype=float)
        high = np.asarray(highs, dtype=float)
        have = np.isfinite(low) & np.isfinite(high) & np.isfinite(np.asarray(values, dtype=float))
        if have.any():
            err = np.vstack([heights - low, high - heights])[:, have]
            ax.errorbar(
                heights[have],
                positions[have],
                xerr=np.clip(err, 0, None),
                fmt="none",
                ecolor="#333",
                capsize=2,
                linewidth=0.8,
            )
        for y, value in zip(positions, values):
            if not np.isfinite(value):
                ax.text(0, y, " missing", va="center", fontsize=7, color="#888")
        ax.set_yticks(positions, list(labels))
        ax.set_title(title)
        ax.set_xlabel(xlabel)
    return figure


def _horizontal() -> dict[str, object]:
    """`orientation=` from matplotlib 3.10 on (`vert=` is deprecated there), `vert=` before."""
    from matplotlib import __version__

    major, minor = (int(part) for part in __version__.split(".")[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}


def distribution(
    models: Sequence[str], samples: Sequence[Sequence[float]], title: str, xlabel: str = ""
) -> Figure:
    """Per model: a box plot of the per-case values, with the values as dots (a violin of their
    density above `DOTS_UP_TO` cases, so 180 cases x 10 models stay a small SVG)."""
    count = len(models)
    with rc_context(STYLE):
        figure = Figure(figsize=(5.6, 0.9 + 0.36 * count))
        ax = figure.add_subplot()
        positions = np.arange(count)[::-1]
        present = [(p, np.asarray(s, dtype=float)) for p, s in zip(positions, samples) if len(s)]
        if present:
            ax.boxplot(
                [s for _, s in present],
                positions=[p for p, _ in present],
                widths=0.6,
                showfliers=False,
                medianprops={"color": "#222"},
                **_horizontal(),
            )
            rng = np.random.default_rng(0)
            for index, (p, s) in enumerate(present):
                if len(s) <= DOTS_UP_TO:
                    ax.scatter(
                        s,
                        p + rng.uniform(-0.18, 0.18, len(s)),
                        s=6,
                        alpha=0.6,
                        color=colour(index),
                        linewidths=0,
                    )
                elif np.ptp(s) > 0:  # many cases: the density as a violin keeps the SVG small
                    parts = ax.violinplot(
                        [s], positions=[p], widths=0.8, showextrema=False, **_horizontal()
                    )
                    for body in parts["bodies"]:
                        body.set_facecolor(colour(index))
                        body.set_alpha(0.35)
        for p, s in zip(positions, samples):
            if not len(s):
                ax.text(
                    0.02,
                    p,
                    "no values",
                    va="center",
                    fontsize=7,
                    color="#888",
                    transform=ax.get_yaxis_transform(),
                )
        ax.set_yticks(positions, list(models))
        ax.set_ylim(-0.7, count - 0.3)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
    return figure
