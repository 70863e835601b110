"""`subject_consistency` and `background_consistency`: VBench's two temporal-consistency dimensions.

Following Vchitect/VBench `vbench/subject_consistency.py`, `background_consistency.py` and the
transforms in `vbench/utils.py`:

- Frames: EVERY frame, as float32 0-255 (VBench: `torch.Tensor(decord frames).permute(0, 3, 1, 2)`,
  a (T, C, H, W) view of (T, H, W, C) memory; we build the same layout). Resizes run on the
  floats, nothing is re-quantised.
- subject_consistency: DINO ViT-B/16 (facebookresearch/dino `dino_vitb16`), CLS token after the
  final norm, fp32. `Resize(224)` of the SHORT side, BILINEAR, `antialias=False`, no crop (480x832
  becomes 224x388; DINO interpolates its position embedding, see `backbones.py`), `/255`,
  ImageNet mean/std.
- background_consistency: OpenAI CLIP ViT-B/32 `encode_image` (open_clip with the OpenAI weights
  = VBench's `clip.load("ViT-B/32")`, see `backbones.py`); fp16 on CUDA, fp32 on CPU, as
  `clip.load` gives. `Resize(224)` BICUBIC `antialias=False`, `CenterCrop(224)`, `/255`, CLIP
  mean/std.
- Per video, with f_t the L2-normalised features: for t >= 1 the term
  (max(0, cos(f_{t-1}, f_t)) + max(0, cos(f_0, f_t))) / 2, each cosine taken to a Python float
  as VBench's `.item()` does, summed in order; video value = sum / (T - 1).
- Over many videos the dimension is FRAME-weighted: sum of all terms / number of terms
  (VBench's `sim / cnt`), not the mean of the video values. `aggregate` does that from
  `details["sum"]` and `details["count"]`.

Differences from VBench, all numerical noise on the order of fp32 rounding: VBench feeds DINO
one frame at a time and CLIP the whole video at once; we feed `batch_size` frames (default 32;
`batch_size=1` reproduces VBench's DINO calls). Preprocessing is chunked the same way; the
resize works plane by plane, so chunking changes no pixel (tested). A one-frame video has no
term: it is ABSENT (VBench divides by zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from kaleido_bench.core.cases import Case
from kaleido_bench.core.video import DecodedVideo
from kaleido_bench.metrics import backbones
from kaleido_bench.metrics.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    Backbone,
)
from kaleido_bench.metrics.base import Metric, MetricResult, Needs, register_metric
from kaleido_bench.metrics.context import ScoringContext
from kaleido_bench.metrics.weights import WeightFile, resolve

VBENCH_DINO_PREPROCESS_ID = "vbench-dino:float255-short224-bilinear-noaa-imagenet-norm"
VBENCH_CLIP_PREPROCESS_ID = "vbench-clip:float255-short224-bicubic-noaa-crop224-openai-norm"


def _divide_255(x: Any) -> Any:
    return x.float().div(255.0)


def vbench_dino_transform(size: int = 224) -> Any:
    """VBench's `dino_transform(224)` for float (T, C, H, W) tensors."""
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.Resize(size=size, antialias=False),
            transforms.Lambda(_divide_255),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def vbench_clip_transform(size: int = 224) -> Any:
    """VBench's `clip_transform(224)` for float (T, C, H, W) tensors."""
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.Resize(
                size, interpolation=transforms.InterpolationMode.BICUBIC, antialias=False
            ),
            transforms.CenterCrop(size),
            transforms.Lambda(_divide_255),
            transforms.Normalize(OPENAI_CLIP_MEAN, OPENAI_CLIP_STD),
        ]
    )


def float_frames(frames: np.ndarray) -> Any:
    """uint8 (T, H, W, 3) -> float32 0-255 (T, 3, H, W) with VBench's memory layout (a permuted view)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(frames)).float().permute(0, 3, 1, 2)


def vbench_features(
    frames: np.ndarray, backbone: Backbone, transform: Any, batch_size: int = 32
) -> Any:
    """Features of every frame in the model's dtype, on its device (chunks of `batch_size` frames)."""
    import torch

    outputs = []
    with torch.inference_mode():
        for start in range(0, len(frames), batch_size):
            pixels = transform(float_frames(frames[start : start + batch_size]))
            outputs.append(backbone.forward(pixels.to(backbone.device, backbone.dtype)))
    return torch.cat(outputs)


def consistency_terms(features: Any) -> list[float]:
    """VBench's per-frame terms (max(0, cos(f_{t-1}, f_t)) + max(0, cos(f_0, f_t))) / 2, t >= 1."""
    import torch.nn.functional as F

    features = F.normalize(features, dim=-1, p=2)
    terms = []
    for t in range(1, len(features)):
        previous = max(0.0, F.cosine_similarity(features[t - 1 : t], features[t : t + 1]).item())
        first = max(0.0, F.cosine_similarity(features[0:1], features[t : t + 1]).item())
        terms.append((previous + first) / 2)
    return terms


