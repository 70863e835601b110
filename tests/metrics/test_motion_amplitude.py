"""MotionAmplitude parity with the official script's outputs on two real generated videos."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kaleido_bench.core.cases import Case
from kaleido_bench.core.video import DecodedVideo, decode_video
from kaleido_bench.metrics.motion_amplitude import MotionAmplitude, farneback_amplitude


@pytest.mark.parametrize("case_id", ["faceobj_14", "singleface_3"])
def test_matches_official_motion_fb_on_real_videos(ctx, shared_dir, case_id):
    official = json.loads(
        (shared_dir / "opens2v/reference_outputs/motion_amplitude.json").read_text()
    )
    video = decode_video(shared_dir / f"opens2v/videos/{case_id}.mp4")
    result = MotionAmplitude().score(video, Case(case_id, "", ()), ctx)
    assert result.value == pytest.approx(official[case_id]["motion_fb"], abs=1e-4)
    assert result.details["frames"] == 69


def test_amplitude_is_half_the_pixel_shift_per_frame():
    """A pure x-shift of s px/frame gives flow (s, 0): the mean over both channels is s/2."""
    rng = np.random.default_rng(0)
    base = (rng.random((64, 96)) * 255).astype(np.uint8)
    base = np.kron(
        base[::8, ::8], np.ones((8, 8), dtype=np.uint8)
    )  # smooth blocks Farneback can track
    still = np.stack([base] * 4)
    moving = np.stack([np.roll(base, shift, axis=1) for shift in range(0, 8, 2)])
    assert farneback_amplitude(still) < 1e-3
    assert farneback_amplitude(moving) == pytest.approx(1.0, abs=0.05)


def test_single_frame_video_is_absent(ctx):
    video = DecodedVideo(np.zeros((1, 16, 16, 3), np.uint8), 16.0)
    assert MotionAmplitude().score(video, Case("x", "", ()), ctx).value is None
