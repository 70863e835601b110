"""A `decord` stand-in for the official scripts the parity benchmarks import, decoding with PyAV.

OpenS2V's and VBench's eval code read videos with decord; where decord does not import, this
module installs one whose `VideoReader` decodes with our `decode_video` (PyAV rgb24, the same
frames as decord's on H.264: SPEC). It covers what those scripts call: `len`, `vr[i].asnumpy()`,
`get_batch(indices).asnumpy()`, `get_avg_fps()`, `decord.cpu(0)` and `decord.bridge.set_bridge`.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types

import numpy as np


class _Frames:
    """What decord's indexing returns: something with `asnumpy()`."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def asnumpy(self) -> np.ndarray:
        return self._array


class VideoReader:
    """decord's `VideoReader` on PyAV rgb24 frames (no resizing)."""

    def __init__(
        self, path: str, width: int = -1, height: int = -1, num_threads: int = 0, **_: object
    ) -> None:
        from kaleido_bench.core.video import decode_video

        if width not in (None, -1) or height not in (None, -1):
            raise NotImplementedError("the PyAV stand-in does not resize")
        video = decode_video(path)
        self._frames, self._fps = video.frames, video.fps

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, index: int) -> _Frames:
        return _Frames(self._frames[index].copy())

    def get_batch(self, indices) -> _Frames:
        return _Frames(self._frames[list(indices)])

    def get_avg_fps(self) -> float:
        return self._fps


def install() -> None:
    """Put the stand-in in `sys.modules` as `decord`."""
    module = types.ModuleType("decord")
    module.__spec__ = importlib.machinery.ModuleSpec(
        "decord", None
    )  # transformers 4.51 calls find_spec
    module.__version__ = "PyAV stand-in"
    module.VideoReader = VideoReader
    module.cpu = lambda index=0: None
    module.bridge = types.SimpleNamespace(set_bridge=lambda name: None)
    sys.modules["decord"] = module


def ensure_decord() -> str:
    """Import decord, or install the stand-in; says which decodes the official code's videos."""
    try:
        import decord

        return f"decord {decord.__version__}"
    except ImportError:
        import av

        install()
        return f"PyAV {av.__version__} rgb24 stand-in for decord (decord not importable)"
