"""The report's media: poster frames and reference thumbnails as small JPEGs, and each video
placed where the gallery finds it.

Videos are never embedded in the HTML. Three placements (`--videos`):

- `reference` (default): the gallery points at the run folder's own file through a path
  relative to the report folder; nothing is copied, so 180 cases x 10 models cost no disk, but
  the report must stay next to its runs (move both together).
- `copy`: the files are copied to `media/videos/<run>/<case>.mp4`; the report folder stands
  alone (what `results/mini/report` does).
- `link`: symbolic links at the same place (no disk; the runs must stay where they are).

Posters are the middle frame of each video, at most `POSTER_WIDTH` pixels wide; a poster newer
than its video is not made again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

VIDEO_MODES = ("reference", "copy", "link")
POSTER_WIDTH = 256
POSTER_QUALITY = 72
REFERENCE_SIZE = 160


def _fresh(target: Path, source: Path) -> bool:
    return target.is_file() and target.stat().st_mtime >= source.stat().st_mtime


def middle_frame(video: Path) -> np.ndarray | None:
    """The middle frame of `video` as RGB uint8 (decoding stops there), None when unreadable."""
    import av

    try:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            wanted = max(int(stream.frames or 0) // 2, 0)
            frame = None
            for index, decoded in enumerate(container.decode(stream)):
                frame = decoded
                if index >= wanted:
                    break
            return None if frame is None else frame.to_ndarray(format="rgb24")
    except Exception:  # PyAV raises many types; a broken video simply gets no poster
        return None


def write_poster(video: Path, target: Path, width: int = POSTER_WIDTH) -> bool:
    """A small JPEG of the middle frame; False when the video cannot be read."""
    if _fresh(target, video):
        return True
    frame = middle_frame(video)
    if frame is None:
        return False
    image = Image.fromarray(frame)
    if image.width > width:
        image = image.resize(
            (width, max(1, round(image.height * width / image.width))), Image.Resampling.BICUBIC
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, "JPEG", quality=POSTER_QUALITY, optimize=True)
    return True


def reference_thumbnail(image_path: Path, folder: Path, size: int = REFERENCE_SIZE) -> Path | None:
    """A JPEG thumbnail of a reference image under `folder`, named by the image's content hash
    (cases sharing an image share the file, and the name is the same on every machine); None
    when the image is missing or unreadable."""
    if not image_path.is_file():
        return None
    target = folder / (hashlib.sha1(image_path.read_bytes()).hexdigest()[:16] + ".jpg")
    if _fresh(target, image_path):
        return target
    try:
        with Image.open(image_path) as image:
            thumb = image.convert("RGB")
            thumb.thumbnail((size, size), Image.Resampling.BICUBIC)
    except (OSError, ValueError):
        return None
    folder.mkdir(parents=True, exist_ok=True)
    thumb.save(target, "JPEG", quality=80, optimize=True)
    return target


def place_video(video: Path, target: Path, mode: str) -> bool:
    """Copy or link `video` to `target` (mode "copy" / "link"); False when it does not exist."""
    if not video.is_file():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode == "copy":
        if not _fresh(target, video) or target.is_symlink():
            target.unlink(missing_ok=True)
            shutil.copyfile(video, target)
    elif mode == "link":
        if target.is_symlink() or target.exists():
            target.unlink()
        os.symlink(video.resolve(), target)
    return True


def relative_url(path: Path, start: Path) -> str:
    """A URL path from folder `start` to `path` (forward slashes, for href/src)."""
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()
