"""What every tiny Wan-based adapter (vace-tiny, phantom-tiny) must do on `mini`, checked alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kaleido_bench.core.video import decode_video


def check_valid_reproducible_mp4s(
    adapter, one_ref, two_refs, tmp_path: Path, size: tuple[int, int, int]
) -> None:
    """Valid mp4s for 1 and 2 references, the same bytes for the same seed, other frames for another."""
    adapter.generate(one_ref, 0, tmp_path / "a.mp4")
    adapter.generate(one_ref, 0, tmp_path / "b.mp4")
    adapter.generate(one_ref, 1, tmp_path / "c.mp4")
    adapter.generate(two_refs, 0, tmp_path / "d.mp4")
    a, c, d = (decode_video(tmp_path / f"{name}.mp4") for name in "acd")
    assert a.frames.shape == d.frames.shape == (*size, 3) and a.fps == 16
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    assert not np.array_equal(a.frames, c.frames)
    assert a.frames.std() > 0  # not a blank video
