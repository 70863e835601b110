"""Reference image preprocessing: fit inside the video frame, pad white, one clean latent frame each.

As in the release's sampling code (SPEC.md section 1): the image is read with
`convert("RGB")` (alpha dropped, not composited), resized with PIL LANCZOS to fit inside
H x W keeping its aspect ratio (the side that fills the frame is exact, the other is
int(W / ratio) or int(H * ratio) with ratio = w / h), and pasted centred on a white H x W
canvas (left/top get delta // 2). Each reference
is then VAE-encoded alone as a one-frame clip, so it becomes exactly one clean latent frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def load_reference_image(path: str | Path) -> Image.Image:
    """An RGB image; alpha is dropped, not composited (PIL `convert("RGB")`)."""
    with Image.open(path) as image:
        return image.convert("RGB")


def fit_reference(image: Image.Image, height: int, width: int) -> Image.Image:
    """Resize to fit inside height x width keeping the aspect ratio, centred on white."""
    image = image.convert("RGB")
    # the release's float arithmetic (ratio w / h, then int()), so sizes match it to the pixel
    ratio = image.width / image.height
    if ratio > width / height:  # wider than the frame: the width fills it
        new_w, new_h = width, int(width / ratio)
    else:
        new_w, new_h = int(height * ratio), height
    new_w, new_h = max(new_w, 1), max(new_h, 1)
    resized = image.resize((new_w, new_h), Image.LANCZOS)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    canvas.paste(resized, ((width - new_w) // 2, (height - new_h) // 2))
    return canvas


def reference_pixels(images: Sequence[Image.Image], height: int, width: int) -> torch.Tensor:
    """(K, 3, 1, H, W) float32 in [-1, 1]: each reference as a one-frame clip."""
    arrays = [np.asarray(fit_reference(image, height, width), dtype=np.float32) for image in images]
    if not arrays:
        return torch.zeros(0, 3, 1, height, width)
    pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)  # K, 3, H, W
    return (pixels / 127.5 - 1.0).unsqueeze(2)
