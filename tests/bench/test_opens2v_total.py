"""The OpenS2V merge arithmetic against the official scripts' numbers (SPEC.md section 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kaleido_bench.bench.protocols.opens2v import (
    METRIC_TO_SLOT,
    SLOTS,
    ScoreFileError,
    clip_video_value,
    compute_total,
    metrics_to_slots,
    official_total,
    read_official_folder,
    total_from_slots,
    weights_for,
)
from kaleido_bench.core.errors import BenchError, UnknownNameError

# Official v1.1 merge_result.py on reference_outputs/ (SPEC.md section 2).
OFFICIAL_SLOTS = {
    "aes_score": 0.3343864281972249,
    "motion_smoothness": 0.9492753623188406,
    "motion_amplitude": 0.1945268139243126,
    "facesim_cur": 0.9420197624713182,
    "gme_score": 0.6767578125,
    "nexus_score": 0.260162353515625,
    "natural_score": 0.6666666666666667,
}
TOL = 1e-12


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("Open-Domain", 0.5959962472265614),
        ("Human-Domain", 0.6884787565947551),
        ("Single-Domain", 0.5959962472265614),
    ],
)
def test_reference_outputs_reproduce_official_v11_merge(
    official_outputs: Path, domain: str, expected: float
) -> None:
    result = official_total(official_outputs, domain)
    assert result.total == pytest.approx(expected, abs=TOL)
    for slot, value in OFFICIAL_SLOTS.items():
        assert result.slots[slot] == pytest.approx(value, abs=TOL), slot


def test_ours_mode_equals_official_when_every_slot_is_present(official_outputs: Path) -> None:
    ours = compute_total(metrics_to_slots(read_official_folder(official_outputs)), "Open-Domain")
    assert ours.mode == "ours"
    assert ours.total == pytest.approx(0.5959962472265614, abs=TOL)


def test_shipped_merged_json_is_stale_v10_weights_with_smoothness_as_motion(
    official_outputs: Path,
) -> None:
    """reference_outputs/model_name_Open-Domain.json (0.6356867755593165) was not made by v1.1:
    it is v1.0's weights with MotionSmoothness (not MotionAmplitude) in the Motion slot."""
    shipped = json.loads((official_outputs / "model_name_Open-Domain.json").read_text())
    slots = official_total(official_outputs, "Open-Domain").slots
    stale = total_from_slots(
        {**slots, "motion_amplitude": slots["motion_smoothness"]}, "Open-Domain", "v1.0"
    )
    assert stale == pytest.approx(0.6356867755593165, abs=TOL)
    assert shipped["total_score"] == pytest.approx(stale, abs=TOL)
    assert official_total(official_outputs, "Open-Domain", "v1.0").total != pytest.approx(
        stale, abs=1e-6
    )


def test_reader_maps_official_files_to_our_metric_names(official_outputs: Path) -> None:
    scores = read_official_folder(official_outputs)
    assert set(scores) == {"faceobj_14", "singleface_3"}
    assert (
        scores["faceobj_14"]["motion_amplitude"] == 0.35025984048843384
    )  # motion_fb, not motion_lk
    assert scores["singleface_3"]["motion_amplitude"] == 0.038793787360191345
    assert scores["singleface_3"]["face_sim_cur"] == 0.9420197624713182
    assert scores["singleface_3"]["face_sim_arc"] == 0.9367029462009668
    assert "face_sim_cur" not in scores["faceobj_14"]  # facesim.json has no faceobj_14
    assert "nexus_score" not in scores["singleface_3"]
    assert scores["singleface_3"]["natural_score"] == pytest.approx((3 + 3 + 4) / 3)


def test_v10_weights_and_motion_slot_is_amplitude() -> None:
    assert weights_for("Open-Domain", "v1.0") == (
        ("aes_score", 0.12),
        ("motion_amplitude", 0.12),
        ("facesim_cur", 0.20),
        ("gme_score", 0.12),
        ("nexus_score", 0.20),
        ("natural_score", 0.24),
    )
    assert weights_for("Human-Domain", "v1.0") == (
        ("aes_score", 0.15),
        ("motion_amplitude", 0.15),
        ("facesim_cur", 0.25),
        ("gme_score", 0.15),
        ("natural_score", 0.30),
    )
    slots = dict.fromkeys(SLOTS, 0.0) | {"motion_amplitude": 1.0, "motion_smoothness": 0.5}
    assert total_from_slots(slots, "Open-Domain", "v1.0") == pytest.approx(0.12)
    assert total_from_slots(slots, "Human-Domain", "v1.0") == pytest.approx(0.15)


