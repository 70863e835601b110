"""The published OpenS2V leaderboards shipped in the package, as rows beside ours.

Source: `bench/data/opens2v/leaderboard/file_v1.x/results_<domain>.csv` (copies of the CSVs in
OpenS2V-Nexus, SPEC.md section 2): "52.51%" is parsed to 52.51 and the markdown link in the
Model column is split into `model` and `url`.
"""

from __future__ import annotations

import math
import re
from importlib import resources
from io import StringIO
from typing import Any

import pandas as pd

from kaleido_bench.bench.leaderboard.loading import OPENS2V_SUITES
from kaleido_bench.bench.opens2v_total import DOMAINS, VERSIONS
from kaleido_bench.core.errors import UnknownNameError

# slot -> column of the published CSVs (without their "↑")
SLOT_COLUMNS: dict[str, str] = {
    "total_score": "TotalScore",
    "aes_score": "Aesthetics",
    "motion_smoothness": "MotionSmoothness",
    "motion_amplitude": "MotionAmplitude",
    "facesim_cur": "FaceSim",
    "gme_score": "GmeScore",
    "nexus_score": "NexusScore",
    "natural_score": "NaturalScore",
}
PERCENT_COLUMNS = ("TotalScore", "Aesthetics", "Motion", *list(SLOT_COLUMNS.values())[2:])

_LINK = re.compile(r"^\[(?P<name>.*)\]\((?P<url>[^)]*)\)$")


def parse_percent(text: Any) -> float:
    """ "52.51%" -> 52.51; blanks and dashes -> NaN."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return math.nan
    text = str(text).strip().rstrip("%").strip()
    if text in ("", "-", "—", "N/A"):
        return math.nan
    return float(text)


def published_rows(domain: str, version: str = "v1.1") -> pd.DataFrame:
    """The published leaderboard of `domain`, percent columns as floats.

    Columns: model, url, venue, evaluated_by, then TotalScore and the slot columns as named in
    the CSV without "↑" (v1.1: MotionSmoothness/MotionAmplitude; v1.0: Motion)."""
    if version not in VERSIONS:
        raise UnknownNameError(
            f"unknown OpenS2V version {version!r} (known: {', '.join(VERSIONS)})"
        )
    if domain not in OPENS2V_SUITES:
        raise UnknownNameError(f"unknown OpenS2V domain {domain!r} (known: {', '.join(DOMAINS)})")
    text = (
        resources.files("kaleido_bench.bench")
        .joinpath(f"data/opens2v/leaderboard/file_{version}/results_{domain}.csv")
        .read_text(encoding="utf-8")
    )
    raw = pd.read_csv(StringIO(text), dtype=str, keep_default_na=False)
    raw.columns = [c.replace("↑", "").strip() for c in raw.columns]
    names, urls = [], []
    for cell in raw["Model"]:
        match = _LINK.match(cell.strip())
        names.append(match["name"] if match else cell.strip())
        urls.append(match["url"] if match else "")
    out = pd.DataFrame(
        {
            "model": names,
            "url": urls,
            "venue": raw.get("Venue", ""),
            "evaluated_by": raw.get("Evaluated by", ""),
        }
    )
    for column in raw.columns:
        if column in PERCENT_COLUMNS:
            out[column] = [parse_percent(cell) for cell in raw[column]]
    return out
