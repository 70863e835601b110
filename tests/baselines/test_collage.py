"""The `collage` baseline and its cut-out helper, on real packaged photos (skimage, matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image, ImageDraw
from skimage import data

from kaleido_bench.baselines.base import MODELS
from kaleido_bench.baselines.collage import (
    CollageAdapter,
    cover_resize,
    neutral_canvas,
    stable_seed,
)
from kaleido_bench.baselines.cutout import cut_out, subject_mask
from kaleido_bench.baselines.still import ModelOptionError
from kaleido_bench.core.cases import Case, ReferenceImage, Role
from kaleido_bench.core.errors import MissingImageError
from kaleido_bench.core.video import decode_video

NEAR_WHITE = 235


def horse_rgb() -> np.ndarray:
    """skimage's horse: a black silhouette on a white backdrop (True = white)."""
    return np.repeat(data.horse()[..., None].astype(np.uint8) * 255, 3, axis=2)


def ring_on_white() -> np.ndarray:
    """A red ring with a WHITE middle on a white backdrop: the middle belongs to the subject."""
    image = Image.new("RGB", (300, 240), "white")
    ImageDraw.Draw(image).ellipse((60, 40, 240, 200), fill=(200, 30, 30))
    ImageDraw.Draw(image).ellipse((110, 80, 190, 160), fill=(255, 255, 255))
    return np.asarray(image)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("refs")
    arrays = {
        "astronaut": data.astronaut(),
        "coffee": data.coffee(),
        "chelsea": data.chelsea(),
        "rocket": data.rocket(),
        "horse": horse_rgb(),
        "ring": ring_on_white(),
    }
    paths = {}
    for name, array in arrays.items():
        paths[name] = folder / f"{name}.png"
        Image.fromarray(array).save(paths[name])
    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        paths["grace_hopper"] = folder / "grace_hopper.png"
        Image.open(handle).convert("RGB").save(paths["grace_hopper"])
    return paths


def make_case(case_id: str, images: dict[str, Path], *refs: tuple[str, Role]) -> Case:
    return Case(
        case_id,
        "a prompt",
        tuple(ReferenceImage(f"{name}.png", images[name], role) for name, role in refs),
    )


# --- cut-out ---------------------------------------------------------------------------------


def test_white_backdrop_silhouette_is_keyed_out():
    rgb = horse_rgb()
    mask = subject_mask(rgb)
    assert mask is not None
    truth = ~data.horse()
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.9


def test_white_inside_a_keyed_subject_is_kept():
    mask = subject_mask(ring_on_white())
    assert mask is not None
    assert mask[120, 150]  # the white middle of the ring
    assert not mask[5, 5] and not mask[230, 290]  # the backdrop


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "rocket", "grace_hopper"])
def test_cluttered_photo_is_pasted_whole(images, name):
    image = Image.open(images[name])
    cutout = cut_out(image)
    assert not cutout.keyed
    assert cutout.rgb.shape == (image.height, image.width, 3)
    assert np.all(cutout.alpha == 1.0)


def test_keyed_cutout_is_cropped_to_the_subject():
    cutout = cut_out(Image.fromarray(horse_rgb()))
    assert cutout.keyed
    assert cutout.rgb.shape[:2] == cutout.alpha.shape
    assert cutout.rgb.shape[0] < 328 and cutout.rgb.shape[1] < 400


# --- scene pieces ------------------------------------------------------------------------------


def test_stable_seed_is_the_same_in_every_process():
    # a fixed value: Python's salted hash() would change it between runs
    assert stable_seed("singleobj_1", 42) == 17203984751544305389
    assert stable_seed("singleobj_1", 43) != stable_seed("singleobj_1", 42)


@pytest.mark.parametrize("size", [(600, 200), (200, 600), (240, 416)])
def test_cover_resize_fills_the_frame(size):
    image = Image.fromarray(data.coffee()).resize(size)
    out = cover_resize(image, 240, 416)
    assert out.shape == (240, 416, 3)


def test_neutral_canvas_is_a_soft_grey_not_white():
    canvas = neutral_canvas(240, 416)
    assert canvas.max() < NEAR_WHITE
    assert canvas[0].mean() > canvas[-1].mean()  # light top, darker floor