def test_v11_weights_sum_to_one_and_only_human_domain_gets_human_weights() -> None:
    for domain in ("Open-Domain", "Human-Domain", "Single-Domain", "anything"):
        for version in ("v1.1", "v1.0"):
            assert sum(w for _, w in weights_for(domain, version)) == pytest.approx(1.0)
    assert (
        weights_for("Single-Domain") == weights_for("Open-Domain") == weights_for("Single-Object")
    )
    assert "nexus_score" not in dict(weights_for("Human-Domain"))


def test_unknown_version_is_a_user_error() -> None:
    with pytest.raises(UnknownNameError, match="v1.1"):
        weights_for("Open-Domain", "v2")


def test_per_video_clipping_rules() -> None:
    assert clip_video_value("aes_score", 8.5) == 7
    assert clip_video_value("aes_score", 3.2) == 4
    assert clip_video_value("aes_score", 5.5) == 5.5
    assert clip_video_value("natural_score", 0.0) == 1
    assert clip_video_value("natural_score", 6.0) == 5
    assert clip_video_value("motion_amplitude", -0.3) == 0.3
    assert clip_video_value("motion_amplitude", -1.7) == 1
    assert clip_video_value("motion_smoothness", -0.25) == 0.25
    assert clip_video_value("facesim_cur", -0.2) == -0.2  # no lower clip
    assert clip_video_value("facesim_cur", 1.3) == 1
    assert clip_video_value("gme_score", -0.1) == -0.1
    assert clip_video_value("gme_score", 1.01) == 1
    assert clip_video_value("nexus_score", 0.08) == 0.05
    assert clip_video_value("nexus_score", 0.02) == 0.02
    assert clip_video_value("nexus_score", 0) is None  # skipped: out of sum and count


def test_hand_computed_averages_and_total() -> None:
    per_video = {
        "a": {
            "aes_score": 8.0,
            "motion_smoothness": 0.9,
            "motion_amplitude": -0.4,
            "facesim_cur": -0.2,
            "gme_score": 1.2,
            "nexus_score": 0.0,
            "natural_score": 6.0,
        },
        "b": {
            "aes_score": 5.0,
            "motion_smoothness": 1.3,
            "motion_amplitude": 0.2,
            "facesim_cur": 0.6,
            "gme_score": 0.5,
            "nexus_score": 0.1,
            "natural_score": 2.0,
        },
        "c": {"aes_score": 3.0, "nexus_score": 0.02},
    }
    result = compute_total(per_video, "Open-Domain")
    # aes: clip(8)=7, 5, clip(3)=4 -> 16/3 -> (16/3 - 4)/3 = 4/9
    assert result.averages["aes_score"] == pytest.approx(16 / 3)
    assert result.slots["aes_score"] == pytest.approx(4 / 9)
    assert result.slots["motion_smoothness"] == pytest.approx((0.9 + 1.0) / 2)
    assert result.slots["motion_amplitude"] == pytest.approx((0.4 + 0.2) / 2)
    assert result.slots["facesim_cur"] == pytest.approx((-0.2 + 0.6) / 2)
    assert result.slots["gme_score"] == pytest.approx((1.0 + 0.5) / 2)
    # nexus: the 0 of "a" is skipped, 0.1 -> 0.05: (0.05 + 0.02) / 2 / 0.05
    assert result.counts["nexus_score"] == 2
    assert result.slots["nexus_score"] == pytest.approx(0.7)
    # natural: 6 -> 5, 2: 3.5 -> (3.5 - 1) / 4
    assert result.slots["natural_score"] == pytest.approx(0.625)
    expected = (
        0.16 * 4 / 9
        + 0.06 * 0.95
        + 0.02 * 0.3
        + 0.20 * 0.2
        + 0.12 * 0.75
        + 0.20 * 0.7
        + 0.24 * 0.625
    )
    assert result.total == pytest.approx(expected)
    assert result.percent()["total_score"] == round(expected * 100, 2)
    human = compute_total(per_video, "Human-Domain")
    assert human.total == pytest.approx(
        0.18 * 4 / 9 + 0.09 * 0.95 + 0.03 * 0.3 + 0.25 * 0.2 + 0.15 * 0.75 + 0.30 * 0.625
    )
    assert "nexus_score" not in human.percent()


