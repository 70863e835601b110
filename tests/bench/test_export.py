"""`kaleido-bench export --format opens2v`: the official per-metric files, read back to the same Total."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from kaleido_bench.bench.export import ExportError, export_opens2v, run_values
from kaleido_bench.bench.leaderboard import load_results, suite_table
from kaleido_bench.bench.protocols.opens2v import (
    DOMAINS,
    compute_total,
    metrics_to_slots,
    official_total,
    read_official_folder,
)
from kaleido_bench.bench.protocols.opens2v import case_ids as opens2v_case_ids
from kaleido_bench.bench.store import GENERATE, ResultStore, RunManifest, ScoreRecord

OPEN_SUITE = {"name": "opens2v", "version": "v1.1", "domain": "Open-Domain", "data_root": "."}
CASES = ("singleface_3", "faceobj_14", "singleobj_1", "multihuman_2", "humanobj_5", "singlehuman_7")


def natural_record(case: str, replies: list[str]) -> ScoreRecord:
    """A NaturalScore record as the metric writes it: valid runs carry a score, others an error."""
    runs, scores = [], []
    for run, reply in enumerate(replies, start=1):
        try:
            score = float(reply)
        except ValueError:
            runs.append({"run": run, "reply": reply, "error": "not a score from 1 to 5"})
            continue
        scores.append(score)
        runs.append({"run": run, "reply": reply, "score": score})
    return ScoreRecord(
        case, "natural_score", sum(scores) / len(scores), {"runs": runs, "valid_runs": len(scores)}
    )


def make_run(folder: Path, records: list[ScoreRecord], suite: dict | None = None) -> Path:
    store = ResultStore(folder)
    store.open(RunManifest(model={"model": "test"}, suite=suite or OPEN_SUITE, seed=0))
    for record in records:
        store.append(record)
    return folder


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run with every OpenS2V metric, absent values, failures, a retried record and bad replies."""
    assert set(CASES) <= opens2v_case_ids("Open-Domain")
    rng = random.Random(7)
    records = []
    for case in CASES:
        records.append(ScoreRecord(case, GENERATE, None, {"video": f"{case}.mp4"}))
        records.append(ScoreRecord(case, "aesthetics", rng.uniform(3.5, 7.5)))
        records.append(ScoreRecord(case, "motion_amplitude", rng.uniform(0, 1.2)))
        records.append(ScoreRecord(case, "motion_smoothness", rng.uniform(0.8, 1.0)))
        records.append(ScoreRecord(case, "gme_score", rng.uniform(0.5, 0.8)))
        records.append(ScoreRecord(case, "clip_t", rng.uniform(0.1, 0.3)))  # no official file
        if "obj" in case and "face" not in case and "human" not in case:
            records.append(ScoreRecord(case, "face_sim_cur", None, {"absent": "not a human case"}))
        else:
            records.append(ScoreRecord(case, "face_sim_cur", rng.uniform(0.2, 1.0)))
            records.append(ScoreRecord(case, "face_sim_arc", rng.uniform(0.2, 1.0)))
        if case == "singleface_3":
            records.append(ScoreRecord(case, "nexus_score", None, {"absent": "no detection"}))
        else:
            records.append(
                ScoreRecord(case, "nexus_score", rng.choice([0.0, rng.uniform(0, 0.08)]))
            )
        replies = [str(rng.randint(1, 5)) for _ in range(3)]
        if case == "faceobj_14":
            replies[1] = (
                "I'd say 4 because..."  # an invalid run: left out, as the mean leaves it out
            )
        records.append(natural_record(case, replies))
    records.append(
        ScoreRecord("singleobj_1", "gme_score", None, error="CUDA out of memory")
    )  # newest: failed
    records.append(ScoreRecord("humanobj_5", "aesthetics", None, error="boom"))
    records.append(ScoreRecord("humanobj_5", "aesthetics", 6.25))  # retried: the newest wins
    return make_run(tmp_path / "run", records)


