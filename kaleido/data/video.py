"""Clips in and out: the frames a stage needs, decoded with PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_frames(path: str | Path) -> np.ndarray:
    """All frames of a clip, (T, H, W, 3) RGB uint8 (training clips are short)."""
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    if not frames:
        raise ValueError(f"{path} holds no video frames")
    return np.stack(frames)


def sample_frames(frames: np.ndarray, count: int) -> list[np.ndarray]:
    """`count` frames spread evenly over the clip (first and last included)."""
    index = np.linspace(0, len(frames) - 1, max(1, count)).round().astype(int)
    return [frames[i] for i in np.unique(index)]


def write_mp4(path: str | Path, frames: np.ndarray, fps: int = 8) -> None:
    """Frames (T, H, W, 3) uint8 as an H.264 mp4 (even sizes)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(
                stream.encode(
                    av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                )
            )
        container.mux(stream.encode())
