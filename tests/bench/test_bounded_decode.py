"""A video too large to decode whole costs its sampled frames only, fails the all-frame metrics for
that case alone, and the run goes on (issue 11: a 4096x4096 x 150 video once aborted every run)."""

from __future__ import annotations

import numpy as np
import pytest

from kaleido_bench.core.errors import VideoTooLargeError
from kaleido_bench.core.video import MAX_DECODE_ENV, decode_video, write_video


def _video(path, frames: int = 40, size: int = 64):
    rng = np.random.default_rng(0)
    return write_video(path, rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8), 8.0)


def test_over_the_limit_only_sampled_frames_are_decoded_and_they_are_the_same(tmp_path):
    path = _video(tmp_path / "v.mp4")
    whole = decode_video(path)
    bounded = decode_video(path, max_bytes=10 * 64 * 64 * 3)  # room for 10 of the 40 frames
    assert (
        bounded.frames_or_none is None
        and bounded.num_frames == 40
        and (bounded.height, bounded.width) == (64, 64)
    )
    np.testing.assert_array_equal(bounded.linspace(32), whole.linspace(32))
    np.testing.assert_array_equal(bounded.frames_at(np.array([39, 0, 0])), whole.frames[[39, 0, 0]])
    assert any("exceed the whole-decode limit" in w for w in bounded.warnings)
    with pytest.raises(
        VideoTooLargeError, match=r"40 frames of 64x64 need .* GiB.*KALEIDO_BENCH_MAX_DECODE_GIB"
    ):
        bounded.frames  # noqa: B018


def test_a_run_with_one_huge_video_records_errors_for_that_case_only_and_goes_on(
    tmp_path, monkeypatch
):
    from kaleido_bench.bench.evaluate import score_videos
    from kaleido_bench.bench.runner import select_metrics
    from kaleido_bench.bench.store import ResultStore
    from kaleido_bench.bench.suites import load_suite

    suite = load_suite("mini", tmp_path / "mini").select(limit=2)
    big, small = suite.cases
    _video(tmp_path / "videos" / f"{big.id}.mp4", frames=40, size=128)  # 1.9 MB decoded
    _video(tmp_path / "videos" / f"{small.id}.mp4", frames=6, size=64)  # 74 KB decoded
    monkeypatch.setenv(MAX_DECODE_ENV, str(1.0 / 1024))  # 1 MiB
    metrics, _ = select_metrics(["motion_amplitude", "decoupling_hist"])
    store, summary, _ = score_videos(tmp_path / "videos", suite, metrics, out_dir=tmp_path / "run")
    latest = ResultStore(store.root).latest()
    assert (
        "cannot score it" in latest[(big.id, "motion_amplitude")].error
    )  # every frame: this case fails
    assert latest[(big.id, "decoupling_hist")].ok  # 32 sampled frames: scored
    assert latest[(small.id, "motion_amplitude")].ok and latest[(small.id, "decoupling_hist")].ok
    assert [(f.case, f.metric) for f in summary.failures] == [(big.id, "motion_amplitude")]
