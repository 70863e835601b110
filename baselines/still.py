"""`still`: the first reference image held for the whole clip, the zero-motion baseline.

Each frame is the first reference fitted into the frame keeping its aspect ratio and padded
white, exactly as Kaleido prepares its reference images (SPEC section 1: PIL LANCZOS, sizes
truncated with int(), white padding, left/top get delta // 2). It scores the subject metrics a
model gets for copying its input, with no motion at all. The seed changes nothing.

This module also holds what the synthetic baselines (`still`, `collage`) share: their
frame-size options and the error for a bad model option.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from kaleido_bench.baselines.base import ModelAdapter, ModelCapabilities, register_model
from kaleido_bench.baselines.cutout import load_reference
from kaleido_bench.baselines.options import float_option, int_option, refuse_unknown
from kaleido_bench.core.cases import Case
from kaleido_bench.core.errors import ModelOptionError
from kaleido_bench.core.video import write_video


@dataclass(frozen=True)
class FrameOptions:
    """Size, length and rate of a synthetic baseline's videos.

    The defaults (240x416, 33 frames at 16 fps) are a quarter of Wan's 480x832 at the same aspect,
    so a suite runs in seconds on a laptop CPU; pass `-o height=480 -o width=832 -o num_frames=81`
    for Kaleido's release size.
    """

    height: int = 240
    width: int = 416
    num_frames: int = 33
    fps: float = 16.0

    @classmethod
    def parse(
        cls, model: str, options: dict[str, Any], extra: tuple[str, ...] = ()
    ) -> FrameOptions:
        """Read the frame options from `options` (strings from the command line or numbers).

        Keys other than these four and `extra` are refused, so a typo cannot silently run the
        defaults under a new configuration hash.
        """
        refuse_unknown(model, options, ("height", "width", "num_frames", "fps", *extra))
        default = cls()
        height = int_option(model, "height", options.get("height", default.height))
        width = int_option(model, "width", options.get("width", default.width))
        num_frames = int_option(model, "num_frames", options.get("num_frames", default.num_frames))
        fps = float_option(model, "fps", options.get("fps", default.fps))
        for key, value in (("height", height), ("width", width)):
            if value < 2 or value % 2:
                raise ModelOptionError(
                    f"model {model!r}: {key} must be an even number >= 2 (H.264), got {value}"
                )
        if num_frames < 1:
            raise ModelOptionError(f"model {model!r}: num_frames must be >= 1, got {num_frames}")
        if not fps > 0:
            raise ModelOptionError(f"model {model!r}: fps must be > 0, got {fps}")
        return cls(height, width, num_frames, fps)

    def capabilities(self, max_references: int | None = None) -> ModelCapabilities:
        return ModelCapabilities(max_references, self.height, self.width, self.num_frames, self.fps)


class SyntheticVideoAdapter(ModelAdapter):
    """Base of the baselines that draw their frames from the references (no weights).

    They take any number of references; `-o max_references=N` makes one stand in for a model
    that accepts at most N (the runner then refuses larger cases, as it would for that model).
    """

    licence = "Apache-2.0 (this project's code)"
    weights_source = "none (drawn from the references)"
    parameters = "none (no network)"
    default_capabilities = FrameOptions().capabilities(max_references=None)

    def __init__(self, **options: Any) -> None:
        model = self.name or type(self).__name__
        self.frame = FrameOptions.parse(model, options, extra=("max_references",))
        limit = options.get("max_references")
        self.max_references = None if limit is None else int_option(model, "max_references", limit)
        if self.max_references is not None and self.max_references < 0:
            raise ModelOptionError(
                f"model {model!r}: max_references must be >= 0, got {self.max_references}"
            )
        # parsed values, not the raw strings: `-o height=240` and the default make the same run
        parsed = asdict(self.frame)
        if self.max_references is not None:  # only when given, so default runs keep their folder
            parsed["max_references"] = self.max_references
        super().__init__(**parsed)

    @property
    def capabilities(self) -> ModelCapabilities:
        # any number of references unless -o max_references (`still` shows the first)
        return self.frame.capabilities(max_references=self.max_references)


def fit_pad_white(image: Image.Image, height: int, width: int) -> np.ndarray:
    """Kaleido's reference preprocessing: fit inside height x width (LANCZOS), pad white, centred."""
    image = image.convert("RGB")
    scale = min(width / image.width, height / image.height)
    new_w = max(1, min(width, int(image.width * scale)))
    new_h = max(1, min(height, int(image.height * scale)))
    resized = image.resize((new_w, new_h), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    canvas.paste(resized, ((width - new_w) // 2, (height - new_h) // 2))
    return np.asarray(canvas)


@register_model("still")
class StillAdapter(SyntheticVideoAdapter):
    description = "the first reference image, fitted and padded white, on every frame (no motion)"
    label = "non-learned"

    def render(self, case: Case) -> np.ndarray:
        """(T, H, W, 3) uint8 frames; a case without references gives white frames."""
        f = self.frame
        if case.references:
            frame = fit_pad_white(load_reference(case.references[0]), f.height, f.width)
        else:
            frame = np.full((f.height, f.width, 3), 255, np.uint8)
        return np.repeat(frame[None], f.num_frames, axis=0)

    def generate(self, case: Case, seed: int, out_path: Path) -> None:
        write_video(out_path, self.render(case), self.frame.fps)
