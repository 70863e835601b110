"""The `still` baseline (first reference held) and the `videos` adapter (a folder of mp4 files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from kaleido_bench.baselines.base import MODELS
from kaleido_bench.baselines.still import ModelOptionError, StillAdapter, fit_pad_white
from kaleido_bench.baselines.videos import VideosAdapter
from kaleido_bench.core.cases import Case, ReferenceImage, Role
from kaleido_bench.core.errors import BenchError, MissingImageError, VideoError
from kaleido_bench.core.video import decode_video, write_video


@pytest.fixture(scope="module")
def refs(tmp_path_factory) -> dict[str, ReferenceImage]:
    folder = tmp_path_factory.mktemp("refs")
    out = {}
    for name, role in (
        ("astronaut", Role.HUMAN),
        ("rocket", Role.OBJECT),
        ("chelsea", Role.OBJECT),
    ):
        path = folder / f"{name}.png"
        Image.fromarray(getattr(data, name)()).save(path)
        out[name] = ReferenceImage(path.name, path, role)
    return out


def test_adapters_register_on_import():
    assert MODELS.get("still") is StillAdapter
    assert MODELS.get("videos") is VideosAdapter


# --- still ---------------------------------------------------------------------------------------


def test_fit_pad_white_follows_kaleido_preprocessing():
    # 512x512 into 240x416: 240x240 (int() of the scaled size), centred, white left and right
    out = fit_pad_white(Image.fromarray(data.astronaut()), 240, 416)
    assert out.shape == (240, 416, 3)
    left = (416 - 240) // 2
    assert np.all(out[:, :left] == 255) and np.all(out[:, left + 240 :] == 255)
    expected = np.asarray(
        Image.fromarray(data.astronaut()).resize((240, 240), Image.Resampling.LANCZOS)
    )
    assert np.array_equal(out[:, left : left + 240], expected)
    # a wide image is padded above and below
    wide = fit_pad_white(Image.fromarray(data.rocket()), 240, 240)  # 427x640 -> 240x160
    assert np.all(wide[:40] == 255) and np.all(wide[200:] == 255)


def test_still_shows_the_first_reference_on_every_frame(refs, tmp_path):
    case = Case("humanobj_1", "p", (refs["astronaut"], refs["rocket"]))
    model = StillAdapter(num_frames=7)
    model.generate(case, 0, tmp_path / "still.mp4")
    video = decode_video(tmp_path / "still.mp4")
    expected = fit_pad_white(Image.open(refs["astronaut"].path), 240, 416).astype(np.int16)
    other = fit_pad_white(Image.open(refs["rocket"].path), 240, 416).astype(np.int16)
    assert video.frames.shape == (7, 240, 416, 3)
    for frame in video.frames.astype(np.int16):
        assert np.abs(frame - expected).mean() < 3.0  # H.264 at crf 18
        assert np.abs(frame - other).mean() > 30.0


def test_still_has_the_requested_size_length_and_rate(refs, tmp_path):
    model = StillAdapter(height="96", width="160", num_frames="5", fps="8")
    model.generate(Case("singleobj_1", "p", (refs["chelsea"],)), 0, tmp_path / "out.mp4")
    video = decode_video(tmp_path / "out.mp4")
    assert video.frames.shape == (5, 96, 160, 3)
    assert video.fps == pytest.approx(8, abs=0.01)
    caps = model.capabilities
    assert (caps.height, caps.width, caps.num_frames, caps.fps, caps.max_references) == (
        96,
        160,
        5,
        8.0,
        None,
    )


def test_still_defaults_and_config():
    caps = StillAdapter().capabilities
    assert (caps.height, caps.width, caps.num_frames, caps.fps) == (240, 416, 33, 16.0)
    assert StillAdapter(num_frames="33").config() == StillAdapter().config()
    assert StillAdapter(fps=24).config() != StillAdapter().config()


def test_still_without_references_is_white():
    frames = StillAdapter(num_frames=2).render(Case("t2v_1", "p", ()))
    assert np.all(frames == 255)


def test_still_refuses_bad_options_and_names_a_missing_image(tmp_path):
    with pytest.raises(ModelOptionError, match="num_frame"):
        StillAdapter(num_frame=9)
    with pytest.raises(ModelOptionError):
        StillAdapter(width=417)
    ref = ReferenceImage("gone.jpg", tmp_path / "gone.jpg", Role.FACE)
    with pytest.raises(MissingImageError, match="gone.jpg"):
        StillAdapter().render(Case("singleface_1", "p", (ref,)))


# --- videos --------------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path) -> Path:
    videos = tmp_path / "kling"
    frames = np.zeros((4, 64, 96, 3), np.uint8)
    frames[:, :, :48] = (200, 40, 40)
    write_video(videos / "singleobj_1.mp4", frames, 15)
    (videos / "notes.txt").write_text("not a video")
    return videos


def test_videos_places_the_case_file_at_the_output(folder, tmp_path):
    model = VideosAdapter(dir=str(folder))
    out = tmp_path / "run" / "videos" / "singleobj_1.mp4"
    model.generate(Case("singleobj_1", "p", ()), seed=0, out_path=out)
    assert out.read_bytes() == (folder / "singleobj_1.mp4").read_bytes()
    video = decode_video(out)
    assert video.frames.shape == (4, 64, 96, 3)
    assert video.fps == pytest.approx(15, abs=0.01)
    assert sorted(p.name for p in out.parent.iterdir()) == ["singleobj_1.mp4"]  # no temp file left
    model.generate(
        Case("singleobj_1", "p", ()), seed=1, out_path=out
    )  # again over an existing file
    assert out.read_bytes() == (folder / "singleobj_1.mp4").read_bytes()


def test_videos_missing_case_names_the_expected_path(folder, tmp_path):
    model = VideosAdapter(dir=str(folder))
    with pytest.raises(VideoError, match="singleface_7.mp4"):
        model.generate(Case("singleface_7", "p", ()), 0, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


def test_videos_needs_an_existing_folder(tmp_path):
    with pytest.raises(ModelOptionError, match="dir="):
        VideosAdapter()
    assert issubclass(ModelOptionError, BenchError)
    with pytest.raises(VideoError, match="nowhere"):
        VideosAdapter(dir=str(tmp_path / "nowhere"))
    with pytest.raises(ModelOptionError):
        VideosAdapter(dir=str(tmp_path), fps=16)


def test_videos_config_holds_the_absolute_folder(folder, tmp_path, monkeypatch):
    other = tmp_path / "vidu"
    other.mkdir()
    config = VideosAdapter(dir=str(folder)).config()
    assert config["options"]["dir"] == str(folder.resolve())
    assert VideosAdapter(dir=str(other)).config() != config
    monkeypatch.chdir(folder.parent)
    assert VideosAdapter(dir="kling").config() == config  # a relative path names the same run
