"""Quality filters of the data pipeline (SPEC.md section 1, "Data pipeline": size / IoU, CLIP
image-text similarity, person cut-outs without a visible face, dark / fragmented / blurry
cut-outs). Each filter is one function returning True when the input passes; its threshold
lives in `FilterConfig`, and the pipeline records the filter's `REASONS` entry when it fails."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from kaleido_bench.kaleido.data.models import resolve_model
from kaleido_bench.kaleido.data.records import Box

#: The reason each filter writes into the funnel when it rejects.
REASONS = {
    "box_size": "box too small",
    "overlap": "overlapping subjects",
    "clip": "cut-out does not match its label",
    "face": "person without a visible face",
    "dark": "too dark",
    "fragmented": "fragmented mask",
    "blurry": "blurry",
}

#: Labels treated as people, whose cut-outs must show a face.
PERSON_WORDS = frozenset(
    [
        "person",
        "man",
        "woman",
        "boy",
        "girl",
        "child",
        "kid",
        "baby",
        "people",
        "lady",
        "gentleman",
        "human",
        "player",
        "dancer",
    ]
)


@dataclass(frozen=True)
class FilterConfig:
    """Thresholds of every filter (defaults: common practice, tune on real data)."""

    min_box_area_fraction: float = 0.02  # box area / frame area
    max_subject_iou: float = 0.7  # two subjects overlapping more than this are both dropped
    min_clip_similarity: float = 0.2  # cosine of CLIP image and text embeddings
    min_mean_luminance: float = 40.0  # Rec. 601 luma of the subject's pixels, 0..255
    max_mask_components: int = 3  # connected parts of the mask (above min_component_fraction)
    min_component_fraction: float = 0.01  # parts smaller than this share of the mask are noise
    min_laplacian_variance: float = 50.0  # variance of the Laplacian of the grey subject crop
    clip_model: str = "openai/clip-vit-base-patch32"  # folder or HF repo id
    face_upsample: int = 1  # dlib HOG: upsample the image this many times before detecting


def box_size_ok(box: Box, frame_hw: tuple[int, int], min_area_fraction: float) -> bool:
    """The subject's box covers at least `min_area_fraction` of the frame."""
    return box.area / float(frame_hw[0] * frame_hw[1]) >= min_area_fraction


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    inter = Box(max(a.x0, b.x0), max(a.y0, b.y0), min(a.x1, b.x1), min(a.y1, b.y1))
    if inter.x1 <= inter.x0 or inter.y1 <= inter.y0:
        return 0.0
    union = a.area + b.area - inter.area
    return inter.area / union if union > 0 else 0.0


def overlapping_subjects(boxes: list[Box], max_iou: float) -> set[int]:
    """Indices of boxes overlapping another by more than `max_iou` (both of a pair are dropped:
    neither cut-out is clean)."""
    bad: set[int] = set()
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            if box_iou(boxes[i], boxes[j]) > max_iou:
                bad.update((i, j))
    return bad


def luminance(image: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an RGB uint8 image, float 0..255."""
    rgb = image.astype(np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def bright_enough(image: np.ndarray, mask: np.ndarray | None, min_mean_luminance: float) -> bool:
    """The subject's pixels (the mask; the whole image without one) are not too dark on average."""
    luma = luminance(image)
    pixels = luma[mask] if mask is not None and mask.any() else luma
    return float(pixels.mean()) >= min_mean_luminance


def mask_components(mask: np.ndarray, min_component_fraction: float) -> int:
    """Connected parts (8-connectivity) of a mask, not counting specks below the given share."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return 0
    sizes = np.bincount(labels.ravel())[1:]
    return int((sizes >= min_component_fraction * mask.sum()).sum())


def not_fragmented(mask: np.ndarray, max_components: int, min_component_fraction: float) -> bool:
    """The mask is one subject, not scattered pieces: at most `max_components` parts, and not empty."""
    parts = mask_components(mask, min_component_fraction)
    return 1 <= parts <= max_components


def laplacian_variance(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (Pech-Pacheco et al. 2000): low = few edges = blur."""
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def sharp_enough(image: np.ndarray, min_variance: float) -> bool:
    """The image is not blurry: variance of its Laplacian at least `min_variance`."""
    return laplacian_variance(image) >= min_variance


def is_person(label: str) -> bool:
    """Whether a subject label names a person (its last word, singular or plural)."""
    words = label.lower().replace(".", " ").split()
    return bool(words) and (words[-1] in PERSON_WORDS or words[-1].rstrip("s") in PERSON_WORDS)


class FaceDetector:
    """dlib's HOG frontal face detector (packaged inside dlib, no model file): the cheap check
    that a person cut-out shows a face."""

    def __init__(self, upsample: int = 1):
        import dlib

        self._detector = dlib.get_frontal_face_detector()
        self.upsample = upsample

    def count(self, image: np.ndarray) -> int:
        return len(self._detector(np.ascontiguousarray(image), self.upsample))


def face_visible(label: str, image: np.ndarray, faces: FaceDetector) -> bool:
    """A person's cut-out shows at least one face; cut-outs of other things always pass."""
    return not is_person(label) or faces.count(image) > 0


class ClipScorer:
    """CLIP image-text cosine similarity (transformers `CLIPModel`), loaded from a folder or a
    cached HF repo."""

    def __init__(self, model: str | Path, device: str = "cpu"):
        self.path, self.device = resolve_model(model, "CLIP filter"), device

    @cached_property
    def _model(self):
        from transformers import AutoProcessor, CLIPModel

        return CLIPModel.from_pretrained(self.path).to(
            self.device
        ).eval(), AutoProcessor.from_pretrained(self.path)

    def similarity(self, image: np.ndarray, text: str) -> float:
        import torch

        model, processor = self._model
        inputs = processor(text=[text], images=[image], return_tensors="pt", padding=True).to(
            self.device
        )
        with torch.no_grad():
            out = model(**inputs)
        img = torch.nn.functional.normalize(out.image_embeds, dim=-1)
        txt = torch.nn.functional.normalize(out.text_embeds, dim=-1)
        return float((img * txt).sum())


def clip_match(similarity: float, min_similarity: float) -> bool:
    """The cut-out matches its label: CLIP cosine similarity at least `min_similarity`."""
    return similarity >= min_similarity


def cutout_failures(
    label: str,
    image: np.ndarray,
    mask: np.ndarray | None,
    config: FilterConfig,
    clip: ClipScorer,
    faces: FaceDetector,
) -> list[str]:
    """The filter names (keys of `REASONS`) a cut-out or synthesised image fails, cheapest first.
    `mask` is None for synthesised images (no mask): the fragmented check is then skipped."""
    failed = []
    if not bright_enough(image, mask, config.min_mean_luminance):
        failed.append("dark")
    if mask is not None and not not_fragmented(
        mask, config.max_mask_components, config.min_component_fraction
    ):
        failed.append("fragmented")
    if not sharp_enough(image, config.min_laplacian_variance):
        failed.append("blurry")
    if not face_visible(label, image, faces):
        failed.append("face")
    if not clip_match(clip.similarity(image, label), config.min_clip_similarity):
        failed.append("clip")
    return failed
