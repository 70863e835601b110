"""`kaleido-bench list models` (model cards) and the runner's reference-limit check, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kaleido_bench.baselines.base import MODELS, ModelCapabilities, check_case, load_builtin_models
from kaleido_bench.core.cases import Case
from kaleido_bench.core.errors import ReferenceLimitError


def test_list_models_shows_every_card_within_80_columns(run_cli):
    code, out, _ = run_cli("list", "models")
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 80
    blocks = {block.splitlines()[0].split()[0]: block for block in out.strip().split("\n\n")}
    assert {
        "still",
        "collage",
        "videos",
        "kaleido",
        "kaleido-tiny",
        "kling",
        "vidu",
        "minimax",
    } <= set(blocks)
    assert "references: at most 3; video: 512x896, 81 frames at 16 fps" in blocks["kaleido"]
    assert (
        "weights: zai-org/Kaleido-14B-S2V" in blocks["kaleido"]
        and "parameters: 14B" in blocks["kaleido"]
    )
    assert "references: any number; video: 240x416, 33 frames at 16 fps" in blocks["still"]
    assert "video: as the videos are" in blocks["videos"]
    assert (
        "references: at most 1;" in blocks["minimax"]
        and "references: at most 4;" in blocks["kling"]
    )
    for name in ("kling", "vidu", "minimax"):
        assert "licence: proprietary" in blocks[name] and "weights: remote API" in blocks[name]
    for name, block in blocks.items():  # every field filled for the models this package ships
        assert "not stated\n" not in block + "\n" and "not declared" not in block, name


@pytest.mark.parametrize("name, options", [("still", {}), ("collage", {}), ("kaleido-tiny", {})])
def test_a_card_states_what_the_default_model_makes(name, options):
    load_builtin_models()
    cls = MODELS.get(name)
    assert cls(**options).capabilities == cls.default_capabilities


def test_check_case_refuses_only_more_references_than_the_limit(tmp_path):
    case = Case("two", "p", (object(), object()))  # only the count matters
    check_case(ModelCapabilities(max_references=None), case)
    check_case(ModelCapabilities(max_references=2), case)
    with pytest.raises(
        ReferenceLimitError, match="case 'two' has 2 reference images; model 'm' accepts at most 1"
    ):
        check_case(ModelCapabilities(max_references=1), case, "m")


def test_a_run_refuses_cases_over_the_reference_limit_and_goes_on(run_cli, tmp_path: Path):
    out_dir = tmp_path / "run"
    code, _, err = run_cli(
        "run",
        "--model",
        "still",
        "--suite",
        "mini",
        "--metrics",
        "none",
        "-o",
        "max_references=1",
        "-o",
        "num_frames=2",
        "-o",
        "height=32",
        "-o",
        "width=48",
        "--out",
        str(out_dir),
    )
    assert code == 1, err  # the run goes on, and a run with failed cases exits 1 (issue 11)
    records = [json.loads(line) for line in (out_dir / "scores.jsonl").read_text().splitlines()]
    errors = {r["case"]: r["error"] for r in records if r["metric"] == "generate" and r["error"]}
    made = {r["case"] for r in records if r["metric"] == "generate" and not r["error"]}
    assert set(errors) == {
        "multiface_astronaut_hopper",
        "multiobject_cat_coffee",
        "faceobj_astronaut_rocket",
        "bgobj_cat_grass",
        "bgobj_horse_garage",
    }
    assert (
        errors["bgobj_cat_grass"]
        == "case 'bgobj_cat_grass' has 2 reference images; model 'still' accepts at most 1"
    )
    assert len(made) == 5 and all((out_dir / "videos" / f"{case}.mp4").is_file() for case in made)
    assert not (out_dir / "videos" / "bgobj_cat_grass.mp4").exists()
    assert "failed 5" in err and "accepts at most 1" in err


def test_max_references_is_in_the_config_only_when_given():
    load_builtin_models()
    still = MODELS.get("still")
    assert "max_references" not in still().options  # default runs keep their folder
    assert still(max_references="1").options["max_references"] == 1
    assert still(max_references=1).capabilities.max_references == 1


def test_the_cli_names_a_missing_api_key_in_one_line(run_cli, monkeypatch, tmp_path):
    monkeypatch.delenv("VIDU_API_KEY", raising=False)
    code, _, err = run_cli(
        "run", "--model", "vidu", "--metrics", "none", "--runs-dir", str(tmp_path)
    )
    assert code == 2 and "set VIDU_API_KEY" in err and len(err.strip().splitlines()) == 1
