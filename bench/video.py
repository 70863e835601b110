"""Decode a video once into RGB uint8 frames (PyAV) and write mp4 files atomically.

Every metric takes its frames from one `DecodedVideo`; the frame samplings the published
metrics use (OpenS2V's 32 linspace frames, VBench's every frame, ...) are cached on it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kaleido_bench.bench.atomic import default_file_mode
from kaleido_bench.bench.errors import VideoError
from kaleido_bench.bench.once import OnceMap


@dataclass
class DecodedVideo:
    """All frames of one video as a (T, H, W, 3) uint8 RGB array, decoded once."""

    frames: np.ndarray
    fps: float
    path: Path | None = None
    declared_frames: int | None = None  # what the stream header says (None: not stated)
    warnings: tuple[str, ...] = ()  # scored anyway, but the records say why the numbers may be off
    _cache: OnceMap = field(default_factory=OnceMap, repr=False)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    def linspace_indices(self, n: int) -> np.ndarray:
        """OpenS2V's sampling: `np.linspace(0, T-1, n, dtype=int)` (truncated, duplicates kept)."""
        return np.linspace(0, self.num_frames - 1, n, dtype=int)

    def linspace(self, n: int = 32) -> np.ndarray:
        """The frames at `linspace_indices(n)`, computed once per video."""
        return self.cached(("linspace", n), lambda: self.frames[self.linspace_indices(n)])

    def cached(self, key: object, compute):
        """Memoise any derived array (grey frames, resized tensors) so metrics can share it;
        thread-safe: metrics scored side by side compute a shared array once."""
        return self._cache.get(key, compute)


def decode_video(path: str | Path) -> DecodedVideo:
    """Decode every frame of `path` to RGB24 with PyAV (bit-identical to decord on H.264)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video {path} does not exist")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"video {path} has no video stream")
            if _is_still_image(container):
                raise VideoError(f"video {path} is a still image ({container.format.name}), not a video")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
            rate = stream.average_rate or stream.base_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            declared = int(stream.frames) or None
            if len(frames) == 1 and container.format.name in ANIMATED_IMAGE_FORMATS:
                raise VideoError(f"video {path} is a still image (a 1-frame {container.format.name}), not a video")
    except VideoError:
        raise
    except Exception as exc:  # PyAV raises many types (InvalidDataError, ValueError, ...)
        raise VideoError(f"video {path} is corrupt or unreadable: {exc}") from None
    if not frames:
        raise VideoError(f"video {path} has no decodable frames")
    warnings = ()
    if declared is not None and len(frames) < declared:  # a truncated file decodes what survives
        warnings = (f"decoded {len(frames)} of the {declared} frames the stream declares (truncated file?)",)
    return DecodedVideo(np.stack(frames), fps, path, declared, warnings)


#: Demuxers of single images: ffmpeg reads a PNG or JPEG named `.mp4` as a 1-frame video.
STILL_IMAGE_FORMATS = ("image2", "_pipe")
#: Image formats that may animate: one frame of them is a still image too.
ANIMATED_IMAGE_FORMATS = ("gif", "webp", "apng")


def _is_still_image(container) -> bool:
    name = container.format.name or ""
    return any(name == kind or name.endswith(kind) for kind in STILL_IMAGE_FORMATS)


X264_DETERMINISTIC = "threads=1:rc-lookahead=0:mbtree=0"


def write_video(path: str | Path, frames: np.ndarray, fps: float, *, crf: int = 18) -> Path:
    """Write (T, H, W, 3) uint8 RGB frames as H.264 mp4; the file appears only when complete."""
    import av

    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"H.264 needs even sizes, got {height}x{width}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4.tmp", dir=path.parent)
    os.fchmod(fd, default_file_mode())  # mkstemp's 0600 would ignore the umask
    os.close(fd)
    try:
        with av.open(tmp, mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=_as_fraction(fps))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            # x264's lookahead / macroblock tree made the bytes depend on what the process did
            # before (seen after a decode at some widths); without them the same frames always
            # give the same file, at a negligible cost in size.
            stream.options = {"crf": str(crf), "preset": "medium", "x264-params": X264_DETERMINISTIC}
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _as_fraction(fps: float):
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1001)
