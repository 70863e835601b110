"""The static report: content of every page for runs built in the test, the offline rule, and
the 180 cases x 10 models scale (HTML under 2 MB without media)."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from synthetic_runs import make_run

from kaleido_bench.bench.protocols.opens2v import case_ids as opens2v_case_ids
from kaleido_bench.bench.report import build_report
from kaleido_bench.bench.store import ScoreRecord
from kaleido_bench.core.errors import BenchError

MINI_CASES = (
    "singleface_astronaut",
    "singleface_hopper",
    "singleobj_cat",
    "singleobj_coffee",
    "singleobj_gift",
    "multiface_astronaut_hopper",
    "multiobject_cat_coffee",
    "faceobj_astronaut_rocket",
    "bgobj_cat_grass",
    "bgobj_horse_garage",
)


def gallery_data(page: str) -> dict:
    match = re.search(
        r'<script type="application/json" id="gallery-data">(.*?)</script>', page, re.S
    )
    assert match, "the gallery holds its data as JSON"
    return json.loads(match.group(1).replace("<\\/", "</"))


@pytest.fixture(scope="module")
def mini_runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    full = []
    for i, case in enumerate(MINI_CASES):
        full.append(ScoreRecord(case, "motion_amplitude", 0.1 + 0.01 * i))
        full.append(ScoreRecord(case, "decoupling_hist", 0.9 - 0.05 * i))
        if case.startswith(("singleface", "faceobj", "multiface")):
            full.append(ScoreRecord(case, "face_sim_dlib", 0.5 + 0.02 * i))
        else:
            full.append(ScoreRecord(case, "face_sim_dlib", None, {"absent": "not a face case"}))
    complete = make_run(
        root, "complete", full, model="collage", label="non-learned", videos=MINI_CASES
    )
    partial = make_run(
        root,
        "partial",
        [
            ScoreRecord("singleface_astronaut", "motion_amplitude", 0.5),
            ScoreRecord("singleface_astronaut", "face_sim_dlib", 0.9),
            ScoreRecord("singleobj_cat", "motion_amplitude", 0.25),
            ScoreRecord("singleobj_cat", "decoupling_hist", 0.5),
            ScoreRecord(
                "singleobj_cat", "face_sim_dlib", None, error="RuntimeError: dlib exploded"
            ),
            ScoreRecord("singleobj_coffee", "generate", None, error="CUDA out of memory"),
        ],
        model="kaleido-tiny",
        label="random weights",
        videos=("singleface_astronaut", "singleobj_cat"),
    )
    return [complete, partial]


@pytest.fixture(scope="module")
def report(mini_runs, tmp_path_factory) -> Path:
    return build_report(mini_runs, tmp_path_factory.mktemp("report") / "out", reps=200).parent


def test_index_has_the_leaderboard_with_counts_intervals_and_partial_marks(report: Path) -> None:
    index = (report / "index.html").read_text()
    assert "collage (non-learned)" in index and "kaleido-tiny (random weights)" in index
    assert 'class="board sortable"' in index
    table = index[index.index('id="board-mini"') :]
    table = table[: table.index("</table>")]
    collage = table[table.index("collage (non-learned)") :]
    collage = collage[: collage.index("</tr>")]
    expected = sum(0.1 + 0.01 * i for i in range(10)) / 10
    assert f">{expected:.4f}" in collage and "n=10" in collage and "10 / 10" in collage
    low, high = map(float, re.search(r'class="ci">\[([0-9.]+), ([0-9.]+)\]', collage).groups())
    assert low < expected < high  # a real interval around the mean
    tiny = table[table.index("kaleido-tiny (random weights)") :]
    tiny = tiny[: tiny.index("</tr>")]
    assert 'class="ours partial"' in table and "2 / 10" in tiny and 'class="pm"' in tiny
    assert ">0.3750" in tiny and "n=2" in tiny  # (0.5 + 0.25) / 2 over the 2 cases it has
    # the metric columns link to their pages, and the CSV / markdown downloads hold the same table
    assert 'class="def" href="metrics/motion_amplitude.html"' in index
    csv = pd.read_csv(report / "leaderboard.csv")
    row = csv[csv["model"] == "kaleido-tiny (random weights)"].iloc[0]
    assert row["motion_amplitude"] == pytest.approx(0.375) and row["motion_amplitude.n"] == 2
    assert row["partial"] and row["cases"] == 10 and row["failed"] == 2
    assert row["motion_amplitude.ci_low"] <= 0.375 <= row["motion_amplitude.ci_high"]
    assert "## mini" in (report / "leaderboard.md").read_text()


def test_index_has_charts_and_per_category_tables(report: Path) -> None:
    index = (report / "index.html").read_text()
    for svg in (
        "figures/mini/radar.svg",
        "figures/mini/bar-motion_amplitude.svg",
        "figures/mini/bar-face_sim_dlib.svg",
    ):
        assert f'src="{svg}"' in index and (report / svg).read_text().lstrip().startswith("<?xml")
    assert (
        "collage (non-learned)" in (report / "figures/mini/radar.svg").read_text()
    )  # text kept as text
    categories = re.findall(r'<details class="category-table" data-category="([a-z]+)"', index)
    assert categories == ["singleface", "singleobj", "multiface", "multiobject", "faceobj", "bgobj"]
    singleobj = index[index.index('data-category="singleobj"') :]
    singleobj = singleobj[: singleobj.index("</details>")]
    assert "3 cases" in singleobj and "n=3" in singleobj  # the category's own counts
    assert not list(report.glob("figures/**/*.pdf"))  # PDF / PNG only with --figures


def test_gallery_rows_hold_prompts_references_videos_scores_and_reasons(report: Path) -> None:
    page = (report / "gallery-mini.html").read_text()
    data = gallery_data(page)
    assert [c["id"] for c in data["cases"]] == list(MINI_CASES)
    assert [m["name"] for m in data["models"]] == [
        "collage (non-learned)",
        "kaleido-tiny (random weights)",
    ]
    assert data["metrics"] == ["motion_amplitude", "decoupling_hist", "face_sim_dlib"]
    cat = next(c for c in data["cases"] if c["id"] == "singleobj_cat")
    assert cat["category"] == "singleobj" and "tabby cat" in cat["prompt"]
    ref_path, role, label = cat["refs"][0]
    assert role == "object" and label == "Cat"
    with Image.open(report / ref_path) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) <= 160
    collage, tiny = cat["cells"]
    assert (
        collage["s"][0] == pytest.approx(0.12)
        and collage["r"]["face_sim_dlib"] == "absent: not a face case"
    )
    assert tiny["r"]["face_sim_dlib"] == "failed: RuntimeError: dlib exploded"
    coffee_tiny = next(c for c in data["cases"] if c["id"] == "singleobj_coffee")["cells"][1]
    assert coffee_tiny["g"] == "CUDA out of memory" and coffee_tiny["v"] == 0
    assert (
        next(c for c in data["cases"] if c["id"] == "bgobj_cat_grass")["cells"][1] is None
    )  # never run
    # posters: small JPEGs of the middle frame; videos: relative paths that resolve to the run's file
    for model in data["models"]:
        poster = report / model["poster"] / "singleobj_cat.jpg"
        with Image.open(poster) as image:
            assert image.format == "JPEG" and image.size == (32, 32)
        video = (report / model["video"] / "singleobj_cat.mp4").resolve()
        assert video.is_file() and video.parent.name == "videos"
    assert "<video" not in page and "base64" not in page  # nothing embedded


def test_metric_pages_define_the_metric_and_show_its_distribution(report: Path) -> None:
    page = (report / "metrics" / "motion_amplitude.html").read_text()
    assert "Farneback" in page  # the metric class's description
    assert "collage (non-learned)" in page and "kaleido-tiny (random weights)" in page
    assert 'src="../figures/mini/dist-motion_amplitude.svg"' in page
    assert (report / "figures/mini/dist-motion_amplitude.svg").is_file()
    decoupling_doc = (report / "metrics" / "face_sim_dlib.html").read_text()
    assert "dlib" in decoupling_doc and "absent" in decoupling_doc


def test_the_report_works_offline(report: Path) -> None:
    for page in report.rglob("*.html"):
        text = page.read_text()
        assert not re.search(
            r'<(script|link|img|video|source)[^>]+(src|href)="(https?:)?//', text
        ), page
        for ref in re.findall(r'(?:src|href)="([^"#:]+)"', text):
            assert (page.parent / ref).exists(), f"{page.name} refers to missing {ref}"


def test_copy_videos_and_figures_as_pdf_and_png(mini_runs, tmp_path: Path) -> None:
    out = build_report(
        mini_runs[1:], tmp_path / "copied", videos="copy", figures=True, reps=50
    ).parent
    data = gallery_data((out / "gallery-mini.html").read_text())
    assert data["models"][0]["video"] == "media/videos/0-partial/"
    assert (out / "media/videos/0-partial/singleobj_cat.mp4").read_bytes() == (
        mini_runs[1] / "videos/singleobj_cat.mp4"
    ).read_bytes()
    for suffix in ("svg", "pdf", "png"):
        assert (out / f"figures/mini/bar-motion_amplitude.{suffix}").stat().st_size > 1000
    with pytest.raises(BenchError, match="unknown video placement"):
        build_report(mini_runs, tmp_path / "bad", videos="embed")


def test_report_cli(run_cli, mini_runs, tmp_path: Path) -> None:
    code, _, err = run_cli("report", *map(str, mini_runs), "--out", str(tmp_path / "cli"))
    assert code == 0 and "index.html" in err and (tmp_path / "cli" / "gallery-mini.html").is_file()


def test_180_cases_by_10_models_stay_under_2_mb_without_media(tmp_path: Path) -> None:
    """The OpenS2V scale: every page, script, style sheet and chart together under 2 MB."""
    cases = sorted(opens2v_case_ids("Open-Domain"))
    metrics = (
        "aesthetics",
        "motion_smoothness",
        "motion_amplitude",
        "face_sim_cur",
        "gme_score",
        "nexus_score",
        "natural_score",
        "clip_t",
    )
    runs = []
    for m in range(10):
        records = []
        for i, case in enumerate(cases):
            for j, metric in enumerate(metrics):
                value = 0.3 + ((i * 7 + j * 3 + m * 11) % 50) / 100
                if metric == "aesthetics":
                    value = 4 + 3 * value / 0.8
                if (
                    metric == "face_sim_cur"
                    and "obj" in case
                    and "human" not in case
                    and "face" not in case
                ):
                    records.append(
                        ScoreRecord(
                            case, metric, None, {"absent": "no face reference in this case"}
                        )
                    )
                    continue
                records.append(ScoreRecord(case, metric, value))
        runs.append(
            make_run(
                tmp_path,
                f"model{m}",
                records,
                model=f"model-{m}",
                suite="opens2v",
                domain="Open-Domain",
                bulk=True,
            )
        )
    start = time.perf_counter()
    out = build_report(runs, tmp_path / "report", reps=200).parent
    seconds = time.perf_counter() - start
    sizes = {p: p.stat().st_size for p in out.rglob("*") if p.is_file() and "media" not in p.parts}
    total = sum(sizes.values())
    assert total < 2 * 1024 * 1024, sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
    data = gallery_data((out / "gallery-opens2v.html").read_text())
    assert len(data["cases"]) == 180 and len(data["models"]) == 10
    index = (out / "index.html").read_text()
    assert (
        len(re.findall(r'<details class="category-table"', index)) == 8
    )  # OpenS2V's eight categories
    assert "BindWeave" in index  # published rows beside ours
    assert index.count("180 / 180") == 10
    largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:4]
    print(
        f"180 x 10 report: {seconds:.1f} s, {total / 1024:.0f} KiB without media; largest: "
        + ", ".join(f"{p.relative_to(out)} {n // 1024} KiB" for p, n in largest)
    )


def test_a_non_finite_value_is_left_out_with_a_note_and_never_hides_the_column(
    tmp_path: Path,
) -> None:
    run = make_run(
        tmp_path,
        "bad_values",
        [
            ScoreRecord("singleobj_cat", "motion_amplitude", 0.2),
            ScoreRecord("singleobj_coffee", "motion_amplitude", float("nan")),
            ScoreRecord("singleobj_gift", "motion_amplitude", 0.4),
            ScoreRecord("singleobj_gift", "clip_t", float("inf")),
        ],
        model="m",
    )
    out = build_report([run], tmp_path / "report", reps=50).parent
    csv = pd.read_csv(out / "leaderboard.csv").iloc[0]
    assert csv["motion_amplitude"] == pytest.approx(0.3) and csv["motion_amplitude.n"] == 2
    assert (
        csv["motion_amplitude.excluded"] == 1
        and csv["clip_t.excluded"] == 1
        and math.isnan(csv["clip_t"])
    )
    md = (out / "leaderboard.md").read_text()
    assert "0.3000†" in md and "leaves out 1 value(s) that are not finite" in md
    assert not re.search(r"\|\s*nan\s*\|", md, re.IGNORECASE)
    index = (out / "index.html").read_text()
    assert 'class="xm"' in index and "non-finite value(s) left out" in index
    gallery = gallery_data((out / "gallery-mini.html").read_text())
    coffee = next(c for c in gallery["cases"] if c["id"] == "singleobj_coffee")["cells"][0]
    assert coffee["s"][0] is None and coffee["r"]["motion_amplitude"].startswith(
        "left out: value nan"
    )
    assert ",nan," not in (out / "leaderboard.csv").read_text().lower()
