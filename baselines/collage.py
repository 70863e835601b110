"""`collage`: the references pasted into one scene under a slow camera, the copy-paste bound.

A non-learned baseline in the spirit of the "copy-paste" checks of subject-to-video papers: it
shows every reference subject as it is, so it scores high on any metric that only asks "does the
subject look like its reference" and low on anything that asks for a new view, motion or an
interaction. S2V metrics that reward it are measuring copying, not generation.

The scene:
- background: the case's first BACKGROUND-role reference resized to cover the frame and
  centre-cropped; without one, a neutral soft grey gradient;
- subjects: every other reference, in case order from left to right, each in its own slot at a
  sensible scale (objects a little smaller than people and faces). A reference on a plain backdrop
  is cut out (`cutout.cut_out`); any other is pasted whole WITH its own background;
- motion: a gentle camera zoom (in or out, about 6-12%) and a pan across it, linear in time, and
  a small sinusoidal drift of each subject; everything stays inside the background.

Everything random is drawn from a numpy Generator seeded with a SHA-256 of (case id, seed), so a
video is the same on every machine and Python run (Python's `hash()` of a string is salted).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from kaleido_bench.baselines.base import register_model
from kaleido_bench.baselines.cutout import Cutout, cut_out, load_reference
from kaleido_bench.baselines.still import SyntheticVideoAdapter
from kaleido_bench.core.cases import Case, ReferenceImage, Role
from kaleido_bench.core.video import write_video

#: bump when the drawing changes, so stored videos of the old drawing are not reused
ALGORITHM_VERSION = 1
#: the camera's zoom never drops below this, so the view always lies inside the background
MIN_ZOOM = 1.04
#: subjects fill at most this share of their slot's width and of the safe region's height
SLOT_FILL = 0.88
HEIGHT_FILL = 0.82
#: objects are drawn smaller than people and faces
ROLE_SCALE = {Role.OBJECT: 0.8}
#: cv2 warps take the frame-to-scene map (bilinear)
WARP = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP


def stable_seed(case_id: str, seed: int) -> int:
    """A 64-bit integer from (case id, seed) that is the same in every process and on every machine."""
    digest = hashlib.sha256(f"collage\0{case_id}\0{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def cover_resize(image: Image.Image, height: int, width: int) -> np.ndarray:
    """Resize keeping the aspect ratio so the image covers height x width, then centre-crop."""
    image = image.convert("RGB")
    scale = max(width / image.width, height / image.height)
    new_w = max(width, math.ceil(image.width * scale))
    new_h = max(height, math.ceil(image.height * scale))
    resized = np.asarray(image.resize((new_w, new_h), Image.Resampling.LANCZOS))
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


def neutral_canvas(height: int, width: int) -> np.ndarray:
    """A soft grey studio backdrop: a vertical gradient (light top, darker floor) with a faint vignette."""
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    shade = 212.0 - 44.0 * y**1.5 - 14.0 * x**2
    tint = np.array([1.0, 1.0, 1.02], np.float32)
    return np.clip(shade[..., None] * tint, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Camera:
    """A view that zooms linearly in 1/zoom and pans linearly; `at(t)` gives scene-from-frame."""

    height: int
    width: int
    zoom: tuple[float, float]  # at t = 0 and t = 1
    centre: tuple[
        tuple[float, float], tuple[float, float]
    ]  # (x, y) in scene pixels, at t = 0 and t = 1

    def window(self, t: float) -> tuple[float, float, float, float]:
        """The scene rectangle (left, top, right, bottom) shown at time t in [0, 1]."""
        inv = (1 - t) / self.zoom[0] + t / self.zoom[1]
        cx = (1 - t) * self.centre[0][0] + t * self.centre[1][0]
        cy = (1 - t) * self.centre[0][1] + t * self.centre[1][1]
        half_w, half_h = self.width * inv / 2, self.height * inv / 2
        return cx - half_w, cy - half_h, cx + half_w, cy + half_h

    def at(self, t: float) -> np.ndarray:
        """The 2x3 affine map from frame pixels to scene pixels (for cv2 WARP_INVERSE_MAP)."""
        left, top, right, _ = self.window(t)
        inv = (right - left) / self.width
        return np.array([[inv, 0.0, left], [0.0, inv, top]], np.float64)

    def safe_region(self) -> tuple[float, float, float, float]:
        """The scene rectangle seen on every frame (the windows' edges move linearly in t)."""
        a, b = self.window(0.0), self.window(1.0)
        return max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])


