"""`nexus_score` (OpenS2V-Eval's NexusScore, exact) and `nexus_score_all_frames` (ours, OpenS2V-Nexus issue 36).

Source: `eval/get_nexusscore.py` of OpenS2V-Nexus v1.1 (commit 8cb7427 = fork 210eb08), `main`
lines 283-380 and `run_image` lines 78-130. Per case:

- Prompts (`nexus_prompts`): the case's (reference image, class label) pairs in order, where a
  label "Man" or "Woman" is SKIPPED when the case id contains "face" and becomes "human" when it
  contains "human" (the "face" test first). A reference without a label is skipped too (the
  script zips `img_paths` with `class_label`).
- Frames: 32 at `np.linspace(0, T-1, 32, dtype=int)`.
- Detector (`metrics/yolo_world.py`): YOLO-World v2-L with the reference's CLIP ViT-B/32
  `image_embeds` as its one class (normalised, projected without residual, normalised), then the
  script's own filter (`script_filter`): torchvision `nms(0.7)`, score > 0.5, at most 100 (top-k).
- Crops: `PIL.Image.crop` of the RGB frame at the box (corners rounded half to even).
- GME (`CropEmbedder`, the same GME-Qwen2-VL as `gme_score`): every crop and its reference image
  embedded with the default system prompt, its label as a text query with the instruction "Find
  an image that matches the given text."; similarities are `(a * b).sum(-1)` in GME's dtype.
- A crop is KEPT when its box score > 0.6, its label similarity > 0.30 and its reference
  similarity != 0.
- `nexus_score` = `torch.mean(kept similarities).item() / F` with F the number of sampled frames
  in which any prompt has a box (the mean in GME's dtype: fp16 on GPU as the official run, fp32
  on CPU); 0.0 when boxes exist but none is kept. ABSENT when no frame has a box (always for
  singleface cases, whose only labels are skipped): the script's empty GME call raises there and
  the video is left out of `nexusscore.json`. Any other exception is raised (the runner records it
  as the video's error); the script skips such a video silently.
- `nexus_score_all_frames` (ours): the same kept similarities divided by ALL sampled frames (32),
  so a subject seen in one frame out of 32 is not scored as if it were in all of them
  (OpenS2V-Nexus issue 36: the official division rewards flicker). Absent in the same cases.

Speed (issue 13): reference CLIP and GME embeddings are computed once per file content
(the run's `EmbeddingCache`), label embeddings once per label, every crop once even when
two prompts give the same box on the same frame, all crops of a video in one GME call, and the
detector runs its backbone once per batch of frames for all prompts (`yolo_world.detect`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from kaleido_bench.core.cases import Case, ReferenceImage
from kaleido_bench.core.video import DecodedVideo
from kaleido_bench.metrics import backbones
from kaleido_bench.metrics.base import Metric, MetricResult, Needs, register_metric
from kaleido_bench.metrics.context import ScoringContext
from kaleido_bench.metrics.embedding_cache import EmbeddingCache
from kaleido_bench.metrics.gme import GME_QWEN2_VL_7B, load_gme
from kaleido_bench.metrics.weights import WeightFile, resolve
from kaleido_bench.metrics.yolo_world import (
    YOLO_WORLD_V2_L,
    YOLO_WORLD_V2_L_IMAGE_PROMPT,
    Detections,
    PostprocessConfig,
    YoloWorldArch,
)

NUM_FRAMES = 32
SCRIPT_NMS_IOU = 0.7  # yoloworld_inference defaults (get_nexusscore.py l.139-141)
SCRIPT_SCORE_THR = 0.5
SCRIPT_MAX_BOXES = 100
KEEP_BOX_SCORE = 0.6  # main, l.357
KEEP_TEXT_SIMILARITY = 0.30
TEXT_INSTRUCTION = "Find an image that matches the given text."  # main, l.343
HUMAN_LABELS = ("Man", "Woman")
#: the detector's own post-processing with its score threshold raised to the script's 0.5: the
#: boxes that survive the script's filter are the same, because NMS only ever suppresses a box
#: in favour of a HIGHER-scored one (all of them above 0.5 too) and the 300 / 30000 caps keep the
#: best scores first; only the low-scored boxes the script drops anyway are never sorted and
#: NMS'd (tested against the full post-processing and the official fixtures)
NEXUS_POSTPROCESS = PostprocessConfig(score_thr=SCRIPT_SCORE_THR)


class CropEmbedder(Protocol):
    """What NexusScore needs from GME: L2-normalised rows, one per image / text.

    `metrics/gme.py`'s `GmeEmbedder` is the one a run uses; tests also use a small CLIP one.
    """

    def embed_images(self, images: Sequence[np.ndarray]) -> Any: ...

    def embed_texts(self, texts: Sequence[str], instruction: str | None = None) -> Any: ...

    def check_images(self, images: Sequence[np.ndarray]) -> None:
        """Raise where `embed_images` would fail on one of `images`, without embedding them."""


def load_crop_embedder(
    context: ScoringContext,
    path: str | Path,
    precision: str | None = None,
    metric: str = "nexus_score",
) -> CropEmbedder:
    """The GME embedder of the weights folder `path` (`metrics/gme.py`: the same instance as
    `gme_score`'s in the run's model pool)."""
    return load_gme(context, path, precision=precision, metric=metric)


@dataclass(frozen=True)
class NexusPrompt:
    """One (reference image, class label) pair the detector looks for."""

    reference: ReferenceImage
    label: str


@dataclass(frozen=True)
class NexusOutcome:
    """Everything one video's two scores are made of."""

    kept_similarities: tuple[float, ...]
    kept_mean: float | None  # torch.mean(kept).item() in GME's dtype; None when nothing is kept
    frames_with_detection: int
    sampled_frames: int
    boxes: int  # boxes after the script's filter, over all frames and prompts
    crops: int  # distinct crops embedded (those with a box over the 0.6 keep rule)
    per_prompt_boxes: tuple[tuple[int, ...], ...]  # [prompt][frame]

    @property
    def absent(self) -> bool:
        return self.boxes == 0

    @property
    def nexus_score(self) -> float | None:
        if self.absent:
            return None
        return 0.0 if self.kept_mean is None else self.kept_mean / self.frames_with_detection

    @property
    def nexus_score_all_frames(self) -> float | None:
        if self.absent:
            return None
        return 0.0 if self.kept_mean is None else self.kept_mean / self.sampled_frames