def sequential_sum(values: Sequence[float]) -> float:
    """Left-to-right float addition as VBench's `+=` loops (Python 3.12's `sum` compensates)."""
    total = 0.0
    for value in values:
        total += value
    return total


def frame_weighted_mean(results: Sequence[MetricResult]) -> float | None:
    """VBench's dimension score: all terms of all videos summed, divided by their number."""
    total, count = 0.0, 0
    for result in results:
        if result.value is None:
            continue
        total += float(result.details["sum"])
        count += int(result.details["count"])
    return total / count if count else None


class VBenchConsistency(Metric):
    """Shared body of the two dimensions; subclasses pick the backbone and the transform."""

    @property
    def weight(self) -> WeightFile:
        """The one backbone file, the first (only) entry of `weights`."""
        return self.weights[0]

    preprocess_id: ClassVar[str]
    option_names = frozenset({"model_path", "model_overrides"})

    def explicit_path(self, weight: WeightFile) -> Any:
        return self.options.get("model_path")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.backbone: Backbone | None = None

    def load_backbone(
        self, context: ScoringContext, path
    ) -> Backbone:  # pragma: no cover - abstract
        raise NotImplementedError

    def transform(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def setup(self, context: ScoringContext) -> None:
        path = resolve(self.weight, self.options.get("model_path"), metric=self.name)
        self.backbone = self.load_backbone(context, path)
        self._transform = self.transform()

    def config(self) -> dict[str, Any]:
        return {**super().config(), "preprocess": self.preprocess_id, "frames": "all"}

    def score(self, video: DecodedVideo, case: Case, context: ScoringContext) -> MetricResult:
        if video.num_frames < 2:
            return MetricResult.absent("video has a single frame", frames=video.num_frames)
        backbone = self.backbone
        batch_size = int(self.options.get("batch_size", 32))
        features = video.cached(
            (
                "vbench-features",
                backbone.id,
                str(backbone.dtype),
                str(backbone.device),
                self.preprocess_id,
            ),
            lambda: vbench_features(video.frames, backbone, self._transform, batch_size),
        )
        terms = consistency_terms(features)
        total = sequential_sum(terms)
        return MetricResult(
            total / len(terms), {"sum": total, "count": len(terms), "frames": video.num_frames}
        )

    @classmethod
    def aggregate(cls, results: Sequence[MetricResult]) -> float | None:
        """Frame-weighted: sum of every video's terms / their total count (VBench `sim / cnt`)."""
        return frame_weighted_mean(results)


@register_metric("subject_consistency")
class SubjectConsistency(VBenchConsistency):
    """VBench subject_consistency: DINO ViT-B/16 CLS features of every frame vs previous and first."""

    description = "VBench subject_consistency: DINO ViT-B/16, every frame vs previous and first (frame-weighted)"
    weights = (backbones.DINO_VITB16,)
    preprocess_id = VBENCH_DINO_PREPROCESS_ID
    needs = Needs(frames="all", group="dino-v1-b16", model_bytes=350_000_000)

    def load_backbone(self, context: ScoringContext, path) -> Backbone:
        return backbones.load_dino_v1(
            context, path, precision="fp32", model_overrides=self.options.get("model_overrides")
        )

    def transform(self) -> Any:
        return vbench_dino_transform()


@register_metric("background_consistency")
class BackgroundConsistency(VBenchConsistency):
    """VBench background_consistency: OpenAI CLIP ViT-B/32 features of every frame vs previous and first."""

    description = "VBench background_consistency: CLIP ViT-B/32, every frame vs previous and first (frame-weighted)"
    weights = (backbones.OPENCLIP_VIT_B32_OPENAI,)
    preprocess_id = VBENCH_CLIP_PREPROCESS_ID
    option_names = VBenchConsistency.option_names | {"precision"}
    needs = Needs(frames="all", group="clip-vit-b32", model_bytes=600_000_000)

    def precision(self, device: str) -> str:
        """fp16 on CUDA, fp32 elsewhere (what `clip.load` returns); `precision=` overrides."""
        chosen = self.options.get("precision", "auto")
        if chosen != "auto":
            return chosen
        return "fp16" if backbones.torch_device(device).type == "cuda" else "fp32"

    def load_backbone(self, context: ScoringContext, path) -> Backbone:
        return backbones.load_open_clip(
            context,
            "ViT-B-32",
            path,
            precision=self.precision(context.device),
            model_overrides=self.options.get("model_overrides"),
        )

    def transform(self) -> Any:
        return vbench_clip_transform()