@dataclass(frozen=True)
class Placement:
    """One subject in the scene: its pixels at scene scale, top-left corner, and drift."""

    rgba: np.ndarray  # (h, w, 4) float32: RGB premultiplied by alpha, then alpha in [0, 1]
    x: float
    y: float
    amplitude: tuple[float, float]  # pixels
    cycles: float  # drift periods over the clip
    phase: tuple[float, float]  # radians

    def offset(self, t: float) -> tuple[float, float]:
        angle = 2 * math.pi * self.cycles * t
        return (
            self.amplitude[0] * math.sin(angle + self.phase[0]),
            self.amplitude[1] * math.sin(angle + self.phase[1]),
        )


def draw_camera(rng: np.random.Generator, height: int, width: int) -> Camera:
    """Zoom between two levels 6-12% apart (in or out at random) while panning across the centre."""
    low = rng.uniform(MIN_ZOOM, MIN_ZOOM + 0.04)
    high = low + rng.uniform(0.06, 0.12)
    zoom = (low, high) if rng.random() < 0.5 else (high, low)
    # the largest pan that keeps the widest view (zoom `low`) inside the background
    bound_x, bound_y = width * (1 - 1 / low) / 2, height * (1 - 1 / low) / 2
    angle = rng.uniform(0, 2 * math.pi)
    dx, dy = 0.85 * bound_x * math.cos(angle), 0.85 * bound_y * math.sin(angle)
    centre = ((width / 2 - dx, height / 2 - dy), (width / 2 + dx, height / 2 + dy))
    return Camera(height, width, zoom, centre)


def lay_out(
    rng: np.random.Generator,
    cutouts: list[tuple[Cutout, Role]],
    region: tuple[float, float, float, float],
) -> list[Placement]:
    """Side by side, one slot each across `region`, with a little jitter in scale and position."""
    if not cutouts:
        return []
    left, top, right, bottom = region
    width, height = right - left, bottom - top
    amp_x, amp_y = 0.02 * width, 0.012 * height
    left, right, top, bottom = left + amp_x, right - amp_x, top + amp_y, bottom - amp_y
    slot = (right - left) / len(cutouts)
    placements = []
    for index, (cutout, role) in enumerate(cutouts):
        h, w = cutout.alpha.shape
        scale = min(SLOT_FILL * slot / w, HEIGHT_FILL * (bottom - top) / h)
        scale *= ROLE_SCALE.get(role, 1.0) * rng.uniform(0.9, 1.0)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = np.asarray(
            Image.fromarray(cutout.rgb).resize(size, Image.Resampling.LANCZOS), np.float32
        )
        alpha = np.asarray(
            Image.fromarray(cutout.alpha).resize(size, Image.Resampling.BILINEAR), np.float32
        )
        if cutout.keyed:  # soften the key's hard edge
            alpha = cv2.GaussianBlur(alpha, (0, 0), 0.6)
        alpha = np.clip(alpha, 0.0, 1.0)[..., None]
        rgba = np.ascontiguousarray(np.concatenate([rgb * alpha, alpha], axis=2))
        sw, sh = size
        slack_x = max(0.0, slot - sw) / 2
        slack_y = max(0.0, (bottom - top) - sh) / 2
        cx = left + slot * (index + 0.5) + 0.5 * slack_x * rng.uniform(-1, 1)
        cy = (top + bottom) / 2 + slack_y * rng.uniform(-0.2, 0.6)  # a little below the middle
        placements.append(
            Placement(
                rgba=rgba,
                x=cx - sw / 2,
                y=cy - sh / 2,
                amplitude=(amp_x * rng.uniform(0.4, 1.0), amp_y * rng.uniform(0.4, 1.0)),
                cycles=rng.uniform(0.35, 0.8),
                phase=(rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi)),
            )
        )
    return placements