def nexus_prompts(case: Case) -> tuple[NexusPrompt, ...]:
    """The label rules of `main` (l.303-313), in reference order."""
    prompts = []
    for reference in case.references:
        label = reference.label
        if label is None:
            continue
        if "face" in case.id and label in HUMAN_LABELS:
            continue
        if "human" in case.id and label in HUMAN_LABELS:
            label = "human"
        prompts.append(NexusPrompt(reference, label))
    return tuple(prompts)


def absent_reason(case: Case) -> str | None:
    """Why no box can exist for `case` before anything runs (None when prompts remain)."""
    if nexus_prompts(case):
        return None
    labels = [ref.label for ref in case.references]
    return f"case {case.id!r} has no reference to detect (labels {labels}; Man/Woman are skipped in 'face' cases)"


def script_filter(detections: Detections) -> Detections:
    """`run_image`'s own pass after the detector: torchvision NMS 0.7, score > 0.5, top 100."""
    import torch
    from torchvision.ops import nms

    boxes, scores = torch.from_numpy(detections.boxes), torch.from_numpy(detections.scores)
    labels = torch.from_numpy(detections.labels)
    keep = nms(boxes, scores, iou_threshold=SCRIPT_NMS_IOU)
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    above = scores.float() > SCRIPT_SCORE_THR
    boxes, scores, labels = boxes[above], scores[above], labels[above]
    if len(scores) > SCRIPT_MAX_BOXES:
        top = scores.float().topk(SCRIPT_MAX_BOXES)[1]
        boxes, scores, labels = boxes[top], scores[top], labels[top]
    return Detections(boxes.numpy(), scores.numpy(), labels.numpy())