# --- the adapter -------------------------------------------------------------------------------


def test_collage_registers_on_import():
    assert MODELS.get("collage") is CollageAdapter


def test_same_seed_same_frames_other_seed_other_frames(images):
    case = make_case("humanobj_1", images, ("astronaut", Role.HUMAN), ("horse", Role.OBJECT))
    model = CollageAdapter(num_frames=9)
    a, b, c = (
        model.render(case, 0),
        CollageAdapter(num_frames=9).render(case, 0),
        model.render(case, 1),
    )
    assert np.array_equal(a, b)
    assert np.abs(a.astype(np.int16) - c).mean() > 2.0
    other_case = make_case("humanobj_2", images, ("astronaut", Role.HUMAN), ("horse", Role.OBJECT))
    assert not np.array_equal(a, model.render(other_case, 0))  # the case id enters the seed


def test_the_same_seed_writes_the_same_video(images, tmp_path):
    case = make_case("humanobj_1", images, ("astronaut", Role.HUMAN), ("horse", Role.OBJECT))
    model = CollageAdapter(num_frames=9)
    model.generate(case, 0, tmp_path / "a.mp4")
    model.generate(case, 0, tmp_path / "b.mp4")
    model.generate(case, 1, tmp_path / "c.mp4")
    a, b, c = (decode_video(tmp_path / f"{name}.mp4").frames.astype(np.int16) for name in "abc")
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    assert np.array_equal(a, b)
    assert np.abs(a - c).mean() > 2.0
    assert np.abs(a - model.render(case, 0)).mean() < 2.0  # the video holds the drawn frames


def test_the_camera_moves_every_frame(images):
    case = make_case("singleobj_2", images, ("chelsea", Role.OBJECT), ("coffee", Role.BACKGROUND))
    frames = CollageAdapter().render(case, seed=0).astype(np.int16)
    steps = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    assert steps.min() > 0.5
    assert np.abs(frames[-1] - frames[0]).mean() > 5.0