def split_references(case: Case) -> tuple[ReferenceImage | None, list[ReferenceImage]]:
    """The first BACKGROUND reference (the scene) and every other reference (the subjects)."""
    backgrounds = case.references_with_role(Role.BACKGROUND)
    background = backgrounds[0] if backgrounds else None
    return background, [ref for ref in case.references if ref is not background]


def paste(frame: np.ndarray, placement: Placement, view: np.ndarray, t: float) -> None:
    """Alpha-blend `placement` at time t into `frame` (uint8, in place), warping only its box."""
    height, width = frame.shape[:2]
    inv, left, top = view[0, 0], view[0, 2], view[1, 2]
    dx, dy = placement.offset(t)
    x, y = placement.x + dx, placement.y + dy  # scene position of the subject's top-left corner
    h, w = placement.rgba.shape[:2]
    u0 = max(0, math.floor((x - left) / inv) - 1)
    v0 = max(0, math.floor((y - top) / inv) - 1)
    u1 = min(width, math.ceil((x + w - left) / inv) + 2)
    v1 = min(height, math.ceil((y + h - top) / inv) + 2)
    if u1 <= u0 or v1 <= v0:
        return
    # frame pixel (u0 + a, v0 + b) shows subject pixel inv * (u0 + a) + left - x, likewise in y
    matrix = np.array([[inv, 0.0, inv * u0 + left - x], [0.0, inv, inv * v0 + top - y]], np.float64)
    rgba = cv2.warpAffine(
        placement.rgba,
        matrix,
        (u1 - u0, v1 - v0),
        flags=WARP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    alpha = rgba[..., 3:]
    # premultiplied RGB: the zero border around the subject blends cleanly
    blended = frame[v0:v1, u0:u1] * (1 - alpha) + rgba[..., :3]
    frame[v0:v1, u0:u1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)


@register_model("collage")
class CollageAdapter(SyntheticVideoAdapter):
    description = (
        "references cut out (or pasted whole) onto the background reference under a slow camera"
    )
    label = "non-learned"

    def config(self) -> dict[str, Any]:
        return {**super().config(), "algorithm_version": ALGORITHM_VERSION}

    def render(self, case: Case, seed: int) -> np.ndarray:
        """(T, H, W, 3) uint8 frames, the same for the same (case id, seed, options)."""
        f = self.frame
        key = stable_seed(case.id, seed)
        camera = draw_camera(np.random.default_rng([key, 0]), f.height, f.width)
        background_ref, subject_refs = split_references(case)
        if background_ref is not None:
            background = cover_resize(load_reference(background_ref), f.height, f.width)
        else:
            background = neutral_canvas(f.height, f.width)
        cutouts = [(cut_out(load_reference(ref)), ref.role) for ref in subject_refs]
        placements = lay_out(np.random.default_rng([key, 1]), cutouts, camera.safe_region())

        frames = np.empty((f.num_frames, f.height, f.width, 3), np.uint8)
        for i in range(f.num_frames):
            t = i / (f.num_frames - 1) if f.num_frames > 1 else 0.0
            view = camera.at(t)
            frame = frames[i]
            cv2.warpAffine(
                background,
                view,
                (f.width, f.height),
                dst=frame,
                flags=WARP,
                borderMode=cv2.BORDER_REFLECT,
            )
            for p in placements:
                paste(frame, p, view, t)
        return frames

    def generate(self, case: Case, seed: int, out_path: Path) -> None:
        write_video(out_path, self.render(case, seed), self.frame.fps)
