"""Reference images for the image baselines: loading, and cutting a subject out of a plain background.

The `collage` baseline pastes each reference subject into a scene. OpenS2V-Eval's object and
product references are often photographed on a white or otherwise plain backdrop; those we cut
out with a colour key on the backdrop colour. A reference with a busy background (a portrait, a
cat on a sofa) gets no mask and is pasted whole, WITH its background: the copy-paste upper bound
that subject-consistency metrics must see through.

The cut-out follows the classic chroma-key recipe (estimate the backdrop colour from the image
border, key out pixels near it, clean the mask with morphology, keep the largest components).
It is not a segmentation model, and says so by falling back to the rectangle when unsure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy import ndimage

from kaleido_bench.core.cases import ReferenceImage
from kaleido_bench.core.errors import MissingImageError
from kaleido_bench.core.images import backdrop_colour, rgb_image

#: a pixel belongs to the subject when it is at least this far from the backdrop colour
KEY_DISTANCE = 40.0
#: the mask is computed at most at this long side, then resized back (morphology is slow on 4K)
MASK_MAX_SIDE = 384
#: components smaller than this share of the largest are noise (dust, text, shadows)
MIN_COMPONENT_SHARE = 0.05
#: keep at most this many components (a subject may be in parts, e.g. a pair of shoes)
MAX_COMPONENTS = 4
#: masks covering less / more of the image than these shares are not trusted: paste the rectangle
MIN_MASK_SHARE = 0.01
MAX_MASK_SHARE = 0.97


def load_reference(ref: ReferenceImage) -> Image.Image:
    """The reference as RGB (PIL `convert("RGB")`: alpha is dropped, as OpenS2V and Kaleido do)."""
    try:
        with Image.open(ref.path) as image:
            return rgb_image(image, ref.path)  # 16-bit greyscale scaled, not clipped
    except FileNotFoundError:
        raise MissingImageError(
            f"reference image {ref.path} ({ref.relpath}) does not exist"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise MissingImageError(
            f"reference image {ref.path} ({ref.relpath}) cannot be decoded: {exc}"
        ) from None


@dataclass(frozen=True)
class Cutout:
    """A subject ready to paste: RGB pixels and an alpha mask in [0, 1] of the same size.

    `keyed` says whether the backdrop was removed (False: alpha is all ones, the whole image).
    """

    rgb: np.ndarray  # (H, W, 3) uint8
    alpha: np.ndarray  # (H, W) float32
    keyed: bool


def subject_mask(rgb: np.ndarray) -> np.ndarray | None:
    """A boolean subject mask at the image's size, or None when no clean cut-out is possible.

    Pixels far from the backdrop colour, opened (removes specks) and closed (bridges thin gaps),
    the largest connected components kept, holes filled (a white shirt on a white backdrop stays).
    """
    backdrop = backdrop_colour(rgb)
    if backdrop is None:
        return None
    h, w = rgb.shape[:2]
    scale = min(1.0, MASK_MAX_SIDE / max(h, w))
    small = rgb
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
    far = np.linalg.norm(small.astype(np.float32) - backdrop, axis=2) >= KEY_DISTANCE
    radius = max(1, round(0.006 * max(small.shape[:2])))
    structure = _disk(radius)
    far = ndimage.binary_opening(far, structure=structure)
    far = ndimage.binary_closing(far, structure=structure, border_value=0)
    labels, count = ndimage.label(far)
    if count == 0:
        return None
    areas = np.bincount(labels.ravel())[1:]
    order = np.argsort(areas)[::-1][:MAX_COMPONENTS]
    keep = [i + 1 for i in order if areas[i] >= MIN_COMPONENT_SHARE * areas[order[0]]]
    mask = ndimage.binary_fill_holes(np.isin(labels, keep))
    if scale < 1.0:
        mask = (
            np.asarray(
                Image.fromarray(mask.astype(np.uint8) * 255).resize(
                    (w, h), Image.Resampling.BILINEAR
                )
            )
            >= 128
        )
    share = float(mask.mean())
    if not MIN_MASK_SHARE <= share <= MAX_MASK_SHARE:
        return None
    return mask


def cut_out(image: Image.Image) -> Cutout:
    """The subject cropped to its mask's box (with a small margin), or the whole image unmasked."""
    rgb = np.asarray(image.convert("RGB"))
    mask = subject_mask(rgb)
    if mask is None:
        return Cutout(rgb, np.ones(rgb.shape[:2], np.float32), keyed=False)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    margin = max(1, round(0.01 * max(rgb.shape[:2])))
    top, bottom = max(0, rows[0] - margin), min(rgb.shape[0], rows[-1] + 1 + margin)
    left, right = max(0, cols[0] - margin), min(rgb.shape[1], cols[-1] + 1 + margin)
    return Cutout(
        np.ascontiguousarray(rgb[top:bottom, left:right]),
        mask[top:bottom, left:right].astype(np.float32),
        keyed=True,
    )


def _disk(radius: int) -> np.ndarray:
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return x * x + y * y <= radius * radius
