"""The runner: end to end on `mini`, resume after a crash or Ctrl-C, and failures that don't stop a run."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from kaleido_bench.baselines.base import ModelAdapter, ModelCapabilities, get_model_class
from kaleido_bench.bench.evaluate import run_model, score_videos
from kaleido_bench.bench.store import GENERATE, ResultStore
from kaleido_bench.bench.suites import load_suite
from kaleido_bench.core.cases import Case
from kaleido_bench.core.errors import RunConflictError, UnknownNameError, VideoError
from kaleido_bench.core.video import DecodedVideo, decode_video, write_video
from kaleido_bench.metrics.base import Metric, MetricResult
from kaleido_bench.metrics.motion_amplitude import MotionAmplitude


class CountingAdapter(ModelAdapter):
    """Writes a small moving gradient; counts calls; can be told to be interrupted or to fail."""

    name = "counting"
    calls: list[str] = []
    interrupt_at: str | None = None
    fail_on: str | None = None

    @property
    def capabilities(self) -> ModelCapabilities:
        return ModelCapabilities(height=32, width=48, num_frames=6, fps=8.0)

    def generate(self, case: Case, seed: int, out_path) -> None:
        if case.id == self.interrupt_at:
            raise KeyboardInterrupt
        if case.id == self.fail_on:
            raise RuntimeError("model exploded")
        type(self).calls.append(case.id)
        ramp = np.linspace(0, 255, 48, dtype=np.float32)[None, :, None]
        frames = [
            np.broadcast_to(np.roll(ramp, 2 * t + seed, axis=1), (32, 48, 3)) for t in range(6)
        ]
        write_video(out_path, np.stack(frames).astype(np.uint8), 8.0)


class CountingMetric(Metric):
    name = "frame_count"
    calls: list[str] = []

    def score(self, video: DecodedVideo, case: Case, context) -> MetricResult:
        type(self).calls.append(case.id)
        return MetricResult(float(video.num_frames), {"h": video.height})


@pytest.fixture
def mini(tmp_path):
    return load_suite("mini", tmp_path / "mini").select(limit=4)


@pytest.fixture(autouse=True)
def _reset_counters():
    CountingAdapter.calls, CountingMetric.calls = [], []
    CountingAdapter.interrupt_at = CountingAdapter.fail_on = None


def test_end_to_end_on_mini_stores_videos_scores_and_manifest(tmp_path, mini):
    store, summary = run_model(
        CountingAdapter(),
        mini,
        [CountingMetric(), MotionAmplitude()],
        seed=3,
        runs_dir=tmp_path / "runs",
    )
    assert summary.generated == 4 and summary.scored == 8 and not summary.failures
    manifest = json.loads((store.root / "manifest.json").read_text())
    assert (
        manifest["seed"] == 3
        and manifest["suite"]["name"] == "mini"
        and manifest["model"]["model"] == "counting"
    )
    assert "torch" in manifest["packages"]
    latest = store.latest()
    assert latest[("singleface_astronaut", "frame_count")].value == 6.0
    assert latest[("singleface_astronaut", "motion_amplitude")].value > 0
    video = decode_video(store.video_path("singleface_astronaut"))
    assert video.frames.shape == (6, 32, 48, 3)


def test_interrupted_run_resumes_without_repeating_finished_work(tmp_path, mini):
    CountingAdapter.interrupt_at = mini.cases[2].id
    with pytest.raises(KeyboardInterrupt):
        run_model(CountingAdapter(), mini, [CountingMetric()], runs_dir=tmp_path / "runs")
    assert CountingAdapter.calls == [c.id for c in mini.cases[:2]]
    store = ResultStore(next((tmp_path / "runs").iterdir()))
    stamps = {p.name: p.stat().st_mtime_ns for p in store.videos_dir.glob("*.mp4")}
    assert len(stamps) == 2 and not list(store.videos_dir.glob(".*"))  # no half-written file left
    # a crash (SIGKILL) mid-append leaves a torn last line: it must be ignored, not fatal
    with open(store.scores_path, "a") as handle:
        handle.write('{"case": "torn", "metric": "frame_co')

    CountingAdapter.interrupt_at = None
    CountingAdapter.calls, CountingMetric.calls = [], []
    store2, summary = run_model(
        CountingAdapter(), mini, [CountingMetric()], runs_dir=tmp_path / "runs"
    )
    assert store2.root == store.root  # same command, same folder
    assert CountingAdapter.calls == [c.id for c in mini.cases[2:]]  # nothing regenerated
    assert CountingMetric.calls == [c.id for c in mini.cases[2:]]  # nothing rescored
    assert summary.reused_videos == 2 and summary.reused_scores == 2
    assert {
        p.name: p.stat().st_mtime_ns for p in store.videos_dir.glob("*.mp4") if p.name in stamps
    } == stamps
    assert len(store2.done()) == 4

    CountingAdapter.calls, CountingMetric.calls = [], []
    _, summary = run_model(CountingAdapter(), mini, [CountingMetric()], runs_dir=tmp_path / "runs")
    assert CountingAdapter.calls == [] and CountingMetric.calls == [] and summary.reused_scores == 4


def test_a_failing_case_is_recorded_and_the_run_goes_on_then_retried(tmp_path, mini):
    CountingAdapter.fail_on = mini.cases[1].id
    store, summary = run_model(
        CountingAdapter(), mini, [CountingMetric()], runs_dir=tmp_path / "runs"
    )
    assert [(r.case, r.metric) for r in summary.failures] == [(mini.cases[1].id, GENERATE)]
    assert "model exploded" in summary.failures[0].error
    assert len(CountingMetric.calls) == 3
    CountingAdapter.fail_on = None
    _, summary = run_model(CountingAdapter(), mini, [CountingMetric()], runs_dir=tmp_path / "runs")
    assert CountingAdapter.calls[-1] == mini.cases[1].id and not summary.failures


def test_other_seed_or_config_gets_its_own_folder(tmp_path, mini):
    a, _ = run_model(
        CountingAdapter(), mini.select(limit=1), [], seed=0, runs_dir=tmp_path / "runs"
    )
    b, _ = run_model(
        CountingAdapter(), mini.select(limit=1), [], seed=1, runs_dir=tmp_path / "runs"
    )
    assert a.root != b.root
    with pytest.raises(RunConflictError):
        run_model(CountingAdapter(), mini.select(limit=1), [], seed=2, out_dir=a.root)


def test_corrupt_video_is_a_clear_per_case_error(tmp_path, mini):
    videos = tmp_path / "videos"
    videos.mkdir()
    CountingAdapter().generate(mini.cases[0], 0, videos / f"{mini.cases[0].id}.mp4")
    (videos / f"{mini.cases[1].id}.mp4").write_bytes(
        b"\x00\x00\x00\x18ftypmp42 definitely not a video"
    )
    (videos / "not_a_case.mp4").write_bytes(b"")
    store, summary, unmatched = score_videos(
        videos, mini, [CountingMetric()], runs_dir=tmp_path / "runs"
    )
    assert unmatched == ["not_a_case"]
    assert summary.scored == 1
    [failure] = summary.failures
    assert (
        failure.case == mini.cases[1].id
        and "corrupt" in failure.error
        and f"{mini.cases[1].id}.mp4" in failure.error
    )
    assert store.latest()[(mini.cases[0].id, "frame_count")].value == 6.0


def test_score_refuses_a_folder_with_no_matching_names(tmp_path, mini):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "video1.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="expected files like singleface_astronaut.mp4"):
        score_videos(videos, mini, [], runs_dir=tmp_path / "runs")


def test_decode_video_errors_name_the_file(tmp_path):
    with pytest.raises(VideoError, match="does not exist"):
        decode_video(tmp_path / "none.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"garbage" * 100)
    with pytest.raises(VideoError, match=r"bad\.mp4 is corrupt"):
        decode_video(bad)


def test_model_by_import_path_and_unknown_model(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(
        textwrap.dedent("""
        from kaleido_bench.baselines.base import ModelAdapter

        class Mine(ModelAdapter):
            def generate(self, case, seed, out_path):
                pass
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert get_model_class("my_models:Mine").__name__ == "Mine"
    with pytest.raises(UnknownNameError, match="unknown model 'nope'"):
        get_model_class("nope")
    with pytest.raises(UnknownNameError, match="cannot import"):
        get_model_class("my_models:Missing")


def test_write_video_is_byte_identical_for_the_same_frames(tmp_path):
    """x264's lookahead made bytes depend on earlier work in the process (e.g. a decode)."""
    rng = np.random.default_rng(0)
    blocks = (rng.random((9, 30, 52, 3)) * 255).astype(np.uint8)
    frames = np.ascontiguousarray(blocks.repeat(8, axis=1).repeat(8, axis=2))  # 240 x 416
    outputs = []
    for name in "abc":
        write_video(tmp_path / f"{name}.mp4", frames, 16.0)
        decode_video(tmp_path / f"{name}.mp4")
        outputs.append((tmp_path / f"{name}.mp4").read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
