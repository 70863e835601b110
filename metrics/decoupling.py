"""`decoupling` / `decoupling_hist`: how little of a subject reference's OWN background leaks into the video.

Kaleido's cross-paired training data (SPEC section 1: each subject's reference comes from a
different instance than the target video, with an inpainted new background or a new pose) exists
to stop a model from copying the reference photo's background, lighting and clutter along with
its subject. "S2V Decoupling" is one axis of Kaleido's radar chart, measured there by a user
study only. This metric is our automatic version of it.

Definition (per video of a case):

1. Subject references are the case's face / human / object references; background-role
   references are skipped (their content SHOULD appear). A case without subject references is
   ABSENT.
2. Each subject reference is split into subject and background (`mask` option):
   - `auto` (default): a reference whose image border is a near-uniform backdrop (a studio
     cut-out, >= 90% of the border within RGB distance 30 of its median colour) has an EMPTY
     background: it contributes nothing to leak and is recorded as `plain backdrop`. Any other
     reference is split by GrabCut (`cv2.grabCut`, 5 iterations, seeded with the centre
     rectangle at a 10% margin, on the image shrunk to a 320-pixel long side, OpenCV's RNG seeded
     with 0): a non-learned estimate, not a segmentation model;
   - `grabcut`: GrabCut for every reference, backdrops included;
   - `files`: masks made by any segmentation model (Grounding DINO + SAM, as Kaleido's data
     pipeline does), read from `mask_dir/<reference relpath with suffix .png>` (white or
     non-zero = subject); a reference without a mask file falls back to `auto`.
   The subject mask is grown by 3% of the image's shorter side, so the halo around the subject
   is not counted as background. A background covering less than 5% of the image is "tiny"
   and contributes nothing (recorded as such).
3. Patch features (`features` backend, fixed per registered name so numbers never mix):
   - `decoupling`: DINOv2 ViT-B/14 (`timm/vit_base_patch14_dinov2.lvd142m`) patch tokens after
     the final norm (the prefix token dropped), images resized (PIL bicubic) to a 224-pixel
     SHORTER side keeping the aspect (no crop: the border is where the background is), then
     cropped centrally to a multiple of 14, ImageNet mean / std; timm's `dynamic_img_size`
     resamples the position embedding to each grid;
   - `decoupling_hist`: no learned weights. Per 16x16-pixel patch of the image resized to the
     same 224-pixel shorter side (Gaussian blur sigma 1 first): a joint RGB colour histogram (4
     levels a channel, 64 bins, square-rooted: the Hellinger embedding) and an 8-bin unsigned
     gradient-orientation histogram (Sobel, magnitude-weighted, square-rooted, unit norm) scaled
     by the patch's texture strength `min(1, mean |gradient| / 40)` and by 0.7; the two parts
     concatenated and L2-normalised. Frames are cut with a stride of 8 pixels (overlapping
     patches) so a reference patch need not fall on the frames' grid.
4. A reference patch counts as background when at least 90% of its pixels are background. The
   reference's background patches are taken at two scales (the reference at 1.0x and 0.5x of
   the 224-pixel shorter side; a reference pasted small into a multi-subject frame appears at
   about half its size). Video patches come from the 32 frames at OpenS2V's
   `np.linspace(0, T-1, 32, dtype=int)`.
5. A background patch LEAKS when its best cosine similarity to any video patch (any frame) is
   at least the backend's threshold (`decoupling`: 0.60, `decoupling_hist`: 0.95; option
   `threshold`). A reference's leakage = the share of its background patches that leak, at the
   scale where that share is largest.
6. value = 1 - mean leakage over the subject references that have a background, in [0, 1],
   HIGHER IS BETTER (1: none of any reference's background is found in the video). A case whose
   subject references all have empty / tiny backgrounds is ABSENT: nothing could leak.

The details record, per reference, the mask source, background share, patch counts, leakage at
each scale and the mean best similarity; plus the backend, threshold and frame indices.

Caveats: the GrabCut split is rough (it may leave part of a subject in the "background", which
then "leaks" whenever the subject is shown: every model pays that alike); the histogram backend
sees colour and texture, not objects, so a new background of the same colours as the old one
reads as a leak; the DINOv2 threshold 0.60 is a prior that has not been calibrated against real
weights here (no weights can be downloaded on the development machines).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from kaleido_bench.core.cases import Case, ReferenceImage, Role
from kaleido_bench.core.images import backdrop_colour
from kaleido_bench.core.video import DecodedVideo
from kaleido_bench.metrics import backbones
from kaleido_bench.metrics.base import Metric, MetricResult, Needs, register_metric
from kaleido_bench.metrics.context import SERIAL, FramePool, ScoringContext
from kaleido_bench.metrics.embedding_cache import EmbeddingCache
from kaleido_bench.metrics.weights import resolve

SUBJECT_ROLES = (Role.FACE, Role.HUMAN, Role.OBJECT)
NUM_FRAMES = 32
#: images are embedded at this shorter side (both backends)
SHORT_SIDE = 224
#: the reference's background patches are also taken at these fractions of SHORT_SIDE
REFERENCE_SCALES = (1.0, 0.5)
MASK_MODES = ("auto", "grabcut", "files")

# ----- GrabCut split
MASK_MAX_SIDE = 320
GRABCUT_MARGIN = 0.1
GRABCUT_ITERATIONS = 5
#: the subject mask is grown by this share of the shorter side before taking the background
SUBJECT_GROW = 0.03
#: a background smaller than this share of the image is "tiny": nothing to leak
MIN_BACKGROUND_SHARE = 0.05
#: a patch is a background patch when this share of its pixels is background
BACKGROUND_PATCH_SHARE = 0.9

# ----- histogram backend
HIST_PATCH = 16
HIST_FRAME_STRIDE = 8
HIST_LEVELS = 4
HIST_ORIENTATIONS = 8
HIST_TEXTURE_SCALE = 40.0
HIST_GRADIENT_WEIGHT = 0.7
HIST_BLUR_SIGMA = 1.0

DINOV2_ARCH = "vit_base_patch14_dinov2"
THRESHOLDS = {"dinov2": 0.60, "histogram": 0.95}


# ----------------------------------------------------------------------------- subject / background split


@dataclass(frozen=True)
class ReferenceSplit:
    """A reference image with its subject mask; `background` is None when there is nothing to leak."""

    rgb: np.ndarray  # (H, W, 3) uint8
    background: (
        np.ndarray | None
    )  # (H, W) bool, True = background (subject grown); None = empty / tiny
    source: str  # "plain backdrop", "grabcut", "file:<path>"
    background_share: float


def has_plain_backdrop(rgb: np.ndarray) -> bool:
    """Whether the image border is near-uniform (a studio backdrop or a cut-out on a flat colour)."""
    return backdrop_colour(rgb) is not None


def grabcut_subject(rgb: np.ndarray) -> np.ndarray:
    """GrabCut's foreground (bool, image size), seeded with the centre rectangle, deterministic."""
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, MASK_MAX_SIDE / max(h, w))
    small = rgb
    if scale < 1.0:
        small = cv2.resize(
            rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    sh, sw = small.shape[:2]
    mx, my = max(1, round(GRABCUT_MARGIN * sw)), max(1, round(GRABCUT_MARGIN * sh))
    mask = np.zeros((sh, sw), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(
        np.ascontiguousarray(small[..., ::-1]),
        mask,
        (mx, my, sw - 2 * mx, sh - 2 * my),
        bgd,
        fgd,
        GRABCUT_ITERATIONS,
        cv2.GC_INIT_WITH_RECT,
    )
    subject = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    if scale < 1.0:
        subject = cv2.resize(subject, (w, h), interpolation=cv2.INTER_NEAREST)
    return subject.astype(bool)


def background_from_subject(subject: np.ndarray) -> np.ndarray:
    """The background mask: everything outside the subject grown by `SUBJECT_GROW` of the shorter side."""
    import cv2

    radius = max(1, round(SUBJECT_GROW * min(subject.shape)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return ~cv2.dilate(subject.astype(np.uint8), kernel).astype(bool)


def split_reference(
    rgb: np.ndarray, mask: str = "auto", mask_file: Path | None = None
) -> ReferenceSplit:
    """Subject / background split of one reference image under a `mask` mode (see module doc)."""
    if mask not in MASK_MODES:
        raise ValueError(f"mask must be one of {MASK_MODES}, got {mask!r}")
    if mask == "files" and mask_file is not None and mask_file.is_file():
        from PIL import Image

        with Image.open(mask_file) as image:
            subject = (
                np.asarray(
                    image.convert("L").resize(
                        (rgb.shape[1], rgb.shape[0]), Image.Resampling.NEAREST
                    )
                )
                > 0
            )
        source = f"file:{mask_file}"
    elif mask != "grabcut" and has_plain_backdrop(rgb):
        return ReferenceSplit(rgb, None, "plain backdrop", 0.0)
    else:
        subject = grabcut_subject(rgb)
        source = "grabcut"
    background = background_from_subject(subject)
    share = float(background.mean())
    return ReferenceSplit(rgb, background if share >= MIN_BACKGROUND_SHARE else None, source, share)


# ----------------------------------------------------------------------------- patch features


def fit_geometry(
    height: int, width: int, short: int, multiple: int = 1
) -> tuple[int, int, int, int, int, int]:
    """(new_w, new_h, top, left, crop_h, crop_w) of a resize to `short` on the shorter side + centre crop to `multiple`."""
    scale = short / min(height, width)
    new_w, new_h = max(multiple, round(width * scale)), max(multiple, round(height * scale))
    crop_h, crop_w = new_h - new_h % multiple, new_w - new_w % multiple
    return new_w, new_h, (new_h - crop_h) // 2, (new_w - crop_w) // 2, crop_h, crop_w


def resize_short_side(rgb: np.ndarray, short: int, multiple: int = 1) -> np.ndarray:
    """PIL bicubic resize to `short` pixels on the shorter side (aspect kept), centre-cropped to `multiple`."""
    from PIL import Image

    new_w, new_h, top, left, crop_h, crop_w = fit_geometry(*rgb.shape[:2], short, multiple)
    resized = np.asarray(Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.BICUBIC))
    return np.ascontiguousarray(resized[top : top + crop_h, left : left + crop_w])


def patch_background_share(background: np.ndarray, short: int, patch: int) -> np.ndarray:
    """Share of background pixels in each patch of the grid `resize_short_side(., short, patch)` cuts."""
    import cv2

    new_w, new_h, top, left, crop_h, crop_w = fit_geometry(*background.shape, short, patch)
    full = cv2.resize(background.astype(np.float32), (new_w, new_h), interpolation=cv2.INTER_AREA)
    full = full[top : top + crop_h, left : left + crop_w]
    return full.reshape(crop_h // patch, patch, crop_w // patch, patch).mean(axis=(1, 3))


def _cell_histograms(
    bins: np.ndarray, weights: np.ndarray | None, count: int, cell: int
) -> np.ndarray:
    """(rows, cols, count) sums of `weights` (or counts) per bin over cell x cell pixel blocks."""
    h, w = bins.shape
    rows, cols = h // cell, w // cell
    cell_id = (np.arange(rows * cell)[:, None] // cell) * cols + np.arange(cols * cell)[
        None, :
    ] // cell
    flat = (cell_id * count + bins[: rows * cell, : cols * cell]).ravel()
    chosen = None if weights is None else weights[: rows * cell, : cols * cell].ravel()
    return (
        np.bincount(flat, chosen, minlength=rows * cols * count)
        .reshape(rows, cols, count)
        .astype(np.float32)
    )


def _patches_from_cells(cells: np.ndarray, stride: int) -> np.ndarray:
    """Sum 2x2 blocks of 8-pixel cells into 16-pixel patches at stride 8 (or 16: every other one)."""
    patches = cells[:-1, :-1] + cells[1:, :-1] + cells[:-1, 1:] + cells[1:, 1:]
    step = stride // (HIST_PATCH // 2)
    return patches[::step, ::step]


def histogram_patch_features(rgb: np.ndarray, stride: int = HIST_PATCH) -> np.ndarray:
    """(rows, cols, 72) unit-norm colour + texture descriptors of 16x16 patches at stride 8 or 16 (module doc)."""
    import cv2

    if stride not in (HIST_PATCH, HIST_PATCH // 2):
        raise ValueError(f"stride must be {HIST_PATCH} or {HIST_PATCH // 2}, got {stride}")
    cell = HIST_PATCH // 2
    image = cv2.GaussianBlur(rgb, (0, 0), HIST_BLUR_SIGMA).astype(np.float32)
    levels = np.minimum((image * (HIST_LEVELS / 256.0)).astype(np.int64), HIST_LEVELS - 1)
    index = (levels[..., 0] * HIST_LEVELS + levels[..., 1]) * HIST_LEVELS + levels[..., 2]
    area = float(HIST_PATCH * HIST_PATCH)
    colour = _patches_from_cells(_cell_histograms(index, None, HIST_LEVELS**3, cell), stride)
    colour = np.sqrt(colour / area)

    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3) / 4.0
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3) / 4.0
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)
    bins = np.minimum((angle * (HIST_ORIENTATIONS / np.pi)).astype(np.int64), HIST_ORIENTATIONS - 1)
    gradient = _patches_from_cells(
        _cell_histograms(bins, magnitude, HIST_ORIENTATIONS, cell), stride
    )
    energy = gradient.sum(-1, keepdims=True)
    texture = np.minimum(1.0, energy / area / HIST_TEXTURE_SCALE)
    orientation = np.sqrt(gradient / np.maximum(energy, 1e-6))
    features = np.concatenate([colour, HIST_GRADIENT_WEIGHT * texture * orientation], axis=-1)
    return features / np.maximum(np.linalg.norm(features, axis=-1, keepdims=True), 1e-8)


class HistogramPatches:
    """The weight-free backend: colour + gradient histograms of 16-pixel patches (module doc, step 3)."""

    id = f"histogram:rgb{HIST_LEVELS}^3+grad{HIST_ORIENTATIONS}:p{HIST_PATCH}:short{SHORT_SIDE}:v1"
    patch = HIST_PATCH

    def __init__(self, pool: FramePool = SERIAL) -> None:
        self.pool = pool

    def reference_grid(self, rgb: np.ndarray, short: int) -> np.ndarray:
        """(rows, cols, D) unit-norm features on the non-overlapping patch grid."""
        return histogram_patch_features(
            resize_short_side(rgb, short, self.patch), stride=self.patch
        )

    def frame_patches(self, frames: np.ndarray) -> np.ndarray:
        """(N, D) unit-norm features of overlapping patches (stride 8) of every frame."""
        rows = self.pool.map(
            lambda frame: histogram_patch_features(
                resize_short_side(frame, SHORT_SIDE, self.patch), stride=HIST_FRAME_STRIDE
            ),
            frames,
        )
        return np.concatenate([r.reshape(-1, r.shape[-1]) for r in rows])


class DinoV2Patches:
    """DINOv2 ViT-B/14 patch tokens after the final norm (module doc, step 3), via the shared timm loader."""

    patch = 14

    def __init__(
        self, backbone: backbones.Backbone, batch_size: int = 8, pool: FramePool = SERIAL
    ) -> None:
        self.backbone = backbone
        self.pool = pool
        self.batch_size = batch_size
        self.id = f"dinov2-patch-tokens:{backbone.id}:short{SHORT_SIDE}"

    def _tokens(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, rows, cols, D) unit-norm patch tokens of same-sized uint8 images."""
        import torch
        import torch.nn.functional as F

        model = self.backbone.model
        mean = torch.tensor(backbones.IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(backbones.IMAGENET_STD).view(1, 3, 1, 1)
        rows, cols = images[0].shape[0] // self.patch, images[0].shape[1] // self.patch
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = torch.from_numpy(np.stack(images[start : start + self.batch_size])).permute(
                    0, 3, 1, 2
                )
                pixels = ((batch.float() / 255.0 - mean) / std).to(
                    self.backbone.device, self.backbone.dtype
                )
                tokens = model.forward_features(pixels)[:, model.num_prefix_tokens :]
                out.append(F.normalize(tokens.float(), dim=-1).cpu())
        tokens = torch.cat(out)
        return tokens.reshape(len(images), rows, cols, tokens.shape[-1]).numpy()

    def reference_grid(self, rgb: np.ndarray, short: int) -> np.ndarray:
        return self._tokens([resize_short_side(rgb, short, self.patch)])[0]

    def frame_patches(self, frames: np.ndarray) -> np.ndarray:
        tokens = self._tokens(
            self.pool.map(lambda frame: resize_short_side(frame, SHORT_SIDE, self.patch), frames)
        )
        return tokens.reshape(-1, tokens.shape[-1])


# ----------------------------------------------------------------------------- the metric


def cached_split(
    ref: ReferenceImage, mask: str, mask_dir: Path | None, cache: EmbeddingCache
) -> ReferenceSplit:
    """`split_reference` of a reference file, once per (file content, mask mode, mask file).

    Kept in the run's `EmbeddingCache`, so `cache.clear()` forgets it with the embeddings.
    """
    mask_file = (
        mask_dir / Path(ref.relpath).with_suffix(".png") if mask == "files" and mask_dir else None
    )
    # the split's `source` names the mask file, so its path is part of the key with its bytes
    mask_key = (
        f"{mask_file}@{cache.digest(mask_file)}"
        if mask_file is not None and mask_file.is_file()
        else None
    )
    return cache.derived(
        ref.path,
        f"decoupling-split/mask={mask}/mask-file={mask_key}",
        lambda: split_reference(backbones.load_rgb(ref.path), mask, mask_file),
    )


def reference_leakage(
    split: ReferenceSplit,
    video_patches: np.ndarray,
    backend: Any,
    threshold: float,
    scales: tuple[float, ...],
) -> dict[str, Any]:
    """Leak share of one reference's background patches at each scale; the largest is its leakage."""
    per_scale = []
    for scale in scales:
        short = max(backend.patch, round(SHORT_SIDE * scale))
        grid = backend.reference_grid(split.rgb, short)
        share = patch_background_share(split.background, short, backend.patch)
        if share.shape != grid.shape[:2]:
            raise RuntimeError(f"patch grid {grid.shape[:2]} and mask grid {share.shape} differ")
        patches = grid[share >= BACKGROUND_PATCH_SHARE]
        if len(patches) == 0:
            per_scale.append(
                {
                    "scale": scale,
                    "background_patches": 0,
                    "leakage": None,
                    "mean_best_similarity": None,
                }
            )
            continue
        best = (patches @ video_patches.T).max(axis=1)
        per_scale.append(
            {
                "scale": scale,
                "background_patches": int(len(patches)),
                "leakage": float((best >= threshold).mean()),
                "mean_best_similarity": float(best.mean()),
            }
        )
    measured = [row for row in per_scale if row["leakage"] is not None]
    worst = max(measured, key=lambda row: row["leakage"]) if measured else None
    return {
        "leakage": worst["leakage"] if worst else None,
        "scale": worst["scale"] if worst else None,
        "scales": per_scale,
    }


class Decoupling(Metric):
    """1 - share of the subject references' own background patches found in the video (module doc)."""

    features: ClassVar[str] = ""
    higher_is_better = True
    option_names = frozenset({"mask", "mask_dir", "threshold", "num_frames", "reference_scales"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        mask = options.get("mask", "auto")
        if mask not in MASK_MODES:
            raise ValueError(f"metric {self.name}: mask must be one of {MASK_MODES}, got {mask!r}")
        if mask == "files" and not options.get("mask_dir"):
            raise ValueError(f"metric {self.name}: mask=files needs the mask_dir option")
        self.backend: Any = None

    @property
    def threshold(self) -> float:
        return float(self.options.get("threshold", THRESHOLDS[self.features]))

    @property
    def num_frames(self) -> int:
        return int(self.options.get("num_frames", NUM_FRAMES))

    @property
    def scales(self) -> tuple[float, ...]:
        return tuple(float(s) for s in self.options.get("reference_scales", REFERENCE_SCALES))

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "features": self.features,
            "threshold": self.threshold,
            "mask": self.options.get("mask", "auto"),
            "frames": self.num_frames,
            "reference_scales": list(self.scales),
            "short_side": SHORT_SIDE,
        }

    def make_backend(self, context: ScoringContext) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def setup(self, context: ScoringContext) -> None:
        self.backend = self.make_backend(context)

    def score(self, video: DecodedVideo, case: Case, context: ScoringContext) -> MetricResult:
        subjects = case.references_with_role(*SUBJECT_ROLES)
        if not subjects:
            return MetricResult.absent("case has no subject reference (face, human or object)")
        mask = self.options.get("mask", "auto")
        mask_dir = Path(self.options["mask_dir"]) if self.options.get("mask_dir") else None
        splits = [cached_split(ref, mask, mask_dir, context.cache) for ref in subjects]
        rows: list[dict[str, Any]] = [
            {
                "relpath": ref.relpath,
                "role": ref.role.value,
                "mask_source": split.source,
                "background_share": round(split.background_share, 4),
            }
            for ref, split in zip(subjects, splits)
        ]
        details: dict[str, Any] = {
            "features": self.features,
            "threshold": self.threshold,
            "references": rows,
        }
        if all(split.background is None for split in splits):
            return MetricResult.absent(
                "no subject reference has a background that could leak (plain or tiny)", **details
            )
        backend = self.backend
        video_patches = video.cached(
            ("decoupling-patches", backend.id, self.num_frames),
            lambda: backend.frame_patches(video.linspace(self.num_frames)),
        )
        leaks = []
        for row, split in zip(rows, splits):
            if split.background is None:
                row["leakage"] = None
                row["skipped"] = (
                    "plain backdrop: nothing to leak"
                    if split.source == "plain backdrop"
                    else "background under 5% of the image"
                )
                continue
            row.update(
                reference_leakage(split, video_patches, backend, self.threshold, self.scales)
            )
            if row["leakage"] is None:
                row["skipped"] = "no patch is 90% background"
            else:
                leaks.append(row["leakage"])
        if not leaks:
            return MetricResult.absent(
                "no subject reference has a whole background patch", **details
            )
        leakage = sum(leaks) / len(leaks)
        details.update(
            leakage=leakage,
            frames=int(len(video.linspace(self.num_frames))),
            frame_indices=[int(i) for i in video.linspace_indices(self.num_frames)],
            backend=backend.id,
        )
        return MetricResult(1.0 - leakage, details)


@register_metric("decoupling")
class DecouplingDino(Decoupling):
    """S2V decoupling with DINOv2 ViT-B/14 patch tokens (weights required)."""

    description = "1 - share of subject references' own background patches found in 32 frames (DINOv2 patches)"
    features = "dinov2"
    weights = (backbones.DINOV2_VITB14,)
    option_names = Decoupling.option_names | {"model_path", "precision", "model_overrides"}
    path_options = {backbones.DINOV2_VITB14.filename: "model_path"}
    needs = Needs(frames="sampled", group="dinov2-b14", model_bytes=350_000_000)

    def make_backend(self, context: ScoringContext) -> DinoV2Patches:
        path = resolve(backbones.DINOV2_VITB14, self.options.get("model_path"), metric=self.name)
        overrides = {**dict(self.options.get("model_overrides") or {}), "dynamic_img_size": True}
        backbone = backbones.load_timm_vit(
            context,
            DINOV2_ARCH,
            path,
            precision=self.options.get("precision", "fp32"),
            img_size=224,
            model_overrides=overrides,
        )
        return DinoV2Patches(backbone, int(self.options.get("batch_size", 8)), context.frames)


@register_metric("decoupling_hist")
class DecouplingHistogram(Decoupling):
    """S2V decoupling with weight-free colour + gradient patch histograms (runs anywhere)."""

    description = "1 - share of subject references' own background patches found in 32 frames (colour/gradient histograms, no weights)"
    features = "histogram"
    needs = Needs(frames="sampled", resource="cpu")

    def make_backend(self, context: ScoringContext) -> HistogramPatches:
        return HistogramPatches(context.frames)
