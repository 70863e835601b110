"""Small image helpers shared by models and metrics (which may not import each other)."""

from __future__ import annotations

import numpy as np

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
