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

from kaleido_bench.core.atomic import default_file_mode
from kaleido_bench.core.errors import VideoError, VideoTooLargeError
from kaleido_bench.core.once import OnceMap

#: Largest whole decode (T x H x W x 3 bytes) a video may take; above it only sampled frames are
#: decoded, and metrics that read every frame record an error for that case.
MAX_DECODE_ENV = "KALEIDO_BENCH_MAX_DECODE_GIB"
DEFAULT_MAX_DECODE_GIB = 4.0


def max_decode_bytes() -> int:
    """`KALEIDO_BENCH_MAX_DECODE_GIB` (default 4 GiB: 81 frames of 1280x720 take 0.2 GiB)."""
    text = os.environ.get(MAX_DECODE_ENV, "").strip()
    try:
        gib = float(text) if text else DEFAULT_MAX_DECODE_GIB
    except ValueError:
        raise VideoError(f"{MAX_DECODE_ENV} must be a number of GiB, got {text!r}") from None
    return int(gib * 2**30)


@dataclass
class DecodedVideo:
    """The RGB uint8 frames of one video, decoded once: all of them as a (T, H, W, 3) array when
    they fit in `max_decode_bytes()`, else only the frames metrics sample (`linspace`), fetched
    by streaming through the file; `frames` then raises `VideoTooLargeError` (that case only)."""

    frames_or_none: np.ndarray | None
    fps: float
    path: Path | None = None
    declared_frames: int | None = None  # what the stream header says (None: not stated)
    warnings: tuple[str, ...] = ()  # scored anyway, but the records say why the numbers may be off
    shape: tuple[int, int, int] | None = None  # (T, H, W) when the frames are not held
    _cache: OnceMap = field(default_factory=OnceMap, repr=False)

    @property
    def frames(self) -> np.ndarray:
        """Every frame (T, H, W, 3); a video above the decode limit raises `VideoTooLargeError`."""
        if self.frames_or_none is None:
            t, h, w = self.shape or (0, 0, 0)
            raise VideoTooLargeError(
                f"video {self.path}: {t} frames of {w}x{h} need {t * h * w * 3 / 2**30:.1f} GiB decoded whole, "
                f"above the limit of {max_decode_bytes() / 2**30:g} GiB ({MAX_DECODE_ENV}); metrics that read "
                "every frame cannot score it (sampled-frame metrics still do)"
            )
        return self.frames_or_none

    @property
    def num_frames(self) -> int:
        return (
            int(self.frames_or_none.shape[0]) if self.frames_or_none is not None else self.shape[0]
        )

    @property
    def height(self) -> int:
        return (
            int(self.frames_or_none.shape[1]) if self.frames_or_none is not None else self.shape[1]
        )

    @property
    def width(self) -> int:
        return (
            int(self.frames_or_none.shape[2]) if self.frames_or_none is not None else self.shape[2]
        )

    def linspace_indices(self, n: int) -> np.ndarray:
        """OpenS2V's sampling: `np.linspace(0, T-1, n, dtype=int)` (truncated, duplicates kept)."""
        return np.linspace(0, self.num_frames - 1, n, dtype=int)

    def linspace(self, n: int = 32) -> np.ndarray:
        """The frames at `linspace_indices(n)`, computed once per video."""
        return self.cached(("linspace", n), lambda: self.frames_at(self.linspace_indices(n)))

    def frames_at(self, indices: np.ndarray) -> np.ndarray:
        """The frames at `indices` (repeats allowed): from the held frames, or one streaming pass."""
        if self.frames_or_none is not None:
            return self.frames_or_none[indices]
        if self.path is None:
            raise VideoError("a video without frames or file")
        wanted = set(int(i) for i in indices)
        kept = {index: frame for index, frame in _stream_frames(self.path, wanted)}
        return np.stack([kept[int(i)] for i in indices])

    def cached(self, key: object, compute):
        """Memoise any derived array (grey frames, resized tensors) so metrics can share it;
        thread-safe: metrics scored side by side compute a shared array once."""
        return self._cache.get(key, compute)


def _stream_frames(path: Path, wanted: set[int] | None):
    """(index, RGB frame) of each decodable frame, converting only the `wanted` ones (None: count only)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            yield (
                index,
                (
                    frame.to_ndarray(format="rgb24")
                    if wanted is not None and index in wanted
                    else None
                ),
            )


def decode_video(path: str | Path, max_bytes: int | None = None) -> DecodedVideo:
    """Decode `path` to RGB24 with PyAV (bit-identical to decord on H.264): every frame when they fit
    in `max_bytes` (default `max_decode_bytes()`), else only counted now and sampled on demand."""
    import av

    path = Path(path)
    limit = max_decode_bytes() if max_bytes is None else max_bytes
    if not path.is_file():
        raise VideoError(f"video {path} does not exist")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"video {path} has no video stream")
            if _is_still_image(container):
                raise VideoError(
                    f"video {path} is a still image ({container.format.name}), not a video"
                )
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.base_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            declared = int(stream.frames) or None
            frames, count, held, size = [], 0, True, (0, 0)
            for frame in container.decode(stream):
                count += 1
                size = (frame.height, frame.width)
                if held and count * frame.height * frame.width * 3 > limit:
                    held, frames = False, []  # too large to hold: count the rest, sample later
                if held:
                    frames.append(frame.to_ndarray(format="rgb24"))
            if count == 1 and container.format.name in ANIMATED_IMAGE_FORMATS:
                raise VideoError(
                    f"video {path} is a still image (a 1-frame {container.format.name}), not a video"
                )
    except VideoError:
        raise
    except Exception as exc:  # PyAV raises many types (InvalidDataError, ValueError, ...)
        raise VideoError(f"video {path} is corrupt or unreadable: {exc}") from None
    if not count:
        raise VideoError(f"video {path} has no decodable frames")
    warnings = ()
    if declared is not None and count < declared:  # a truncated file decodes what survives
        warnings = (
            f"decoded {count} of the {declared} frames the stream declares (truncated file?)",
        )
    if held:
        return DecodedVideo(np.stack(frames), fps, path, declared, warnings)
    shape = (count, *size)
    warnings += (
        f"{count} frames of {shape[2]}x{shape[1]} exceed the whole-decode limit: only sampled frames decoded",
    )
    return DecodedVideo(None, fps, path, declared, warnings, shape)


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
            stream.options = {
                "crf": str(crf),
                "preset": "medium",
                "x264-params": X264_DETERMINISTIC,
            }
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
