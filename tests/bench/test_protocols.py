"""Suite protocols (`bench/protocols`): the lookup, the OpenS2V rules in one module, the generic
fallback, a suite with its own Total registered in one class, and `--metrics default`."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from synthetic_runs import make_run

from kaleido_bench.bench.leaderboard import load_results, render, suite_table
from kaleido_bench.bench.protocols import (
    PerVideo,
    SuiteProtocol,
    check_version,
    opens2v,
    percent_columns,
    protocol_for,
    protocol_names,
    register_protocol,
    total_columns,
    unregister_protocol,
)
from kaleido_bench.bench.runner import NOT_INSTALLED, select_metrics
from kaleido_bench.bench.store import ScoreRecord
from kaleido_bench.bench.suites import load_suite
from kaleido_bench.core.errors import UnknownNameError, WeightsMissingError

SEVEN = (
    "aesthetics",
    "motion_smoothness",
    "motion_amplitude",
    "face_sim_cur",
    "gme_score",
    "nexus_score",
    "natural_score",
)


def test_lookup_by_suite_name() -> None:
    assert {"generic", "opens2v"} <= set(protocol_names())
    for name in ("opens2v", "opens2v-human", "OpenS2V-Single", "opens2v_my_subset"):
        assert protocol_for(name).name == "opens2v", name
    for name in ("mini", "jobs", "my-suite", ""):
        assert protocol_for(name).name == "generic", name
    generic = protocol_for("mini")
    assert not generic.has_total and generic.default_metrics == ("all",)
    assert generic.total({"c1": {"aesthetics": 5.0}}) is None
    assert generic.table_columns({"c1": {"aesthetics": 5.0}}) == []
    assert generic.published_rows("", "v1.1") is None and generic.counted_case_ids("") is None


def test_opens2v_rules_live_in_one_protocol(tmp_path: Path) -> None:
    protocol = protocol_for("opens2v")
    assert protocol.default_metrics == SEVEN == tuple(opens2v.METRIC_TO_SLOT)
    assert protocol.total_column == "TotalScore" and protocol.versions == ("v1.1", "v1.0")
    assert (
        set(total_columns()) >= set(opens2v.PERCENT_COLUMNS) and "TotalScore" in percent_columns()
    )
    for suite, domain in opens2v.SUITE_DOMAINS.items():
        loaded = load_suite(suite, tmp_path)  # the loaders read the protocol's map
        assert loaded.domain == domain == protocol.domain_of(suite)
        assert {case.id for case in loaded.cases} == protocol.counted_case_ids(domain)
    assert load_suite("mini").domain == ""  # mini belongs to no OpenS2V domain
    assert protocol.counted_case_ids("") is None
    # FaceSim's case rule (get_facesim.py): only the face case families
    assert protocol.applies("face_sim_cur", "singlehuman_3") and protocol.applies(
        "face_sim_arc", "faceobj_1"
    )
    assert not protocol.applies("face_sim_cur", "singleobj_12")
    assert protocol.applies("aesthetics", "singleobj_12") and protocol_for("mini").applies(
        "face_sim_cur", "x"
    )
    assert opens2v.EXPORT_FILES["face_sim_arc"] == ("facesim", "arc_score")
    assert (
        protocol.column_metric("FaceSim") == "face_sim_cur"
        and protocol.column_metric("Motion") == "motion_amplitude"
    )


def test_opens2v_total_is_the_merge_on_metric_names() -> None:
    per_video = {
        "singleface_1": {
            "aesthetics": 5.5,
            "motion_amplitude": 0.3,
            "face_sim_cur": 0.6,
            "clip_t": 0.2,
        },
        "singleobj_2": {"aesthetics": 6.5, "motion_amplitude": 1.4, "nexus_score": 0.02},
    }
    protocol = protocol_for("opens2v")
    assert protocol.total(per_video, domain="Open-Domain") is None  # slots missing: no Total
    full = {
        video: dict(
            values, motion_smoothness=0.9, gme_score=0.7, natural_score=4.0, nexus_score=0.03
        )
        for video, values in per_video.items()
    }
    for domain in ("Open-Domain", "Human-Domain"):
        for version in ("v1.1", "v1.0"):
            expected = opens2v.compute_total(opens2v.metrics_to_slots(full), domain, version).total
            assert protocol.total(full, domain=domain, version=version) == expected is not None
    columns = protocol.table_columns(
        full, [("singleobj_2", "gme_score")], domain="Human-Domain", reps=50
    )
    names = [c.name for c in columns]
    assert names[0] == "TotalScore" and "NexusScore" not in names  # Human-Domain weights
    assert columns[0].value == round(protocol.total(full, domain="Human-Domain") * 100, 2)
    assert columns[0].excluded == 1 and columns[0].n == 2
    low, high = columns[0].ci  # the value is rounded to 2 digits, the interval not yet
    assert (
        math.isfinite(low) and low <= columns[0].value + 0.005 and columns[0].value - 0.005 <= high
    )
    with pytest.raises(UnknownNameError, match="v2"):
        check_version("v2")


# -- a suite with its own Total: one class -------------------------------------------------------


class ToyProtocol(SuiteProtocol):
    """A suite whose Total is the median aesthetics minus the mean motion (nothing like OpenS2V)."""

    name = "toy"
    suite_names = ("toy-suite",)
    default_metrics = ("motion_amplitude", "no_such_metric", "natural_score")
    total_column = "ToyTotal"
    total_metrics = ("aesthetics", "motion_amplitude")
    columns = ("ToyTotal",)

    def total(
        self, per_video: PerVideo, *, domain: str = "", version: str = "", mode: str = "ours"
    ) -> float | None:
        aes = [v["aesthetics"] for v in per_video.values() if "aesthetics" in v]
        motion = [v["motion_amplitude"] for v in per_video.values() if "motion_amplitude" in v]
        return statistics.median(aes) - statistics.fmean(motion) if aes and motion else None

    def published_rows(self, domain: str, version: str = "") -> pd.DataFrame | None:
        return pd.DataFrame(
            {
                "model": ["paper-model", "other-paper"],
                "url": ["", ""],
                "venue": ["", ""],
                "evaluated_by": ["", ""],
                "ToyTotal": [1.0, 3.0],
            }
        )

    def counted_case_ids(self, domain: str) -> frozenset[str] | None:
        return frozenset({"a_1", "a_2", "a_3"})


@pytest.fixture
def toy() -> Iterator[type[ToyProtocol]]:
    register_protocol(ToyProtocol)
    yield ToyProtocol
    unregister_protocol("toy")


def test_a_registered_protocol_gives_the_leaderboard_its_total(toy, tmp_path: Path) -> None:
    assert protocol_for("toy-suite").name == "toy" and "ToyTotal" in total_columns()
    values = {
        "a_1": (5.0, 0.2),
        "a_2": (7.0, 0.4),
        "a_3": (6.5, 0.9),
        "z_9": (1.0, 5.0),
    }  # z_9: not counted
    records = [ScoreRecord(case, "aesthetics", aes) for case, (aes, _) in values.items()]
    records += [
        ScoreRecord(case, "motion_amplitude", motion) for case, (_, motion) in values.items()
    ]
    records += [ScoreRecord("a_1", "clip_t", 0.3)]
    run = make_run(tmp_path, "toy-run", records, model="m", suite="toy-suite")
    table = suite_table(load_results([run]), "toy-suite", published=True, reps=200)
    ours = table[table["kind"] == "ours"].iloc[0]
    expected = statistics.median([5.0, 7.0, 6.5]) - statistics.fmean([0.2, 0.4, 0.9])
    assert ours["ToyTotal"] == pytest.approx(expected) and ours["ToyTotal.n"] == 3
    assert ours["ToyTotal.ci_low"] <= ours["ToyTotal"] <= ours["ToyTotal.ci_high"]
    # its case filter applied: z_9 does not count
    assert ours["videos"] == 3 and ours["cases"] == 3 and not ours["partial"]
    assert ours["aesthetics"] == pytest.approx(6.1666666, abs=1e-6)  # per-metric means stay
    # unversioned, and not OpenS2V
    assert "version" not in table.columns and "TotalScore" not in table.columns
    values_order = [c for c in table.columns if c in ("ToyTotal", "aesthetics", "clip_t")]
    assert values_order[0] == "ToyTotal"  # the Total leads the values
    published = table[table["kind"] == "published"]
    assert published["model"].tolist() == ["other-paper", "paper-model"]  # best first
    header = next(
        line for line in render({"toy-suite": table}, "md").splitlines() if "model" in line
    )
    assert header.index("ToyTotal") < header.index("aesthetics")
    # gone again: the same run folder is a generic suite with plain means only
    unregister_protocol("toy")
    plain = suite_table(load_results([run]), "toy-suite", published=True, reps=0)
    assert "ToyTotal" not in plain.columns and plain["videos"].tolist() == [4]


# -- --metrics default ---------------------------------------------------------------------------


def test_default_metrics_skip_what_this_install_lacks(toy) -> None:
    chosen, skipped = select_metrics(
        ["default"], defaults=protocol_for("toy-suite").default_metrics
    )
    assert [m.name for m in chosen] == ["motion_amplitude"]
    assert skipped["no_such_metric"] == NOT_INSTALLED
    assert "name it in --metrics" in skipped["natural_score"]  # opt-in stays opt-in
    options = {"natural_score": {"endpoint": "http://127.0.0.1:9/v1", "model": "local-vlm"}}
    chosen, skipped = select_metrics(
        ["default", "natural_score"], options, defaults=toy.default_metrics
    )
    assert [m.name for m in chosen] == [
        "motion_amplitude",
        "natural_score",
    ] and "natural_score" not in skipped
    with pytest.raises(
        UnknownNameError, match="no_such_metric"
    ):  # named explicitly: still an error
        select_metrics(["no_such_metric"])


def test_default_metrics_per_suite() -> None:
    # mini / suite files: "all", exactly as before (the same error, naming the same files)
    with pytest.raises(WeightsMissingError) as as_all:
        select_metrics(["all"])
    with pytest.raises(WeightsMissingError) as as_default:
        select_metrics(["default"], defaults=protocol_for("mini").default_metrics)
    assert str(as_default.value) == str(as_all.value)
    # OpenS2V: only its seven; those with weights name them, unported ones are not an error
    with pytest.raises(WeightsMissingError) as seven:
        select_metrics(["default"], defaults=protocol_for("opens2v").default_metrics)
    message = str(seven.value)
    assert "for aesthetics" in message and "for face_sim_cur" in message
    assert "clip_t" not in message and "subject_consistency" not in message


def test_cli_score_uses_the_suite_default(tmp_path: Path, run_cli) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    code, _, err = run_cli(
        "score",
        "--suite",
        "opens2v",
        "--data-root",
        str(tmp_path),
        "--videos",
        str(videos),
        "--runs-dir",
        str(tmp_path / "runs"),
    )
    assert code == 2 and "for face_sim_cur" in err and "clip_t" not in err
