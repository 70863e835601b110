"""The dataset's files: a kept sample's media and row, the funnel part as the commit mark (a
shard a killed run left without one is removed, so its samples are redone), the funnel report."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
from skimage import data

from kaleido_bench.kaleido.data.funnel import funnel_markdown, funnel_report
from kaleido_bench.kaleido.data.records import Box, SampleState, SubjectState
from kaleido_bench.kaleido.data.shards import (
    SHARD_COLUMNS,
    finished_ids,
    write_manifest,
    write_part,
    write_sample,
)
from kaleido_bench.kaleido.data.video import read_frames, write_mp4


def _states(tmp_path):
    write_mp4(tmp_path / "clip.mp4", np.stack([data.coffee()[:96, :128]] * 4))
    kept = SampleState(
        "kept", str(tmp_path / "clip.mp4"), caption="a cup", stages=["caption", "detect"]
    )
    cup = SubjectState(
        "cup", box=Box(0, 0, 10, 10), variants={"inpainted": data.coffee()[:32, :32]}
    )
    dark = SubjectState("spoon")
    kept.subjects = [cup, dark]
    kept.drop_subject(dark, "cutout", "too dark")
    kept.chosen = [("cup", "inpainted")]
    dropped = SampleState("dropped", str(tmp_path / "clip.mp4"))
    dropped.reject("caption", "caption unparsable")
    return kept, dropped


def test_a_kept_sample_writes_its_clip_references_and_row(tmp_path):
    kept, dropped = _states(tmp_path)
    out = tmp_path / "ds"
    records = [write_sample(kept, out), write_sample(dropped, out)]
    write_part(out, records)
    shards = list(out.glob("part-*.parquet"))
    assert len(shards) == 1
    table = pq.read_table(shards[0])
    assert table.column_names == list(SHARD_COLUMNS)
    (row,) = table.to_pylist()
    assert row == {"sample_id": "kept", "caption": "a cup", "video": "media/kept/video.mp4",
                   "references": ["media/kept/ref0_inpainted.png"], "kind": ["inpainted"]}  # fmt: skip
    assert read_frames(out / row["video"]).shape == (4, 96, 128, 3)
    assert (out / row["references"][0]).exists() and not (out / "media" / "dropped").exists()
    assert finished_ids(out) == {"kept", "dropped"}

    report = funnel_report(out)
    assert report["samples_in"] == 2 and report["kept"] == 1
    assert report["dropped"] == {"caption unparsable": 1}
    assert report["subjects_dropped"] == {"cutout: too dark": 1}
    assert report["reference_kinds"] == {"inpainted": 1}
    assert "| cutout: too dark | 1 |" in funnel_markdown(report)
    write_manifest(out, {"workers": 1}, report["kept"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["shards"] == [shards[0].name] and manifest["num_samples"] == 1


def test_a_shard_without_its_funnel_part_is_removed_and_redone(tmp_path):
    kept, _ = _states(tmp_path)
    out = tmp_path / "ds"
    write_part(out, [write_sample(kept, out)])
    (funnel_part,) = (out / "funnel").glob("part-*.parquet")
    funnel_part.unlink()  # killed between the shard and its commit mark
    assert finished_ids(out) == set()
    assert list(out.glob("part-*.parquet")) == []