def crop_box(box: np.ndarray) -> tuple[int, int, int, int]:
    """`PIL.Image.crop((x1, y1, x2, y2))`'s integer box: each corner rounded half to even."""
    return tuple(int(round(float(v))) for v in box)  # type: ignore[return-value]


def crop(frame: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The crop PIL makes for a box inside the frame (boxes are clamped to it by the detector)."""
    x1, y1, x2, y2 = box
    return np.ascontiguousarray(frame[y1:y2, x1:x2])


def nexus_outcome(
    frames: np.ndarray,
    prompts: Sequence[NexusPrompt],
    detections: Sequence[Sequence[Detections]],
    embedder: CropEmbedder,
    reference_embeddings: Any,
    label_embeddings: dict[str, Any],
) -> NexusOutcome:
    """Score one video from the script-filtered detections [prompt][frame].

    `reference_embeddings` (one GME row per prompt) and `label_embeddings` come from the
    caller's caches; every distinct (frame, box) crop is embedded once, all in one call, and
    only when one of its boxes scores over the 0.6 keep rule: the similarities of a box at or
    under 0.6 are never read (main, l.357), so skipping its crop changes no value. The skipped
    crops are still checked (`check_images`): the official script embeds them, and where GME
    cannot size one (an empty crop whose other side is short) the whole video fails there.
    A box on the frame's edge can crop to zero rows or columns: GME embeds it as the black
    image PIL resizes it to, like the official code.
    """
    import torch

    crop_index: dict[tuple[int, tuple[int, int, int, int]], int] = {}
    crops: list[np.ndarray] = []
    rows: list[tuple[int, int, float]] = []  # (prompt, crop, box score), in the script's order
    frames_with_detection = 0
    for t in range(len(frames)):  # the script loops frames, then prompts
        seen = False
        for k in range(len(prompts)):
            dets = detections[k][t]
            if len(dets) and not seen:
                frames_with_detection += 1
                seen = True
            for box, score in zip(dets.boxes, dets.scores):
                key = (t, crop_box(box))
                if key not in crop_index:
                    crop_index[key] = len(crops)
                    crops.append(crop(frames[t], key[1]))
                rows.append((k, crop_index[key], score))
    per_prompt = tuple(
        tuple(len(detections[k][t]) for t in range(len(frames))) for k in range(len(prompts))
    )
    if not rows:
        return NexusOutcome((), None, 0, len(frames), 0, 0, per_prompt)
    box_scores = np.array([s for _, _, s in rows], dtype=np.float32)
    confident = box_scores > KEEP_BOX_SCORE
    rows = [row for row, ok in zip(rows, confident) if ok]  # the script's order, kept
    needed = sorted({c for _, c, _ in rows})
    embedder.check_images([crops[c] for c in sorted(set(range(len(crops))) - set(needed))])
    kept: Any = ()
    if rows:
        position = {c: i for i, c in enumerate(needed)}
        crop_embeddings = embedder.embed_images([crops[c] for c in needed])
        dtype = crop_embeddings.dtype
        prompt_idx = torch.tensor([k for k, _, _ in rows])
        crop_rows = crop_embeddings[torch.tensor([position[c] for _, c, _ in rows])]
        reference_rows = reference_embeddings.to(dtype)[prompt_idx]
        label_rows = torch.cat([label_embeddings[prompts[k].label] for k, _, _ in rows]).to(dtype)
        image_similarity = (reference_rows * crop_rows).sum(-1)
        text_similarity = (label_rows * crop_rows).sum(-1)
        kept = image_similarity[(text_similarity > KEEP_TEXT_SIMILARITY) & (image_similarity != 0)]
    mean = torch.mean(kept).item() if len(kept) else None
    return NexusOutcome(
        tuple(float(x) for x in kept),
        mean,
        frames_with_detection,
        len(frames),
        len(box_scores),
        len(needed),
        per_prompt,
    )


# ----------------------------------------------------------------------------- models of a run


@dataclass
class NexusModels:
    """The three models NexusScore runs, loaded once (memoised by their loaders)."""

    detector: Any
    clip: backbones.Backbone
    embedder: CropEmbedder
    frame_batch: int = (
        4  # frames per backbone pass: 4 was fastest on a 2-core CPU (tiny model); 32 on a GPU
    )

    def prompt_embeddings(self, references: Sequence[ReferenceImage], cache: EmbeddingCache) -> Any:
        """Detector prompts: CLIP ViT-B/32 `image_embeds` per reference file content, projected."""
        import torch

        from kaleido_bench.metrics.yolo_world import prompt_embeddings

        def compute(paths: list[Path]) -> Any:
            pixels = self.clip.preprocess(
                [backbones.load_rgb(p) for p in paths]
            )  # each its own size
            with torch.inference_mode():
                return self.clip.forward(pixels.to(self.clip.device, self.clip.dtype)).float().cpu()

        rows = cache.embeddings(
            [r.path for r in references], self.clip.id, self.clip.preprocess_id, compute
        )
        return prompt_embeddings(self.detector, torch.stack(rows))

    def reference_embeddings(
        self, references: Sequence[ReferenceImage], cache: EmbeddingCache
    ) -> Any:
        """GME rows of the reference images, once per file content (cached as float32, exact for fp16)."""
        import torch

        model_id = f"crop-embedder:{getattr(self.embedder, 'id', type(self.embedder).__name__)}"
        preprocess_id = str(getattr(self.embedder, "preprocess_id", ""))
        rows = cache.embeddings(
            [r.path for r in references],
            model_id,
            preprocess_id,
            lambda paths: self.embedder.embed_images(
                [backbones.load_rgb(p) for p in paths]
            ).float(),
        )
        return torch.stack(rows)

    def label_embeddings(self, labels: Sequence[str]) -> dict[str, Any]:
        """GME text rows of the distinct labels, with the text-to-image instruction."""
        cache: dict = self.__dict__.setdefault("_labels", {})
        missing = sorted({label for label in labels if label not in cache})
        if missing:
            for label, row in zip(
                missing, self.embedder.embed_texts(missing, instruction=TEXT_INSTRUCTION)
            ):
                cache[label] = row[None]
        return {label: cache[label] for label in labels}

    def outcome(
        self, frames: np.ndarray, prompts: Sequence[NexusPrompt], cache: EmbeddingCache
    ) -> NexusOutcome:
        from kaleido_bench.metrics.yolo_world import detect

        references = [p.reference for p in prompts]
        raw = detect(
            self.detector,
            frames,
            self.prompt_embeddings(references, cache),
            cfg=NEXUS_POSTPROCESS,
            frame_batch=self.frame_batch,
        )
        filtered = [[script_filter(d) for d in per_frame] for per_frame in raw]
        if not any(len(d) for per_frame in filtered for d in per_frame):
            return NexusOutcome(
                (), None, 0, len(frames), 0, 0, tuple(tuple(0 for _ in frames) for _ in prompts)
            )
        return nexus_outcome(
            frames,
            prompts,
            filtered,
            self.embedder,
            self.reference_embeddings(references, cache),
            self.label_embeddings([p.label for p in prompts]),
        )


def video_outcome(
    models: NexusModels, video: DecodedVideo, case: Case, cache: EmbeddingCache
) -> NexusOutcome | str:
    """The outcome of one video, or the reason it is absent before any model runs; computed once
    per video for both variants (their models are the same objects from the run's pool)."""
    reason = absent_reason(case)
    if reason is not None:
        return reason
    key = (
        "nexus-outcome",
        id(models.detector),
        id(models.clip.model),
        id(models.embedder),
        case.id,
    )
    return video.cached(
        key, lambda: models.outcome(video.linspace(NUM_FRAMES), nexus_prompts(case), cache)
    )


# ----------------------------------------------------------------------------- metrics


class _NexusBase(Metric):
    """Shared setup of the two NexusScore variants (they share models and one outcome per video)."""

    weights: ClassVar[tuple[WeightFile, ...]] = (
        YOLO_WORLD_V2_L_IMAGE_PROMPT,
        backbones.CLIP_VIT_B32_HF,
        GME_QWEN2_VL_7B,
    )
    value_attribute: ClassVar[str] = ""
    option_names = frozenset({"detector_path", "clip_path", "gme_path", "arch", "gme_precision"})
    path_options = {
        YOLO_WORLD_V2_L_IMAGE_PROMPT.filename: "detector_path",
        backbones.CLIP_VIT_B32_HF.filename: "clip_path",
        GME_QWEN2_VL_7B.filename: "gme_path",
    }
    # GME-Qwen2-VL-7B (shared with gme_score: the same group keeps it resident for both) + the detector
    needs = Needs(frames="sampled", group="gme-qwen2-vl-7b", model_bytes=17_000_000_000)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.models: NexusModels | None = None

    def setup(self, context: ScoringContext) -> None:
        from kaleido_bench.metrics.clip_vision import load_hf_clip_vision
        from kaleido_bench.metrics.yolo_world import load_yolo_world

        detector_path = resolve(
            YOLO_WORLD_V2_L_IMAGE_PROMPT, self.options.get("detector_path"), metric=self.name
        )
        clip_path = resolve(
            backbones.CLIP_VIT_B32_HF, self.options.get("clip_path"), metric=self.name
        )
        gme_path = resolve(GME_QWEN2_VL_7B, self.options.get("gme_path"), metric=self.name)
        arch = self.options.get("arch", YOLO_WORLD_V2_L)
        arch = arch if isinstance(arch, YoloWorldArch) else YoloWorldArch(**arch)
        self.models = NexusModels(
            load_yolo_world(context, detector_path, arch, precision="fp32"),
            load_hf_clip_vision(context, clip_path, precision="fp32"),
            load_crop_embedder(
                context, gme_path, precision=self.options.get("gme_precision"), metric=self.name
            ),
            frame_batch=NUM_FRAMES if backbones.torch_device(context.device).type == "cuda" else 4,
        )

    def config(self) -> dict[str, Any]:
        return {**super().config(), "frames": NUM_FRAMES}

    def score(self, video: DecodedVideo, case: Case, context: ScoringContext) -> MetricResult:
        outcome = video_outcome(self.models, video, case, context.cache)
        if isinstance(outcome, str):
            return MetricResult.absent(outcome)
        details = {
            "kept": len(outcome.kept_similarities),
            "boxes": outcome.boxes,
            "crops": outcome.crops,
            "frames_with_detection": outcome.frames_with_detection,
            "sampled_frames": outcome.sampled_frames,
            "kept_mean": outcome.kept_mean,
            "boxes_per_frame": [list(p) for p in outcome.per_prompt_boxes],
            "labels": [p.label for p in nexus_prompts(case)],
        }
        if outcome.absent:
            return MetricResult.absent(
                "no box in any sampled frame (the official script leaves such a video out)",
                **details,
            )
        return MetricResult(getattr(outcome, self.value_attribute), details)


@register_metric("nexus_score")
class NexusScore(_NexusBase):
    """OpenS2V NexusScore: kept GME crop similarities / frames with a detection (exact)."""

    description = (
        "OpenS2V NexusScore: YOLO-World crops vs reference (GME), mean / frames with a detection"
    )
    value_attribute = "nexus_score"


@register_metric("nexus_score_all_frames")
class NexusScoreAllFrames(_NexusBase):
    """NexusScore divided by all 32 sampled frames (ours; OpenS2V-Nexus issue 36)."""

    description = "NexusScore divided by all sampled frames, so flicker is not rewarded (ours, OpenS2V-Nexus issue 36)"
    value_attribute = "nexus_score_all_frames"
