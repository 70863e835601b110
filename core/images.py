"""Small image helpers shared by models and metrics (which may not import each other)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kaleido_bench.core.errors import ReferenceImageError

#: Pillow's 16-bit greyscale modes (a 16-bit PNG opens as I;16; Pillow < 10 opened it as I).
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")

#: the border ring is this share of the shorter side wide
BORDER_SHARE = 0.02
#: a border pixel within this RGB distance of the border's median is backdrop
BORDER_TOLERANCE = 30.0
#: the border is a plain backdrop when this share of it is within tolerance
UNIFORM_SHARE = 0.9


def border_pixels(rgb: np.ndarray) -> np.ndarray:
    """The pixels of a ring `BORDER_SHARE` of the shorter side wide around the image, (N, 3) float."""
    h, w = rgb.shape[:2]
    b = max(2, int(BORDER_SHARE * min(h, w)))
    b = min(b, max(1, min(h, w) // 2))
    parts = [rgb[:b], rgb[h - b :], rgb[b : h - b, :b], rgb[b : h - b, w - b :]]
    return np.concatenate([p.reshape(-1, 3) for p in parts]).astype(np.float32)


def backdrop_colour(rgb: np.ndarray) -> np.ndarray | None:
    """The border's median colour when the border is near-uniform (a plain backdrop), else None."""
    ring = border_pixels(rgb)
    median = np.median(ring, axis=0)
    near = np.linalg.norm(ring - median, axis=1) < BORDER_TOLERANCE
    return median if near.mean() >= UNIFORM_SHARE else None


def rgb_image(image: Any, path: str | Path = "") -> Any:
    """`image` (PIL) as 8-bit RGB, as PIL `convert("RGB")` does for 8-bit images (alpha dropped,
    not composited: OpenS2V's and Kaleido's readers). A 16-bit greyscale image is scaled to 8 bits
    (`value >> 8`, the high byte): `convert("RGB")` would CLIP it, turning almost every grey
    white. 16-bit colour PNGs already open as 8-bit RGB(A) in Pillow. A 32-bit integer or float
    image (TIFF) has no agreed range to map, so it is refused, naming the file."""
    from PIL import Image

    mode = image.mode
    # a PNG has no 32-bit grey: mode I from a PNG is 16-bit (Pillow < 10)
    if mode in SIXTEEN_BIT_MODES or (mode == "I" and image.format == "PNG"):
        grey = (np.asarray(image).astype(np.uint32).clip(0, 65535) >> 8).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if mode in ("I", "F"):
        raise ReferenceImageError(
            f"reference image {path} is a {'32-bit integer' if mode == 'I' else 'floating-point'} image "
            f"(Pillow mode {mode}) with no agreed range to map to 8-bit RGB; save it as an 8- or 16-bit PNG or a JPEG"
        )
    return image.convert("RGB")
