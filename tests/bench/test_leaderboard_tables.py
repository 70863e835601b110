"""The one table-building function: case counts, partial marks, bootstrap intervals, categories,
non-finite values; and the output format following the file suffix (CLI and library)."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_runs import make_run

from kaleido_bench.bench.leaderboard import bootstrap as bootstrap_module
from kaleido_bench.bench.leaderboard import (
    build_table,
    category_tables,
    excluded_notes,
    leaderboard,
    load_runs,
    render,
)
from kaleido_bench.bench.protocols.opens2v import compute_total
from kaleido_bench.bench.protocols.opens2v import slot_interval as _slot_interval
from kaleido_bench.bench.protocols.opens2v import total_replicates as _total_replicates
from kaleido_bench.bench.store import ScoreRecord


def test_bootstrap_interval_of_a_mean_matches_the_normal_approximation() -> None:
    values = [0.0, 1.0] * 50  # mean 0.5, standard error 0.05
    low, high = bootstrap_module.mean_interval(values, reps=2000)
    assert low == pytest.approx(0.5 - 1.96 * 0.05, abs=0.02) and high == pytest.approx(
        0.5 + 1.96 * 0.05, abs=0.02
    )
    assert bootstrap_module.mean_interval([0.3] * 7) == (pytest.approx(0.3), pytest.approx(0.3))
    assert all(math.isnan(x) for x in bootstrap_module.mean_interval([]))
    # a metric's own aggregate (frame-weighted) is resampled the same way
    items = [(0.9, {"frames": 3}), (0.6, {"frames": 1})] * 10
    weighted = bootstrap_module.statistic_interval(
        items,
        lambda xs: sum(v * d["frames"] for v, d in xs) / sum(d["frames"] for _, d in xs),
        reps=300,
    )
    assert 0.6 < weighted[0] < 0.825 < weighted[1] < 0.9


def test_total_replicates_are_the_official_merge_on_each_resample() -> None:
    rng = np.random.default_rng(1)
    per_video = {
        f"singleface_{i}": {
            "aes_score": float(rng.uniform(3, 8)),
            "motion_smoothness": float(rng.uniform()),
            "motion_amplitude": float(rng.uniform()),
            "facesim_cur": float(rng.uniform()),
            "gme_score": float(rng.uniform()),
            "nexus_score": [0.0, 0.03, 0.07][i % 3],
            "natural_score": float(rng.uniform(0, 6)),
        }
        for i in range(12)
    }
    replicates = _total_replicates(per_video, "Open-Domain", "v1.1", "ours", reps=5, seed=3)
    draws = bootstrap_module.weights(12, 5, 3).astype(int)
    cases = list(per_video)
    for r in range(5):
        drawn = {
            f"{case}#{k}": per_video[case]
            for case, times in zip(cases, draws[r])
            for k in range(times)
        }
        expected = compute_total(drawn, "Open-Domain", "v1.1", "ours")
        assert replicates["total_score"][r] == pytest.approx(expected.total * 100, abs=1e-9)
        assert replicates["nexus_score"][r] == pytest.approx(
            expected.slots["nexus_score"] * 100, abs=1e-9
        )
    # a slot's own interval resamples only the videos that have it: nexus has 8 (zeros skipped)
    one_face = {
        "singleobj_1": {"aes_score": 5.0},
        "singleface_1": {"aes_score": 6.0, "facesim_cur": 0.8},
    }
    assert _slot_interval(one_face, "facesim_cur", 100, 0) == (
        pytest.approx(80.0),
        pytest.approx(80.0),
    )
    low, high = _slot_interval(per_video, "nexus_score", 500, 0)
    assert 60.0 <= low < high <= 100.0  # clipped nexus values are 0.03 and 0.05 -> 60 and 100


@pytest.fixture
def mini_pair(tmp_path: Path) -> list[Path]:
    full = [
        ScoreRecord(case, "motion_amplitude", value)
        for case, value in (
            ("singleobj_cat", 0.1),
            ("singleobj_coffee", 0.2),
            ("singleobj_gift", 0.3),
            ("singleface_hopper", 0.4),
            ("singleface_astronaut", 0.5),
            ("multiface_astronaut_hopper", 0.6),
            ("multiobject_cat_coffee", 0.7),
            ("faceobj_astronaut_rocket", 0.8),
            ("bgobj_cat_grass", 0.9),
            ("bgobj_horse_garage", 1.0),
        )
    ]
    part = [
        ScoreRecord("singleobj_cat", "motion_amplitude", 0.5),
        ScoreRecord("singleobj_coffee", "motion_amplitude", float("nan")),
        ScoreRecord("singleobj_gift", "motion_amplitude", None, error="boom"),
    ]
    return [
        make_run(tmp_path, "full", full, model="full"),
        make_run(tmp_path, "part", part, model="part"),
    ]


def test_table_counts_partial_marks_and_intervals(mini_pair: list[Path]) -> None:
    results = load_runs(mini_pair)
    table = build_table(results.frame, "mini", case_ids=results.case_ids()).set_index("model")
    full, part = table.loc["full"], table.loc["part"]
    assert full["cases"] == 10 and not full["partial"] and full["motion_amplitude.n"] == 10
    assert full["motion_amplitude.ci_low"] < 0.55 < full["motion_amplitude.ci_high"]
    # 'part': one finite value; the NaN line is left out (and counted), the error is a failure
    assert part["motion_amplitude"] == 0.5 and part["motion_amplitude.n"] == 1
    assert part["motion_amplitude.excluded"] == 1 and full["motion_amplitude.excluded"] == 0
    assert part["partial"] and part["failed"] == 1 and part["videos"] == 1
    assert excluded_notes(table.reset_index()) == [
        f"part ({mini_pair[1]}): motion_amplitude leaves out 1 value(s) that are not finite numbers "
        "(NaN or infinity in scores.jsonl)"
    ]
    # without the suite's case list nothing says how many cases there should be
    unknown = build_table(results.frame, "mini").set_index("model")
    assert pd.isna(unknown.loc["full", "cases"]) and not unknown.loc["full", "partial"]


def test_one_nan_line_never_hides_the_column_in_markdown_or_csv(mini_pair: list[Path]) -> None:
    md = leaderboard(mini_pair, fmt="md")
    part_line = next(line for line in md.splitlines() if line.startswith("| part"))
    assert "0.5000†" in part_line and not re.search(r"\|\s*nan\s*\|", md, re.IGNORECASE)
    assert "† part (" in md
    csv = pd.read_csv(io.StringIO(leaderboard(mini_pair, fmt="csv")))
    assert csv.set_index("model").loc["part", "motion_amplitude"] == 0.5


def test_category_tables_use_each_categorys_cases(mini_pair: list[Path]) -> None:
    results = load_runs(mini_pair)
    tables = category_tables(
        results.frame, "mini", results.categories(), case_ids=results.case_ids(), reps=50
    )
    assert list(tables) == [
        "singleface",
        "singleobj",
        "multiface",
        "multiobject",
        "faceobj",
        "bgobj",
    ]
    singleobj = tables["singleobj"].set_index("model")
    assert (
        singleobj.loc["full", "motion_amplitude"] == pytest.approx(0.2)
        and singleobj.loc["full", "cases"] == 3
    )
    assert singleobj.loc["part", "partial"]
    bgobj = tables["bgobj"].set_index("model")  # 'part' made no bgobj case: a row that says so
    assert bgobj.loc["part", "videos"] == 0 and bgobj.loc["part", "partial"]
    assert math.isnan(bgobj.loc["part", "motion_amplitude"])


@pytest.mark.parametrize(
    ("suffix", "start"),
    [
        (".csv", "model,kind,source,suite,videos,failed"),
        (".md", "## mini"),
        (".html", "<!DOCTYPE html>"),
    ],
)
def test_cli_leaderboard_format_follows_the_suffix(
    run_cli, mini_pair: list[Path], tmp_path: Path, suffix: str, start: str
) -> None:
    out = tmp_path / f"board{suffix}"
    code, _, _ = run_cli("leaderboard", *map(str, mini_pair), "--out", str(out))
    assert code == 0 and out.read_text().startswith(start)
    if suffix == ".csv":
        assert "Not scored" not in out.read_text() and len(pd.read_csv(out)) == 2
    code, _, _ = run_cli("leaderboard", *map(str, mini_pair), "--out", str(out), "--format", "md")
    assert out.read_text().startswith("## mini")  # --format wins over the suffix


def test_run_writes_the_leaderboard_in_the_suffix_format(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "board.csv"
    code, _, err = run_cli(
        "run",
        "--model",
        "still",
        "--suite",
        "mini",
        "--cases",
        "singleobj_cat",
        "--metrics",
        "motion_amplitude",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--leaderboard",
        str(out),
    )
    assert code == 0, err
    table = pd.read_csv(out)
    assert table["model"].tolist() == ["still (non-learned)"] and table["videos"].tolist() == [1]
    assert table["partial"].tolist() == [True] and table["cases"].tolist() == [
        10
    ]  # 1 of mini's 10 cases


def test_render_html_is_a_standalone_sortable_page(mini_pair: list[Path]) -> None:
    results = load_runs(mini_pair)
    page = render(
        {"mini": build_table(results.frame, "mini", case_ids=results.case_ids(), reps=50)}, "html"
    )
    assert "<script>" in page and "table.sortable" in page and 'class="board sortable"' in page
    assert "http" not in page.replace("http-equiv", "")
