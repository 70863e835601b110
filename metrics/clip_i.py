"""`clip_i` / `clip_i_l14`: CLIP image similarity of the video's frames to each subject reference.

The CLIP-I of DreamBooth (Ruiz et al. 2023, sec. 4.1: mean cosine similarity of CLIP image
embeddings of generated and real subject images), applied per frame as S2V papers do.
No published S2V script fixes the details, so this file does:

- Frames: the 32 frames at OpenS2V's `np.linspace(0, T-1, 32, dtype=int)` (the frames every
  OpenS2V image metric uses; duplicates kept for short videos).
- Cropping: none beyond the model's stock preprocessing. Frames and references go WHOLE through
  the same transform (open_clip's OpenAI one: short side 224 bicubic, centre crop 224, CLIP
  mean/std), so a subject off-centre in a wide frame can be cropped away (480x832 keeps the
  central 480x480); no detector picks the subject. References are read with PIL
  `convert("RGB")` (alpha dropped, as OpenS2V does; cut-outs on transparent backgrounds show
  what is under the alpha).
- Pairing: every sampled frame with every reference: s(f, r) = cos(E(f), E(r)), raw cosine in
  [-1, 1] (no clipping, DreamBooth's convention). Per reference: mean over the 32 frames
  (`details["references"][k]["similarity"]`, with its min and max over frames).
- Subjects vs backgrounds: references with role face, human or object are SUBJECTS; the value is
  the mean over subject references of their per-reference similarity (each reference weighs the
  same whatever its role). Background references (role background, e.g. OpenS2V's "Park") are
  scored the same way but reported apart (`details["background"]`) and left out of the value:
  a scene photograph is not a subject to preserve. A case without subject references is ABSENT.
- Models: `clip_i` = OpenAI CLIP ViT-B/32, `clip_i_l14` = OpenAI CLIP ViT-L/14, from open_clip's
  files; two registered names so each declares its own weight file. The image tower runs in
  transformers' CLIP implementation (`clip_vision.py`), so `clip_i_l14` and `aesthetics` share
  one ViT-L/14 and one forward pass when their files hold the same weights, as the real ones do.

Reference embeddings are cached per run by file content (`embedding_cache.py`); frame
embeddings are cached on the video per backbone and pixel content, so `clip_t` with the same
model reuses them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from kaleido_bench.core.cases import Case, ReferenceImage, Role
from kaleido_bench.core.video import DecodedVideo
from kaleido_bench.metrics import backbones
from kaleido_bench.metrics.backbones import Backbone
from kaleido_bench.metrics.base import Metric, MetricResult, Needs, register_metric
from kaleido_bench.metrics.context import ScoringContext
from kaleido_bench.metrics.embedding_cache import EmbeddingCache
from kaleido_bench.metrics.weights import WeightFile, resolve

SUBJECT_ROLES = (Role.FACE, Role.HUMAN, Role.OBJECT)
NUM_FRAMES = 32


def frame_pixels(video: DecodedVideo, backbone: Backbone, num_frames: int = NUM_FRAMES) -> Any:
    """The `num_frames` linspace frames through `backbone.preprocess`, cached on the video per preprocessing."""
    key = ("pixels", backbone.preprocess_id, "linspace", num_frames)
    return video.cached(key, lambda: backbone.preprocess(video.linspace(num_frames)))


def frame_embeddings(
    video: DecodedVideo, backbone: Backbone, num_frames: int = NUM_FRAMES, batch_size: int = 32
) -> Any:
    """(num_frames, D) float32 CPU embeddings of the linspace frames, computed once per video for
    each backbone object and exact pixel content: two metrics whose preprocessing gives the same
    pixels (aesthetics and clip_i_l14 on 480x832 frames) share one forward pass."""
    pixels = frame_pixels(video, backbone, num_frames)
    digest = video.cached(
        ("pixels-sha256", backbone.preprocess_id, "linspace", num_frames), lambda: _sha256(pixels)
    )
    key = ("embeddings", backbone.id, str(backbone.device), str(backbone.dtype), batch_size, digest)
    return video.cached(key, lambda: backbone.embed_pixels(pixels, batch_size).float().cpu())


def _sha256(tensor: Any) -> str:
    import hashlib

    return hashlib.sha256(tensor.contiguous().numpy().data).hexdigest()


def reference_embeddings(
    backbone: Backbone, references: tuple[ReferenceImage, ...], cache: EmbeddingCache
) -> Any:
    """(R, D) float32 CPU embeddings of the reference files, each file embedded once per run."""
    import torch

    rows = cache.embeddings(
        [ref.path for ref in references],
        f"{backbone.id}|{backbone.dtype}",
        backbone.preprocess_id,
        lambda paths: backbone.embed_images([backbones.load_rgb(p) for p in paths]),
    )
    return torch.stack(rows)


def cosine_matrix(frames: Any, references: Any) -> Any:
    """cos(frame_i, ref_k) for every pair: (F, R)."""
    import torch.nn.functional as F

    return F.normalize(frames.float(), dim=-1) @ F.normalize(references.float(), dim=-1).T


class SubjectSimilarity(Metric):
    """Frames vs references with one image backbone (base of clip_i and dino_i; not registered)."""

    @property
    def weight(self) -> WeightFile:
        """The one backbone file, the first (only) entry of `weights`."""
        return self.weights[0]

    backbone_name: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.backbone: Backbone | None = None

    option_names = frozenset({"model_path", "num_frames", "precision", "model_overrides"})

    def load_backbone(
        self, context: ScoringContext, path
    ) -> Backbone:  # pragma: no cover - abstract
        raise NotImplementedError

    def explicit_path(self, weight: WeightFile) -> Any:
        return self.options.get("model_path")

    def setup(self, context: ScoringContext) -> None:
        path = resolve(self.weight, self.options.get("model_path"), metric=self.name)
        self.backbone = self.load_backbone(context, path)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "backbone": self.backbone_name, "frames": self.num_frames}

    @property
    def num_frames(self) -> int:
        return int(self.options.get("num_frames", NUM_FRAMES))

    def score(self, video: DecodedVideo, case: Case, context: ScoringContext) -> MetricResult:
        subjects = case.references_with_role(*SUBJECT_ROLES)
        background = case.references_with_role(Role.BACKGROUND)
        if not subjects:
            return MetricResult.absent("case has no subject reference (face, human or object)")
        backbone = self.backbone
        frames = frame_embeddings(
            video, backbone, self.num_frames, int(self.options.get("batch_size", 32))
        )
        refs = reference_embeddings(backbone, subjects + background, context.cache)
        sims = cosine_matrix(frames, refs)  # (F, R)
        rows = [_reference_row(ref, sims[:, k]) for k, ref in enumerate(subjects + background)]
        subject_rows, background_rows = rows[: len(subjects)], rows[len(subjects) :]
        value = sum(row["similarity"] for row in subject_rows) / len(subject_rows)
        details: dict[str, Any] = {
            "references": subject_rows,
            "frames": int(frames.shape[0]),
            "frame_indices": [int(i) for i in video.linspace_indices(self.num_frames)],
        }
        if background_rows:
            details["background"] = background_rows
        return MetricResult(value, details)


def _reference_row(ref: ReferenceImage, sims: Any) -> dict[str, Any]:
    return {
        "image": ref.relpath,
        "role": ref.role.value,
        "label": ref.label,
        "similarity": float(sims.mean()),
        "min": float(sims.min()),
        "max": float(sims.max()),
    }


class OpenClipSimilarity(SubjectSimilarity):
    """A `SubjectSimilarity` on the image tower of an OpenAI CLIP file in open_clip's format.

    The tower runs in transformers' implementation, shared with any metric whose file holds the
    same weights (`clip_vision.py`); preprocessing is open_clip's.
    """

    model_name: ClassVar[str] = ""

    def load_backbone(self, context: ScoringContext, path) -> Backbone:
        from kaleido_bench.metrics.clip_vision import load_open_clip_image_tower

        return load_open_clip_image_tower(
            context,
            self.model_name,
            path,
            precision=self.options.get("precision", "fp32"),
            model_overrides=self.options.get("model_overrides"),
        )


@register_metric("clip_i")
class ClipI(OpenClipSimilarity):
    """CLIP-I with OpenAI CLIP ViT-B/32: mean cosine of frame and subject-reference embeddings."""

    description = (
        "CLIP-I (OpenAI CLIP ViT-B/32): mean cosine of 32 frames vs each subject reference"
    )
    weights = (backbones.OPENCLIP_VIT_B32_OPENAI,)
    needs = Needs(frames="sampled", group="clip-vit-b32", model_bytes=350_000_000)
    model_name = "ViT-B-32"
    backbone_name = (
        "OpenAI CLIP ViT-B/32, open_clip file; image tower run by transformers (clip_vision.py)"
    )


@register_metric("clip_i_l14")
class ClipIL14(OpenClipSimilarity):
    """CLIP-I with OpenAI CLIP ViT-L/14."""

    description = (
        "CLIP-I (OpenAI CLIP ViT-L/14): mean cosine of 32 frames vs each subject reference"
    )
    weights = (backbones.OPENCLIP_VIT_L14_OPENAI,)
    needs = Needs(frames="sampled", group="clip-vit-l14", model_bytes=1_220_000_000)
    model_name = "ViT-L-14"
    backbone_name = (
        "OpenAI CLIP ViT-L/14, open_clip file; image tower run by transformers (clip_vision.py)"
    )
