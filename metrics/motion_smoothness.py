"""`motion_smoothness`: OpenS2V-Eval's MotionSmoothness (`eval/get_motion_smoothness.py`, 210eb08).

Q-Align rates the quality of one 3-frame window per frame; a jump of more than 0.025 between
consecutive windows flags both frames of the step; value = 1 - flagged / T.

- Windows (`load_video_sliding_window(path, 3)`): frame t gives [t-1, t, t+1] clipped to the
  video; t = 0 gives [f0, f0, f0] (the "beginning frames" branch) and t = T-1 gives
  [f_{T-2}, f_{T-2}, f_{T-1}] (the index list is padded at the front).
- Frames (`QAlignVideoScorer.forward`): every frame `expand2square` on the CLIP mean colour
  (122, 116, 104) (`int(x * 255)` of the processor's mean), then Q-Align's `CLIPImageProcessor`
  (`preprocessor_config.json`: short side 448 bicubic, centre crop 448, CLIP mean / std): on a
  square image that is a 448 x 448 PIL bicubic resize. `backbones.hf_clip_preprocess` is that
  processor bit for bit.
- Scores: the label logits of excellent / good / fair / poor / bad at the last position of
  "USER: How would you rate the quality of this video?\\n<|image|>\\nASSISTANT: The quality of
  the video is", softmax, dotted with [1, .75, .5, .25, 0], in the model's dtype (fp16 on a GPU
  as the official; fp32 on a CPU). 64 windows a batch as the official.
- Rule (`get_artifacts_frames`): `np.abs(np.diff(scores)) > 0.025`, both frames of each such
  step, unique.

Speed: each frame's vision tower + abstractor output (65 tokens) is computed ONCE and shared by
the three windows that contain it (the official encodes every window's 3 frames: 3T frames).
The per-window scores are stored in the details: in fp16 a step within about 1e-3 of 0.025 can
flip between GPUs, and users must be able to see it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kaleido_bench.core.cases import Case
from kaleido_bench.core.video import DecodedVideo
from kaleido_bench.metrics import backbones
from kaleido_bench.metrics.base import Metric, MetricResult, Needs, register_metric
from kaleido_bench.metrics.context import ScoringContext
from kaleido_bench.metrics.qalign import (
    ONE_ALIGN,
    QAlignModel,
    checkpoint_files,
    frame_tokens,
    load_qalign,
    quality_scores,
    window_label_logits,
)
from kaleido_bench.metrics.weights import resolve

THRESHOLD = 0.025
WINDOW = 3
WINDOW_BATCH = 64  # the official batch_size
IMAGE_SIZE = 448
CLIP_MEAN_COLOUR = tuple(int(x * 255) for x in backbones.OPENAI_CLIP_MEAN)  # (122, 116, 104)


def sliding_windows(num_frames: int, window: int = WINDOW) -> list[tuple[int, ...]]:
    """Frame indices of each window, exactly as `load_video_sliding_window` builds them."""
    left = (window - 1) // 2
    right = window - 1 - left
    windows = []
    for current in range(num_frames):
        start, end = max(0, current - left), min(num_frames, current + right + 1)
        indices = list(range(start, end))
        while len(indices) < window:
            if start == 0:
                indices.append(indices[-1])
            else:
                indices.insert(0, indices[0])
        windows.append((indices[0],) * window if current < left else tuple(indices))
    return windows


def expand2square(frame: np.ndarray, colour: tuple[int, int, int] = CLIP_MEAN_COLOUR) -> np.ndarray:
    """Q-Align's `expand2square`: pad the short side with `colour`, the image centred at `(long - short) // 2`."""
    height, width = frame.shape[:2]
    if height == width:
        return frame
    side = max(height, width)
    square = np.empty((side, side, 3), dtype=frame.dtype)
    square[:] = np.asarray(colour, dtype=frame.dtype)
    top, left = (side - height) // 2, (side - width) // 2
    square[top : top + height, left : left + width] = frame
    return square


def qalign_pixels(frames: np.ndarray) -> Any:
    """(T, 3, 448, 448) float32: expand2square then Q-Align's CLIP processor."""
    squares = np.stack([expand2square(frame) for frame in frames])
    return backbones.hf_clip_preprocess(squares, size=IMAGE_SIZE, crop=IMAGE_SIZE)


def artifact_frames(scores: np.ndarray | list[float], threshold: float = THRESHOLD) -> np.ndarray:
    """`get_artifacts_frames`: both frames of every step whose |score difference| exceeds `threshold`."""
    steps = np.where(np.abs(np.diff(scores)) > threshold)[0]
    return np.unique(np.concatenate([steps, steps + 1]))


def smoothness_value(scores: np.ndarray | list[float], threshold: float = THRESHOLD) -> float:
    """`1 - len(artifacts_frames) / len(scores)`."""
    return 1 - len(artifact_frames(scores, threshold)) / len(scores)


def window_scores(
    model: QAlignModel, frames: np.ndarray, frame_batch: int = 16, window_batch: int = WINDOW_BATCH
) -> Any:
    """Q-Align's score of every window of `frames`, each frame encoded once."""
    tokens = frame_tokens(model, qalign_pixels(frames), batch_size=frame_batch)
    logits = window_label_logits(
        model, tokens, sliding_windows(len(frames)), batch_size=window_batch
    )
    return logits, quality_scores(logits)


@register_metric("motion_smoothness")
class MotionSmoothness(Metric):
    """OpenS2V MotionSmoothness: share of frames without a Q-Align quality jump (higher = smoother).

    Options: `qalign_path` (the one-align folder), `dtype` ("float16" / "float32"; default fp16
    on a GPU as the official, fp32 on a CPU), `attn_implementation` of the vision tower.
    """

    description = (
        "OpenS2V MotionSmoothness: 1 - frames at a Q-Align quality jump > 0.025 / frames (0-1)"
    )
    weights = (ONE_ALIGN,)
    option_names = frozenset({"qalign_path", "dtype", "attn_implementation"})
    path_options = {ONE_ALIGN.filename: "qalign_path"}
    # mPLUG-Owl2 (8.2 B parameters, 16.4 GB in fp16), every frame
    needs = Needs(frames="all", group="qalign-one-align", model_bytes=16_400_000_000)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.model: QAlignModel | None = None

    def setup(self, context: ScoringContext) -> None:
        folder = resolve(ONE_ALIGN, self.options.get("qalign_path"), metric=self.name)
        device = str(backbones.torch_device(context.device))
        files = [folder / "config.json", *checkpoint_files(folder)]
        dtype, attention = self.options.get("dtype"), self.options.get("attn_implementation")
        key = ("qalign", *(backbones.file_identity(f) for f in files), device, dtype, attention)
        self.model = context.models.get(key, lambda: load_qalign(folder, device, dtype, attention))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "threshold": THRESHOLD, "window": WINDOW}

    def score(self, video: DecodedVideo, case: Case, context: ScoringContext) -> MetricResult:
        if len(video.frames) == 0:
            return MetricResult.absent("video has no frames")
        frame_batch = 64 if self.model.device.type == "cuda" else 16
        _, scores = window_scores(self.model, video.frames, frame_batch=frame_batch)
        scores = scores.float().cpu().numpy().astype(np.float64)
        flagged = artifact_frames(scores)
        return MetricResult(
            1 - len(flagged) / len(scores),
            {
                "frames": len(scores),
                "window_scores": [float(s) for s in scores],
                "flagged_frames": [int(i) for i in flagged],
                "dtype": str(self.model.dtype).removeprefix("torch."),
            },
        )