def test_export_writes_the_official_files_and_formats(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    summary = export_opens2v(run, out)
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "aesthetic_score.json",
        "facesim.json",
        "gmescore.json",
        "motion_amplitude.json",
        "motion_smoothness.json",
        "naturalscore_1.json",
        "naturalscore_2.json",
        "naturalscore_3.json",
        "nexusscore.json",
    ]
    aes = json.loads((out / "aesthetic_score.json").read_text())
    assert aes["humanobj_5"] == {"aes_score": 6.25} and len(aes) == len(CASES)
    face = json.loads((out / "facesim.json").read_text())
    assert list(face["singleface_3"]) == ["cur_score", "arc_score"] and "singleobj_1" not in face
    assert "singleobj_1" not in json.loads(
        (out / "gmescore.json").read_text()
    )  # its newest record failed
    assert "singleface_3" not in json.loads((out / "nexusscore.json").read_text())  # absent
    natural = [json.loads((out / f"naturalscore_{i}.json").read_text()) for i in (1, 2, 3)]
    assert all(isinstance(v, str) for run_file in natural for v in run_file.values())
    assert "faceobj_14" in natural[0] and "faceobj_14" not in natural[1]  # its invalid run 2
    text = (out / "motion_amplitude.json").read_text()
    assert text == json.dumps(
        json.loads(text), indent=4
    )  # json.dump(indent=4), as the scripts write
    assert summary.left_out == {"absent": 2, "failed": 1, "invalid natural runs": 1}
    assert summary.not_exported == ("clip_t",)


@pytest.mark.parametrize("domain", DOMAINS)
def test_export_reads_back_to_the_runs_own_total(run: Path, tmp_path: Path, domain: str) -> None:
    export_opens2v(run, tmp_path / "export")
    direct = compute_total(metrics_to_slots(run_values(run)), domain, mode="official")
    exported = official_total(tmp_path / "export", domain)
    assert direct.total is not None
    assert exported.total == pytest.approx(direct.total, abs=1e-12, rel=0)
    assert exported.counts == direct.counts
    for slot, value in direct.slots.items():
        assert exported.slots[slot] == pytest.approx(value, abs=1e-12, rel=0)


def test_the_leaderboard_gives_the_export_the_runs_total(run: Path, tmp_path: Path) -> None:
    export_opens2v(run, tmp_path / "export")
    table = suite_table(load_results([run, tmp_path / "export"]), "opens2v")
    ours, official = table.iloc[0], table.iloc[1]
    assert (ours["kind"], official["kind"]) == ("ours", "official")
    for column in (
        "TotalScore",
        "Aesthetics",
        "MotionSmoothness",
        "MotionAmplitude",
        "FaceSim",
        "GmeScore",
        "NexusScore",
        "NaturalScore",
    ):
        assert ours[column] == official[column]
    assert ours["natural_score"] == pytest.approx(official["natural_score"], abs=1e-12)


def test_a_run_built_from_the_reference_outputs_exports_to_the_official_total(
    official_outputs, tmp_path
) -> None:
    """SPEC section 2: the official v1.1 merge on reference_outputs gives 0.5959962472265614."""
    values = read_official_folder(official_outputs)
    records = []
    for case, scores in values.items():
        for metric, value in scores.items():
            if metric != "natural_score":
                records.append(ScoreRecord(case, metric, value))
        replies = [
            json.loads((official_outputs / f"naturalscore_{i}.json").read_text())[case]
            for i in (1, 2, 3)
        ]
        records.append(natural_record(case, replies))
    run = make_run(tmp_path / "run", records)
    export_opens2v(run, tmp_path / "export")
    for name in ("naturalscore_1.json", "facesim.json", "nexusscore.json"):
        assert json.loads((tmp_path / "export" / name).read_text()) == json.loads(
            (official_outputs / name).read_text()
        )
    assert official_total(tmp_path / "export", "Open-Domain").total == pytest.approx(
        0.5959962472265614, abs=1e-12
    )
    assert official_total(tmp_path / "export", "Human-Domain").total == pytest.approx(
        0.6884787565947551, abs=1e-12
    )


def test_export_refuses_a_folder_with_score_files_unless_forced(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    out.mkdir()
    (out / "naturalscore_4.json").write_text('{"singleface_3": "1"}')
    with pytest.raises(ExportError, match="every .json file"):
        export_opens2v(run, out)
    export_opens2v(run, out, overwrite=True)
    assert not (out / "naturalscore_4.json").exists()


def test_export_cli(run: Path, tmp_path: Path, run_cli) -> None:
    code, _, err = run_cli(
        "export", str(run), "--format", "opens2v", "--out", str(tmp_path / "cli")
    )
    assert code == 0 and "aesthetic_score.json: 6 video(s)" in err
    assert (tmp_path / "cli" / "naturalscore_3.json").is_file()
    code, _, err = run_cli("export", str(tmp_path / "nothing"), "--out", str(tmp_path / "cli2"))
    assert code == 2 and "not a result folder" in err
