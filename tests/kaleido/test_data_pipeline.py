"""The data pipeline end to end on a local Ray cluster (num_cpus=2) with tiny random models of
every stage, on clips made here from packaged photos: the dataset's references pass the filters
and differ from the target frames, every rejection keeps its reason, and a run stopped after
some samples resumes without redoing them."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from skimage import data

from kaleido_bench.kaleido.data.captioner import CAPTION_UNPARSABLE
from kaleido_bench.kaleido.data.filters import REASONS, ClipScorer, FaceDetector, cutout_failures
from kaleido_bench.kaleido.data.pipeline import build, list_clips
from kaleido_bench.kaleido.data.shards import SHARD_COLUMNS
from kaleido_bench.kaleido.data.video import read_frames, write_mp4

ray = pytest.importorskip("ray")


def _panning_clip(
    photo: np.ndarray, frames: int = 8, size: tuple[int, int] = (96, 128)
) -> np.ndarray:
    """A camera pan over the photo: a window sliding left to right (a synthetic training clip)."""
    h, w = size
    scaled = cv2.resize(photo, (int(w * 1.5), h), interpolation=cv2.INTER_AREA)
    shifts = np.linspace(0, scaled.shape[1] - w, frames).round().astype(int)
    return np.stack([scaled[:, s : s + w] for s in shifts])


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    sidecars = {
        "cat": (data.chelsea(), {"caption": "a cat looks around", "subjects": ["cat"]}),
        "coffee": (data.coffee(), {"caption": "a cup of coffee on a table", "subjects": ["cup"]}),
        "cat2": (data.chelsea()[:, ::-1], {"caption": "a cat, mirrored", "subjects": ["cat"]}),
        "two": (
            data.astronaut(),
            {"caption": "two things in one place", "subjects": ["cat", "cup"]},
        ),
        "vlm": (data.chelsea(), None),  # no sidecar: the tiny VLM's reply is not JSON
    }
    for name, (photo, meta) in sidecars.items():
        write_mp4(folder / f"{name}.mp4", _panning_clip(photo))
        if meta:
            (folder / f"{name}.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _stage_calls(out) -> dict[str, list[str]]:
    calls: dict[str, list[str]] = {}
    for part in (out / "funnel").glob("part-*.parquet"):
        for row in pq.read_table(part).to_pylist():
            calls.setdefault(row["sample_id"], []).append(tuple(row["stages"]))
    return calls


@pytest.mark.slow
def test_pipeline_writes_cross_paired_shards_and_resumes(local_ray, clips, data_models, tmp_path):
    from data_tiny_models import tiny_pipeline_config

    config = tiny_pipeline_config(data_models)
    out = tmp_path / "dataset"

    first = build(clips, out, config, limit=2)  # a run stopped after 2 samples
    assert (first.total, first.skipped, first.processed) == (5, 0, 2)
    done_first = set(_stage_calls(out))
    assert len(done_first) == 2
    first_media = {p: p.stat().st_mtime_ns for p in (out / "media").rglob("*")}

    second = build(clips, out, config)
    assert (second.skipped, second.processed) == (2, 3)
    calls = _stage_calls(out)
    assert set(calls) == {c.sample_id for c in list_clips(clips)}
    assert all(len(runs) == 1 for runs in calls.values()), (
        "a finished sample went through the stages again"
    )
    assert {p: p.stat().st_mtime_ns for p in first_media} == first_media  # nothing rewritten
    assert build(clips, out, config).processed == 0

    funnel = json.loads((out / "funnel.json").read_text())
    assert funnel["samples_in"] == 5
    assert funnel["dropped"][CAPTION_UNPARSABLE] == 1  # "vlm": the tiny VLM ran and wrote no JSON
    assert calls["vlm"] == [("caption",)]
    assert funnel["dropped"]["no subject left"] >= 1  # "two": both subjects on one box
    assert funnel["subjects_dropped"][f"detect: {REASONS['overlap']}"] >= 2  # cat and cup of "two"
    assert funnel["kept"] == funnel["samples_in"] - sum(funnel["dropped"].values()) >= 2
    assert "samples in: 5" in (out / "funnel.md").read_text()

    manifest = json.loads((out / "manifest.json").read_text())
    rows = [r for s in manifest["shards"] for r in pq.read_table(out / s).to_pylist()]
    assert sum(funnel["reference_kinds"].values()) == sum(len(r["kind"]) for r in rows)
    assert all(
        pq.read_table(out / s).column_names == list(SHARD_COLUMNS) for s in manifest["shards"]
    )
    assert len(rows) == manifest["num_samples"] == funnel["kept"]
    assert {r["sample_id"] for r in rows} <= {"cat", "coffee", "cat2"}

    clip = ClipScorer(config.filters.clip_model)
    faces = FaceDetector()
    for row in rows:
        target = read_frames(out / row["video"])
        assert len(row["references"]) == len(row["kind"]) >= 1
        assert set(row["kind"]) <= {"cutout", "inpainted", "reposed"}
        for path in row["references"]:
            ref = np.asarray(Image.open(out / path).convert("RGB"))
            label = json.loads((clips / f"{row['sample_id']}.json").read_text())["subjects"][0]
            assert cutout_failures(label, ref, None, config.filters, clip, faces) == []
            resized = cv2.resize(ref, target.shape[2:0:-1], interpolation=cv2.INTER_AREA).astype(
                np.int16
            )
            differences = [np.abs(resized - frame.astype(np.int16)).mean() for frame in target]
            assert min(differences) > 10, "a reference is a copy of a target frame"
