"""Inputs that used to give silently wrong numbers: each is now an error or a value with a recorded
warning. 16-bit references are scaled (not clipped to white), a truncated video is scored with a warning,
a null prompt and a still image named .mp4 are errors, and limits / metric lists that select nothing are refused."""

from __future__ import annotations

import json
import shutil

import av
import numpy as np
import pytest
from PIL import Image

from kaleido_bench.baselines.cutout import load_reference
from kaleido_bench.bench.runner import Runner, select_metrics
from kaleido_bench.bench.store import ResultStore
from kaleido_bench.bench.suites import load_suite, load_suite_file
from kaleido_bench.core.cases import ReferenceImage, Role
from kaleido_bench.core.errors import (
    ReferenceImageError,
    SuiteFileError,
    UnknownNameError,
    VideoError,
)
from kaleido_bench.core.images import rgb_image
from kaleido_bench.core.video import decode_video, write_video
from kaleido_bench.metrics.backbones import load_rgb


def _grey16(tmp_path):
    ramp = (np.arange(32 * 32, dtype=np.uint32).reshape(32, 32) * 64).astype(
        np.uint16
    )  # 0 .. 65472
    path = tmp_path / "grey16.png"
    Image.fromarray(ramp).save(path)
    return path, ramp


def test_16_bit_reference_is_scaled_not_clipped(tmp_path):
    path, ramp = _grey16(tmp_path)
    with Image.open(path) as image:
        assert image.mode.startswith("I")  # what Pillow gives a 16-bit greyscale PNG
        assert (
            np.asarray(image.convert("RGB")) == 255
        ).mean() > 0.9  # the old reading: nearly all white
    expected = np.repeat((ramp >> 8).astype(np.uint8)[..., None], 3, axis=2)
    assert np.array_equal(load_rgb(path), expected)  # metrics
    ref = ReferenceImage("grey16.png", path, Role.OBJECT)
    assert np.array_equal(np.asarray(load_reference(ref)), expected)  # models


def test_float_reference_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "float.tiff"
    Image.fromarray(np.ones((8, 8), np.float32)).save(path)
    with Image.open(path) as image, pytest.raises(ReferenceImageError, match="float.tiff"):
        rgb_image(image, path)


def test_8_bit_images_read_as_before(tmp_path):
    rgba = np.random.default_rng(0).integers(0, 256, (8, 8, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert np.array_equal(load_rgb(tmp_path / "a.png"), rgba[..., :3])


def _faststart_video(path, num_frames=30):
    """An mp4 with its index first (as web tools write them): cut short, the first frames still decode."""
    rng = np.random.default_rng(1)
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for _ in range(num_frames):
            frame = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def test_truncated_video_is_decoded_with_a_warning(tmp_path):
    whole = tmp_path / "whole.mp4"
    _faststart_video(whole)
    video = decode_video(whole)
    assert video.num_frames == video.declared_frames == 30 and video.warnings == ()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    video = decode_video(cut)
    assert 0 < video.num_frames < 30 and video.declared_frames == 30
    assert video.warnings == (
        f"decoded {video.num_frames} of the 30 frames the stream declares (truncated file?)",
    )


def test_runner_keeps_the_warning_in_every_record(tmp_path):
    suite = load_suite("mini").select(limit=1)
    store = ResultStore(tmp_path / "run")
    store.root.mkdir()
    videos = tmp_path / "run" / "videos"
    videos.mkdir()
    whole = tmp_path / "whole.mp4"
    _faststart_video(whole)
    (videos / f"{suite.cases[0].id}.mp4").write_bytes(
        whole.read_bytes()[: whole.stat().st_size // 2]
    )
    metrics, _ = select_metrics(["motion_amplitude"])
    summary = Runner(store, suite, metrics).run()
    (record,) = store.records()
    assert summary.failures == [] and record.value is not None
    assert "truncated file?" in record.details["video_warnings"][0]


@pytest.mark.parametrize("suffix, fmt", [(".png", "PNG"), (".jpg", "JPEG"), (".gif", "GIF")])
def test_still_image_named_mp4_is_not_a_video(tmp_path, suffix, fmt):
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / f"x{suffix}", format=fmt)
    shutil.copy(tmp_path / f"x{suffix}", tmp_path / "x.mp4")
    with pytest.raises(VideoError, match="still image"):
        decode_video(tmp_path / "x.mp4")


def test_two_frame_video_is_a_video(tmp_path):
    write_video(tmp_path / "v.mp4", np.zeros((2, 16, 16, 3), np.uint8), 8)
    assert decode_video(tmp_path / "v.mp4").num_frames == 2


@pytest.mark.parametrize("prompt", [None, 3, "", ["a"]])
def test_prompt_must_be_text(tmp_path, prompt):
    (tmp_path / "cat.png").write_bytes(b"")
    schema = {"cases": [{"id": "a", "prompt": prompt, "references": ["cat.png"]}]}
    (tmp_path / "s.json").write_text(json.dumps(schema))
    with pytest.raises(SuiteFileError, match="prompt must be non-empty text"):
        load_suite_file(tmp_path / "s.json")
    opens2v = {"a": {"img_paths": ["cat.png"], "prompt": prompt}}
    (tmp_path / "o.json").write_text(json.dumps(opens2v))
    with pytest.raises(SuiteFileError, match="prompt must be non-empty text"):
        load_suite_file(tmp_path / "o.json")


def test_selections_of_nothing_are_refused():
    with pytest.raises(ValueError, match="limit"):
        load_suite("mini").select(limit=-1)
    with pytest.raises(UnknownNameError, match="no metric"):
        select_metrics([])