def test_missing_metric_is_missing_in_ours_not_zero() -> None:
    per_video = {
        "a": {
            "aes_score": 5.0,
            "motion_smoothness": 1.0,
            "motion_amplitude": 0.1,
            "facesim_cur": 0.5,
            "gme_score": 0.5,
            "nexus_score": 0.01,
        }
    }  # no natural score at all
    ours = compute_total(per_video, "Open-Domain")
    assert ours.slots["natural_score"] is None
    assert ours.averages["natural_score"] is None
    assert ours.total is None
    assert ours.percent()["total_score"] is None and ours.percent()["natural_score"] is None
    assert ours.percent()["aes_score"] == 33.33


def test_official_mode_keeps_the_zero_average_quirk() -> None:
    """A slot no video has averages to 0 before scaling: Natural -> (0 - 1) / 4, Aes -> -4/3."""
    per_video = {
        "a": {
            "motion_smoothness": 1.0,
            "motion_amplitude": 0.1,
            "facesim_cur": 0.5,
            "gme_score": 0.5,
            "nexus_score": 0.01,
        }
    }
    official = compute_total(per_video, "Open-Domain", mode="official")
    assert official.slots["natural_score"] == -0.25
    assert official.slots["aes_score"] == pytest.approx(-4 / 3)
    expected = (
        0.16 * (-4 / 3)
        + 0.06 * 1.0
        + 0.02 * 0.1
        + 0.20 * 0.5
        + 0.12 * 0.5
        + 0.20 * 0.2
        + 0.24 * -0.25
    )
    assert official.total == pytest.approx(expected)
    # a nexus slot of only zeros is missing too (zeros are skipped)
    assert compute_total({"a": {"nexus_score": 0.0}}, "Open-Domain").slots["nexus_score"] is None


def test_missing_unweighted_slot_does_not_block_the_total() -> None:
    per_video = {
        "a": {
            "aes_score": 5.0,
            "motion_smoothness": 1.0,
            "motion_amplitude": 0.1,
            "facesim_cur": 0.5,
            "gme_score": 0.5,
            "natural_score": 4.0,
        }
    }  # no nexus: not weighted for Human
    assert compute_total(per_video, "Human-Domain").total is not None
    assert compute_total(per_video, "Open-Domain").total is None


def test_metric_to_slot_mapping_covers_every_slot_once() -> None:
    assert sorted(METRIC_TO_SLOT.values()) == sorted(SLOTS)
    assert metrics_to_slots(
        {"v": {"aesthetics": 5.0, "face_sim_arc": 0.3, "face_sim_cur": 0.4}}
    ) == {"v": {"aes_score": 5.0, "facesim_cur": 0.4}}


def test_reader_averages_natural_runs_present_and_accepts_v10_motion_file(tmp_path: Path) -> None:
    (tmp_path / "naturalscore_1.json").write_text(json.dumps({"x": "4", "y": "2"}))
    (tmp_path / "naturalscore_3.json").write_text(json.dumps({"x": "5"}))
    (tmp_path / "motionscore.json").write_text(
        json.dumps({"x": {"motion_fb": -0.5, "motion_lk": 9.0}})
    )
    (tmp_path / "model_name_Open-Domain.json").write_text(
        json.dumps({"total_score": 0.5})
    )  # ignored
    scores = read_official_folder(tmp_path)
    assert scores == {
        "x": {"natural_score": 4.5, "motion_amplitude": -0.5},
        "y": {"natural_score": 2.0},
    }
    result = official_total(tmp_path, "Open-Domain", "v1.0")
    assert result.slots["motion_amplitude"] == 0.5


def test_bad_score_files_raise_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "naturalscore_1.json").write_text(json.dumps({"x": "four"}))
    with pytest.raises(ScoreFileError, match="non-numeric"):
        read_official_folder(tmp_path)
    (tmp_path / "naturalscore_1.json").write_text("{not json")
    with pytest.raises(ScoreFileError, match="cannot be read"):
        read_official_folder(tmp_path)
    assert issubclass(ScoreFileError, BenchError)
    with pytest.raises(ScoreFileError, match="no official"):
        official_total(tmp_path / "nothing", "Open-Domain")
