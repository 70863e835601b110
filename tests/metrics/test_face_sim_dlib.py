"""face_sim_dlib on real faces (skimage's astronaut, matplotlib's Grace Hopper) with dlib's shipped models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kaleido_bench.core.cases import Case, ReferenceImage, Role
from kaleido_bench.core.video import DecodedVideo
from kaleido_bench.metrics import face_rules
from kaleido_bench.metrics.face_sim_dlib import FaceSimDlib
from kaleido_bench.metrics.weights import locate

pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()  # 512x512, one face around x 175-265, y 76-166


@pytest.fixture(scope="module")
def grace_hopper() -> np.ndarray:
    from matplotlib import cbook

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as image:
        return np.array(image.convert("RGB"))


@pytest.fixture(scope="module")
def module_ctx():
    """One context for the module: the dlib models load once."""
    from kaleido_bench.metrics.context import ScoringContext

    with ScoringContext.create("cpu") as context:
        yield context


@pytest.fixture
def ctx(module_ctx):
    """The module's context with a fresh reference cache for each test."""
    module_ctx.cache.clear()
    return module_ctx


@pytest.fixture(scope="module")
def metric(module_ctx) -> FaceSimDlib:
    metric = FaceSimDlib()
    metric.setup(module_ctx)
    return metric


def _reference(
    tmp_path: Path, image: np.ndarray, relpath: str = "Images/singleface/woman/1.png"
) -> ReferenceImage:
    path = tmp_path / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return ReferenceImage(relpath, path, Role.FACE, "Woman")


def _video(*frames: np.ndarray) -> DecodedVideo:
    return DecodedVideo(np.stack([np.ascontiguousarray(f) for f in frames]), 16.0)


def _frame(image: np.ndarray, size: int = 512) -> np.ndarray:
    """`image` in the top-left corner of a black size x size frame."""
    out = np.zeros((size, size, 3), np.uint8)
    out[: image.shape[0], : image.shape[1]] = image[:size, :size]
    return out


def test_weights_resolve_to_the_files_shipped_in_face_recognition_models():
    for weight in FaceSimDlib.weights:
        found = locate(weight)
        assert found.found and "face_recognition_models" in str(found.path), weight.filename


def test_same_person_scores_higher_than_another_person(
    ctx, metric, tmp_path, astronaut, grace_hopper
):
    case = Case("singleface_1", "a woman", (_reference(tmp_path, astronaut),))
    flipped = astronaut[:, ::-1]
    cropped = _frame(astronaut[0:320, 60:380])  # no suit patch: the false positive HOG finds there
    same = metric.score(_video(flipped, cropped), case, ctx)
    other = metric.score(_video(_frame(grace_hopper), _frame(grace_hopper[:, ::-1])), case, ctx)
    assert same.details["frames_with_face"] == other.details["frames_with_face"] == 32
    assert same.value > 0.95  # measured 0.992
    assert other.value < same.value - 0.05  # measured 0.882
    assert same.details["reference"] == "Images/singleface/woman/1.png"


def test_frames_without_a_face_are_skipped_and_a_video_without_faces_is_zero(
    ctx, metric, tmp_path, astronaut
):
    case = Case("singlehuman_2", "p", (_reference(tmp_path, astronaut),))
    blank = np.full((512, 512, 3), 90, np.uint8)
    mixed = metric.score(
        _video(astronaut, blank), case, ctx
    )  # linspace(0, 1, 32): 31 x frame 0, 1 x frame 1
    assert mixed.details["frames_with_face"] == 31
    assert mixed.details["frame_scores"][-1] is None
    assert mixed.value == pytest.approx(
        np.mean([s for s in mixed.details["frame_scores"] if s is not None])
    )
    empty = metric.score(_video(blank, blank), case, ctx)
    assert empty.value == 0.0 and empty.details["frames_with_face"] == 0


def test_reference_without_a_face_is_absent(ctx, metric, tmp_path, astronaut):
    case = Case(
        "faceobj_3",
        "p",
        (_reference(tmp_path, np.full((200, 200, 3), 90, np.uint8), "Images/x/man/blank.png"),),
    )
    result = metric.score(_video(astronaut), case, ctx)
    assert result.value is None
    assert "no face found in reference Images/x/man/blank.png" in result.details["absent"]


def test_non_face_cases_and_cases_without_a_person_reference_are_absent(ctx, tmp_path, astronaut):
    untouched = FaceSimDlib()  # no setup: absent cases never load a model
    ref = _reference(tmp_path, astronaut)
    assert (
        "not a face case"
        in untouched.score(_video(astronaut), Case("multiface_1", "p", (ref,)), ctx).details[
            "absent"
        ]
    )
    thing = _reference(tmp_path, astronaut, "Images/humanobj/thing/1.png")
    assert (
        "no reference under"
        in untouched.score(_video(astronaut), Case("humanobj_1", "p", (thing,)), ctx).details[
            "absent"
        ]
    )
    assert untouched._detector is None


def test_pad_retry_finds_a_tightly_cropped_real_face(metric, astronaut):
    tight = np.ascontiguousarray(astronaut[90:160, 185:258])
    assert (
        len(metric._detect(tight)) == 0
    )  # the premise: HOG misses the face without the grey border
    descriptor = metric.describe(tight)
    assert descriptor is not None
    full = metric.describe(astronaut)
    assert face_rules.frame_scores(full, descriptor[None])[0] > 0.9


def test_reference_described_once_per_run(ctx, metric, tmp_path, astronaut, monkeypatch):
    ctx.cache.clear()
    ref = _reference(tmp_path, astronaut)
    copy = _reference(tmp_path, astronaut, "Images/other/woman/copy.png")  # same bytes, other path
    calls = []
    original = metric.describe
    monkeypatch.setattr(metric, "describe", lambda rgb: calls.append(rgb.shape) or original(rgb))
    video = _video(astronaut)
    metric.score(video, Case("singleface_1", "p", (ref,)), ctx)
    metric.score(_video(astronaut[:, ::-1]), Case("singleface_2", "p", (copy,)), ctx)
    assert calls == [
        (512, 512, 3),
        (512, 512, 3),
        (512, 512, 3),
    ]  # reference once, each video's one frame once


def test_real_generated_video_matches_a_face_from_itself(ctx, tmp_path, shared_dir):
    from kaleido_bench.core.video import decode_video

    video = decode_video(
        shared_dir / "opens2v" / "videos" / "singleface_3.mp4"
    )  # 69 frames, 480x832
    case = Case(
        "singleface_3",
        "p",
        (_reference(tmp_path, video.frames[0], "Images/singleface/crop_man/11.png"),),
    )
    result = FaceSimDlib(num_frames=4)
    result.setup(ctx)
    result = result.score(video, case, ctx)
    assert result.details["frames_sampled"] == 4 and result.details["frames_with_face"] == 4
    assert result.value > 0.95  # measured 0.996 on all 32 frames
