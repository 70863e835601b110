"""Leaderboard tables from run folders, official score folders and the published CSVs."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd
import pytest

from kaleido_bench.bench.leaderboard import (
    counts_table,
    leaderboard,
    load_results,
    model_label,
    parse_percent,
    published_rows,
    render,
    suite_table,
    suite_tables,
    to_csv,
    to_markdown,
    write_leaderboard,
)
from kaleido_bench.bench.protocols.opens2v import ScoreFileError
from kaleido_bench.bench.protocols.opens2v import case_ids as opens2v_case_ids
from kaleido_bench.bench.store import ResultStore, RunManifest, ScoreRecord
from kaleido_bench.core.errors import BenchError, UnknownNameError

FULL = {
    "aesthetics": 5.5,
    "motion_smoothness": 0.9,
    "motion_amplitude": 0.2,
    "face_sim_cur": 0.6,
    "gme_score": 0.7,
    "nexus_score": 0.02,
    "natural_score": 4.0,
}


def make_run(
    root: Path,
    name: str,
    records: list[ScoreRecord],
    *,
    model: str = "kaleido-tiny",
    label: str = "",
    suite: str = "opens2v",
    domain: str = "Open-Domain",
) -> Path:
    store = ResultStore(root / name)
    store.open(
        RunManifest(
            model={"model": model},
            suite={"name": suite, "version": "v1.1", "domain": domain},
            seed=0,
            label=label,
        )
    )
    for record in records:
        store.append(record)
    return store.root


def full_records(case: str, **override: float | None) -> list[ScoreRecord]:
    return [
        ScoreRecord(case, metric, override.get(metric, value)) for metric, value in FULL.items()
    ]


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    complete = make_run(
        tmp_path,
        "complete",
        [
            *full_records("singleobj_1"),
            *full_records("singlehuman_1", aesthetics=6.5, nexus_score=0.0),
            ScoreRecord("multiobject_1", "generate", None, error="CUDA out of memory"),
            ScoreRecord("not_a_case", "aesthetics", 9.9),  # outside the suite: filtered
        ],
        label="random weights",
    )
    partial = make_run(
        tmp_path,
        "partial",
        [
            ScoreRecord("singleobj_1", "aesthetics", 5.0),
            ScoreRecord("singleobj_1", "face_sim_cur", None, {"absent": "no face reference"}),
            ScoreRecord("singleobj_2", "aesthetics", None, error="decode failed"),
            ScoreRecord("singleobj_2", "aesthetics", 6.0),  # retried: the newest record wins
        ],
        model="wan-t2v",
    )
    return complete, partial


def test_long_frame_from_run_folders(two_runs: tuple[Path, Path]) -> None:
    frame = load_results(two_runs)
    assert list(frame.columns) == [
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
    ]
    assert set(frame["model"]) == {"kaleido-tiny (random weights)", "wan-t2v"}
    assert set(frame["status"]) == {"ok", "absent", "failed"}
    absent = frame[frame["status"] == "absent"].iloc[0]
    assert math.isnan(absent["value"]) and absent["details"] == {"absent": "no face reference"}
    retried = frame[(frame["case"] == "singleobj_2")]
    assert retried["status"].tolist() == ["ok"] and retried["value"].tolist() == [6.0]


def test_opens2v_table_totals_missing_and_counts(two_runs: tuple[Path, Path]) -> None:
    table = suite_table(load_results(two_runs), "opens2v").set_index("model")
    complete = table.loc["kaleido-tiny (random weights)"]
    # aes: 5.5 and 6.5 -> 6.0 -> (6 - 4) / 3; nexus 0 skipped -> 0.02 / 0.05
    assert complete["Aesthetics"] == 66.67
    assert complete["NexusScore"] == 40.0
    assert complete["NaturalScore"] == 75.0
    expected = (
        0.16 * 2 / 3 + 0.06 * 0.9 + 0.02 * 0.2 + 0.20 * 0.6 + 0.12 * 0.7 + 0.20 * 0.4 + 0.24 * 0.75
    )
    assert complete["TotalScore"] == round(expected * 100, 2)
    assert complete["aesthetics"] == pytest.approx(
        6.0
    )  # raw mean; not_a_case's 9.9 is filtered out
    assert complete["nexus_score"] == pytest.approx(0.01)  # raw mean keeps the 0
    assert complete["videos"] == 2 and complete["failed"] == 1
    partial = table.loc["wan-t2v"]
    assert partial["aesthetics"] == pytest.approx(5.5)
    assert partial["Aesthetics"] == 50.0
    for column in ("TotalScore", "FaceSim", "NaturalScore", "face_sim_cur", "natural_score"):
        assert math.isnan(partial[column]), column  # missing, never 0
    assert partial["videos"] == 2 and partial["failed"] == 0


def test_markdown_and_csv_show_missing_as_missing(two_runs: tuple[Path, Path]) -> None:
    table = suite_table(load_results(two_runs), "opens2v")
    md = to_markdown(table)
    lines = md.splitlines()
    assert lines[0].startswith("| model") and "TotalScore" in lines[0] and "videos" in lines[0]
    row = next(line for line in lines if "wan-t2v" in line)
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    by_column = dict(zip(header, cells))
    assert by_column["TotalScore"] == "—" and by_column["FaceSim"] == "—"
    assert by_column["Aesthetics"] == "50.00" and by_column["aesthetics"] == "5.5000"
    assert "nan" not in md.lower()
    text = to_csv(table)
    back = pd.read_csv(io.StringIO(text))
    wan = back[back["model"] == "wan-t2v"].iloc[0]
    assert math.isnan(wan["TotalScore"]) and wan["Aesthetics"] == 50.0
    wan_line = next(line for line in text.splitlines() if line.startswith("wan-t2v"))
    assert ",," in wan_line and ",0.0," not in wan_line and "nan" not in wan_line


def test_human_domain_table_has_no_nexus_and_v10_has_one_motion_column(tmp_path: Path) -> None:
    run = make_run(
        tmp_path,
        "human",
        [*full_records("singleface_1"), *full_records("singleobj_1")],
        suite="opens2v-human",
        domain="Human-Domain",
    )
    table = suite_table(load_results([run]), "opens2v-human")
    assert "NexusScore" not in table.columns and "nexus_score" in table.columns
    assert table["videos"].tolist() == [1]  # singleobj_1 is not a Human-Domain case
    v10 = suite_table(load_results([run]), "opens2v-human", version="v1.0")
    assert "Motion" in v10.columns and "MotionSmoothness" not in v10.columns
    assert v10["Motion"].tolist() == [20.0]  # v1.0's Motion is MotionAmplitude
    expected = 0.15 * 0.5 + 0.15 * 0.2 + 0.25 * 0.6 + 0.15 * 0.7 + 0.30 * 0.75
    assert v10["TotalScore"].tolist() == [round(expected * 100, 2)]


def test_other_suites_get_plain_means_and_custom_aggregators(tmp_path: Path) -> None:
    run = make_run(
        tmp_path,
        "mini",
        [
            ScoreRecord("c1", "subject_consistency", 0.9, {"frames": 3}),
            ScoreRecord("c2", "subject_consistency", 0.6, {"frames": 1}),
        ],
        suite="mini",
        domain="",
    )
    frame = load_results([run])
    plain = suite_table(frame, "mini")
    assert plain["subject_consistency"].tolist() == [pytest.approx(0.75)]
    assert "TotalScore" not in plain.columns

    def frame_weighted(items):
        return sum(v * d["frames"] for v, d in items) / sum(d["frames"] for _, d in items)

    weighted = suite_table(frame, "mini", aggregators={"subject_consistency": frame_weighted})
    assert weighted["subject_consistency"].tolist() == [pytest.approx((0.9 * 3 + 0.6) / 4)]


def test_counts_table_per_metric(two_runs: tuple[Path, Path]) -> None:
    counts = counts_table(load_results(two_runs)).set_index(["model", "metric"])
    assert counts.loc[("wan-t2v", "aesthetics"), ["scored", "absent", "failed"]].tolist() == [
        2,
        0,
        0,
    ]
    assert counts.loc[("wan-t2v", "face_sim_cur"), ["scored", "absent", "failed"]].tolist() == [
        0,
        1,
        0,
    ]
    assert counts.loc[("kaleido-tiny (random weights)", "generate"), "failed"] == 1


def test_official_folder_beside_our_runs_reproduces_the_official_total(
    two_runs: tuple[Path, Path], official_outputs: Path
) -> None:
    frame = load_results([*two_runs, official_outputs])
    table = suite_table(frame, "opens2v").set_index("kind")
    official = table.loc["official"]
    assert official["model"] == "reference_outputs"
    assert official["TotalScore"] == round(0.5959962472265614 * 100, 2) == 59.6
    assert official["videos"] == 2  # not filtered: faceobj_14 and singleface_3 both count
    human = suite_table(
        load_results([official_outputs], official_domain="Human-Domain"), "opens2v-human"
    )
    assert human["TotalScore"].tolist() == [round(0.6884787565947551 * 100, 2)]


def test_published_rows_parse() -> None:
    open_v11 = published_rows("Open-Domain").set_index("model")
    bindweave = open_v11.loc["BindWeave"]
    assert bindweave["TotalScore"] == 57.61
    assert bindweave["url"].startswith("https://")
    assert open_v11.loc["MAGREF-480P", "TotalScore"] == 52.51
    assert open_v11.loc["VACE-14B", "MotionSmoothness"] == 94.97
    human_v10 = published_rows("Human-Domain", "v1.0")
    assert "Motion" in human_v10.columns and "NexusScore" not in human_v10.columns
    assert human_v10["TotalScore"].notna().all() and len(human_v10) == 19
    assert parse_percent("52.51%") == 52.51 and math.isnan(parse_percent("-"))


def test_published_rows_beside_ours_come_after_ours_best_first(two_runs: tuple[Path, Path]) -> None:
    table = suite_table(load_results(two_runs), "opens2v", published=True)
    assert table["kind"].tolist()[:2] == ["ours", "ours"]
    published = table[table["kind"] == "published"]
    assert published["model"].iloc[0] == "BindWeave" and published["TotalScore"].iloc[0] == 57.61
    assert published["TotalScore"].is_monotonic_decreasing
    assert published["videos"].isna().all() and published["aesthetics"].isna().all()


def test_render_and_write_out(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    mini = make_run(
        tmp_path, "mini", [ScoreRecord("c1", "aesthetics", 5.0)], suite="mini", domain=""
    )
    tables = suite_tables(load_results([*two_runs, mini]))
    assert list(tables) == ["opens2v", "mini"]
    md = render(tables, "md")
    assert "## opens2v" in md and "## mini" in md
    csv_text = render(tables, "csv")
    stacked = pd.read_csv(io.StringIO(csv_text))
    assert sorted(stacked["suite"].unique()) == ["mini", "opens2v"]
    out = write_leaderboard(md, tmp_path / "out" / "board.md")
    assert out.read_text().startswith("## opens2v")
    text = leaderboard([*two_runs], out=tmp_path / "board.csv", published=True)
    assert (
        (tmp_path / "board.csv")
        .read_text()
        .startswith("model,kind,source,suite,videos,failed,version,TotalScore")
    )
    assert "BindWeave" in text
    with pytest.raises(UnknownNameError):
        render(tables, "xlsx")


def test_bad_inputs_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(ScoreFileError, match="does not exist"):
        load_results([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScoreFileError, match="neither a result folder"):
        load_results([tmp_path / "empty"])
    with pytest.raises(UnknownNameError):
        suite_table(load_results([]), "opens2v", version="v3")
    assert issubclass(ScoreFileError, BenchError)


def test_model_label_and_suite_case_ids() -> None:
    assert (
        model_label({"model": "kaleido-tiny"}, "random weights") == "kaleido-tiny (random weights)"
    )
    assert (
        model_label({"model": "kaleido-tiny"}, "kaleido-tiny (random weights)")
        == "kaleido-tiny (random weights)"
    )
    assert model_label({"model": "wan"}) == "wan"
    assert len(opens2v_case_ids("Open-Domain")) == 180
    assert len(opens2v_case_ids("Human-Domain")) == 60
    assert len(opens2v_case_ids("Single-Domain")) == 90