def subject_pixels(
    images: dict[str, Path], name: str, seed: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Frame 0 of a one-subject collage and the mask of pixels that differ from the empty scene.

    Same case id and seed: the camera is the same, so the empty case shows the exact canvas.
    """
    model = CollageAdapter(num_frames=1)
    frame = model.render(make_case("singleobj_9", images, (name, Role.OBJECT)), seed)[0]
    empty = model.render(make_case("singleobj_9", images), seed)[0]
    changed = np.abs(frame.astype(np.int16) - empty).sum(axis=2) > 30
    return frame, changed


def bounding_box(mask: np.ndarray) -> tuple[slice, slice]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def corners(array: np.ndarray, share: float = 0.08) -> np.ndarray:
    """The four corner patches (`share` of each side) of an (H, W, ...) array, stacked as pixels."""
    h, w = array.shape[:2]
    ph, pw = max(1, int(share * h)), max(1, int(share * w))
    patches = [array[:ph, :pw], array[:ph, -pw:], array[-ph:, :pw], array[-ph:, -pw:]]
    return np.concatenate([p.reshape(-1, *array.shape[2:]) for p in patches])


def near_white_share(rgb: np.ndarray) -> float:
    return float((rgb >= NEAR_WHITE).all(axis=-1).mean())


@pytest.mark.parametrize("name", ["horse", "ring"])
def test_white_backdrop_subject_is_cut_out(images, name):
    frame, changed = subject_pixels(images, name)
    box = bounding_box(changed)
    source = np.asarray(Image.open(images[name]))
    source_box = bounding_box((source < NEAR_WHITE).any(axis=2))
    # around the subject the reference is white backdrop; the frame shows the grey canvas there
    assert near_white_share(corners(source[source_box])) > 0.95
    assert near_white_share(corners(frame[box])) < 0.02
    if name == "horse":
        assert changed[box].mean() < 0.8  # a silhouette, not a rectangle
    else:  # the white middle of the ring is part of the subject and is pasted
        h, w = changed[box].shape
        assert near_white_share(frame[box][h // 2 - 2 : h // 2 + 3, w // 2 - 2 : w // 2 + 3]) == 1.0


def test_cluttered_subject_is_pasted_with_its_background(images):
    frame, changed = subject_pixels(images, "chelsea")
    box = bounding_box(changed)
    assert changed[box].mean() > 0.97  # a filled rectangle
    height, width = changed[box].shape
    assert abs(width / height - 451 / 300) < 0.05  # the whole photo, aspect kept


def test_background_reference_fills_the_frame(images):
    case = make_case("singleobj_3", images, ("coffee", Role.BACKGROUND))
    frames = CollageAdapter(num_frames=5).render(case, seed=0)
    coarse = np.asarray(
        Image.fromarray(cover_resize(Image.open(images["coffee"]), 240, 416)).resize(
            (14, 8), Image.Resampling.BOX
        ),
        np.float32,
    )
    canvas = neutral_canvas(240, 416).astype(np.float32)
    for frame in frames:
        small = np.asarray(Image.fromarray(frame).resize((14, 8), Image.Resampling.BOX), np.float32)
        # the coffee photo seen through a small zoom / pan: the same picture at a coarse scale
        assert np.corrcoef(small.ravel(), coarse.ravel())[0, 1] > 0.9
        assert np.abs(frame - canvas).mean() > 40  # no neutral canvas shows anywhere
        for edge in (frame[:2], frame[-2:], frame[:, :2], frame[:, -2:]):
            assert edge.reshape(-1, 3).std(axis=0).max() > 10  # no flat padding band


def test_every_reference_but_the_background_is_a_subject(images):
    case = make_case(
        "multiobject_1",
        images,
        ("chelsea", Role.OBJECT),
        ("coffee", Role.BACKGROUND),
        ("rocket", Role.OBJECT),
    )
    frame = CollageAdapter(num_frames=1).render(case, seed=0)[0]
    background_only = CollageAdapter(num_frames=1).render(
        make_case("multiobject_1", images, ("coffee", Role.BACKGROUND)), seed=0
    )[0]
    changed = np.abs(frame.astype(np.int16) - background_only).sum(axis=2) > 30
    half = changed.shape[1] // 2
    assert (
        changed[:, :half].mean() > 0.1 and changed[:, half:].mean() > 0.1
    )  # one subject each side


def test_output_has_the_requested_size_length_and_rate(images, tmp_path):
    case = make_case("faceobj_1", images, ("grace_hopper", Role.FACE), ("horse", Role.OBJECT))
    # options arrive as strings from `-o key=value`
    model = CollageAdapter(height="128", width="224", num_frames="9", fps="12")
    model.generate(case, 0, tmp_path / "out.mp4")
    video = decode_video(tmp_path / "out.mp4")
    assert video.frames.shape == (9, 128, 224, 3)
    assert video.fps == pytest.approx(12, abs=0.01)
    caps = model.capabilities
    assert (caps.height, caps.width, caps.num_frames, caps.fps) == (128, 224, 9, 12.0)
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temp file left behind


def test_defaults_are_the_small_fast_size():
    caps = CollageAdapter().capabilities
    assert (caps.height, caps.width, caps.num_frames, caps.fps) == (240, 416, 33, 16.0)


def test_config_holds_parsed_options_and_the_algorithm_version():
    assert CollageAdapter(height="240").config() == CollageAdapter().config()
    assert CollageAdapter(height=256).config() != CollageAdapter().config()
    assert "algorithm_version" in CollageAdapter().config()


@pytest.mark.parametrize(
    "options", [{"heigth": 240}, {"height": 241}, {"width": "wide"}, {"num_frames": 0}, {"fps": -1}]
)
def test_bad_options_are_refused(options):
    with pytest.raises(ModelOptionError):
        CollageAdapter(**options)


def test_missing_or_corrupt_reference_names_the_file(images, tmp_path):
    missing = tmp_path / "nowhere.png"
    case = Case("singleobj_4", "p", (ReferenceImage("nowhere.png", missing, Role.OBJECT),))
    with pytest.raises(MissingImageError, match="nowhere.png"):
        CollageAdapter(num_frames=1).render(case, 0)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not a png")
    case = Case("singleobj_4", "p", (ReferenceImage("corrupt.png", corrupt, Role.BACKGROUND),))
    with pytest.raises(MissingImageError, match="corrupt.png"):
        CollageAdapter(num_frames=1).render(case, 0)
