"""Run-folder files: a manifest or score line of the wrong shape is one error naming the file and line;
output files respect the umask; temp videos a killed run left behind are removed by the next run."""

from __future__ import annotations

import json
import os
import stat
import time

import numpy as np
import pytest

from kaleido_bench.bench.store import ResultStore
from kaleido_bench.core.atomic import write_json_atomic
from kaleido_bench.core.errors import ResultFileError
from kaleido_bench.core.video import write_video

MANIFEST = {"model": {"model": "m"}, "suite": {"name": "mini"}, "seed": 0}


@pytest.mark.parametrize(
    "manifest, needle",
    [
        ([], "must hold a JSON object"),
        ({"model": "m", "suite": {}, "seed": 0}, "'model' must be an object"),
        ({"model": {}, "suite": {}, "seed": "zero"}, "'seed' must be an integer"),
        ({"model": {}, "seed": 0}, "'suite'"),
    ],
)
def test_manifest_of_the_wrong_shape(tmp_path, manifest, needle):
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ResultFileError, match=needle) as info:
        ResultStore(tmp_path).manifest()
    assert str(tmp_path / "manifest.json") in str(info.value)


def test_manifest_that_is_not_json(tmp_path):
    (tmp_path / "manifest.json").write_text("{nope")
    with pytest.raises(ResultFileError, match="not valid JSON"):
        ResultStore(tmp_path).manifest()


@pytest.mark.parametrize(
    "line, needle",
    [
        ({"case": "a", "metric": "m", "value": "0.5"}, "value must be a number or null"),
        ({"case": "a", "metric": "m", "value": True}, "value must be a number or null"),
        ({"case": 1, "metric": "m", "value": 0.5}, "case must be text"),
        ({"case": "a", "metric": "m", "value": 0.5, "details": []}, "details must be an object"),
        ({"case": "a", "metric": "m"}, "needs case, metric and value"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_score_line_of_the_wrong_shape_names_file_and_line(tmp_path, line, needle):
    good = json.dumps({"case": "a", "metric": "m", "value": 0.5})
    (tmp_path / "scores.jsonl").write_text(good + "\n" + json.dumps(line) + "\n")
    with pytest.raises(ResultFileError, match=needle) as info:
        ResultStore(tmp_path).records()
    assert f"{tmp_path / 'scores.jsonl'}:2" in str(info.value)


def test_torn_line_and_nan_are_still_read(tmp_path):
    (tmp_path / "scores.jsonl").write_text(
        '{"case": "a", "metric": "m", "value": NaN}\n{"case": "b", "me'
    )
    records = ResultStore(tmp_path).records()
    assert len(records) == 1 and np.isnan(
        records[0].value
    )  # NaN is a number: the leaderboard decides


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_output_files_respect_the_umask(tmp_path, umask_022):
    write_json_atomic(tmp_path / "manifest.json", MANIFEST)
    write_video(tmp_path / "v.mp4", np.zeros((2, 16, 16, 3), np.uint8), 8)
    for name in ("manifest.json", "v.mp4"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    os.umask(0o077)
    write_json_atomic(tmp_path / "private.json", {})
    assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600


def test_stale_temp_videos_are_removed_fresh_ones_kept(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    stale = [
        videos / ".case_001.generating.abc123.mp4.tmp",
        videos / ".case_002.generating.mp4",
        videos / ".manifest.json.x.tmp",
    ]
    fresh = videos / ".case_003.generating.def456.mp4.tmp"  # a live run's file
    kept = videos / "case_001.mp4"
    for path in [*stale, fresh, kept]:
        path.write_bytes(b"")
    old = time.time() - 3600
    for path in [*stale, kept]:
        os.utime(path, (old, old))
    removed = ResultStore(tmp_path).remove_leftovers()
    assert sorted(removed) == sorted(stale)
    assert fresh.exists() and kept.exists()
