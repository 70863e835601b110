"""`motion_amplitude`: OpenS2V-Eval's MotionAmplitude (`eval/get_motion_amplitude.py`, `motion_fb`).

Farneback optical flow between consecutive frames (every frame), each flow map shrunk to
16 x int(h * 16 / w) with INTER_AREA, score = |mean over maps, pixels and both channels|, in
float32 as numpy reduces it there. The official script feeds RGB frames to
`cv2.COLOR_BGR2GRAY`; we reproduce that quirk (RGB2GRAY would be about 6e-4 off).
"""

from __future__ import annotations

import numpy as np

from kaleido_bench.core.cases import Case
from kaleido_bench.core.video import DecodedVideo
from kaleido_bench.metrics.base import Metric, MetricResult, Needs, register_metric
from kaleido_bench.metrics.context import SERIAL, FramePool, ScoringContext

FARNEBACK = dict(
    pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0
)
DOWNSCALE_WIDTH = 16


def grey_frames_opens2v(video: DecodedVideo, pool: FramePool = SERIAL) -> np.ndarray:
    """Every frame through `COLOR_BGR2GRAY` although it is RGB (the official quirk), cached."""
    import cv2

    return video.cached(
        "grey_bgr2gray_quirk",
        lambda: np.stack(pool.map(lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), video.frames)),
    )


def downscaled_flow(pair: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Farneback flow from the first grey frame to the second, shrunk with INTER_AREA."""
    import cv2

    previous, current = pair
    flow = cv2.calcOpticalFlowFarneback(previous, current, None, **FARNEBACK)
    height, width = flow.shape[:2]
    size = (DOWNSCALE_WIDTH, int(height * (DOWNSCALE_WIDTH / width)))
    return cv2.resize(flow, size, interpolation=cv2.INTER_AREA)


def farneback_amplitude(grey: np.ndarray, pool: FramePool = SERIAL) -> float:
    """|mean| of the downscaled Farneback flow maps between consecutive grey frames.

    The pairs' flows are computed in parallel (`pool.map`), then reduced in frame order exactly
    as the official script reduces its list of maps.
    """
    if len(grey) < 2:
        raise ValueError("motion amplitude needs at least 2 frames")
    maps = pool.map(downscaled_flow, zip(grey[:-1], grey[1:]))
    return abs(float(np.mean(np.mean(np.array(maps), axis=0))))


@register_metric("motion_amplitude")
class MotionAmplitude(Metric):
    """How much the video moves (OpenS2V MotionAmplitude, exact)."""

    description = (
        "OpenS2V MotionAmplitude: |mean Farneback flow| on every frame (higher = more motion)"
    )
    needs = Needs(frames="all", resource="cpu")

    def score(self, video: DecodedVideo, case: Case, context: ScoringContext) -> MetricResult:
        grey = grey_frames_opens2v(video, context.frames)
        if len(grey) < 2:
            return MetricResult.absent("video has a single frame")
        return MetricResult(farneback_amplitude(grey), {"frames": int(len(grey))})
