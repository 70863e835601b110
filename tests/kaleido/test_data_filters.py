"""Each data-pipeline filter rejects an image built to fail it and passes one that should pass
(real packaged photos: skimage's astronaut / chelsea / coffee, matplotlib's grace_hopper)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image
from skimage import data

from kaleido_bench.kaleido.data import filters as f
from kaleido_bench.kaleido.data.records import Box


@pytest.fixture(scope="module")
def faces():
    return f.FaceDetector(upsample=1)


def _grace_hopper() -> np.ndarray:
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        return np.asarray(Image.open(fh).convert("RGB"))


def test_box_size_rejects_a_speck_and_keeps_a_subject():
    frame = (300, 400)
    assert not f.box_size_ok(Box(10, 10, 20, 20), frame, 0.02)  # 100 px of 120000
    assert f.box_size_ok(Box(50, 50, 250, 250), frame, 0.02)


def test_overlap_drops_both_boxes_of_a_pair_and_keeps_the_apart_one():
    boxes = [Box(0, 0, 100, 100), Box(5, 5, 100, 100), Box(200, 200, 260, 260)]
    assert f.box_iou(boxes[0], boxes[2]) == 0.0
    assert f.box_iou(boxes[0], boxes[0]) == pytest.approx(1.0)
    assert f.overlapping_subjects(boxes, 0.7) == {0, 1}
    assert f.overlapping_subjects(boxes[::2], 0.7) == set()


def test_dark_rejects_a_night_version_of_the_photo():
    photo = data.coffee()
    night = (photo * 0.1).astype(np.uint8)
    assert f.bright_enough(photo, None, 40.0)
    assert not f.bright_enough(night, None, 40.0)
    mask = np.zeros(photo.shape[:2], dtype=bool)
    mask[100:200, 100:200] = True  # only the subject's pixels count
    lit_background = photo.copy()
    lit_background[mask] = 5
    assert not f.bright_enough(lit_background, mask, 40.0)


def test_fragmented_rejects_scattered_pieces_and_keeps_one_blob():
    blob = np.zeros((100, 100), dtype=bool)
    blob[20:80, 30:70] = True
    assert f.mask_components(blob, 0.01) == 1
    assert f.not_fragmented(blob, 3, 0.01)
    confetti = np.zeros((100, 100), dtype=bool)
    confetti[5::20, 5::20] = True  # 25 separate dots
    confetti[6::20, 6::20] = True
    assert f.mask_components(confetti, 0.01) == 25
    assert not f.not_fragmented(confetti, 3, 0.01)
    assert not f.not_fragmented(np.zeros((10, 10), dtype=bool), 3, 0.01)  # empty = nothing cut out
    specks = blob.copy()
    specks[0, 0] = specks[99, 99] = True  # below 1% of the mask: noise, not parts
    assert f.not_fragmented(specks, 1, 0.01)


def test_blurry_rejects_a_gaussian_blurred_photo():
    photo = data.astronaut()
    blurred = cv2.GaussianBlur(photo, (0, 0), sigmaX=6)
    assert f.laplacian_variance(photo) > 10 * f.laplacian_variance(blurred)
    assert f.sharp_enough(photo, 50.0)
    assert not f.sharp_enough(blurred, 50.0)


def test_person_without_face_rejects_a_hidden_face_and_ignores_objects(faces):
    portrait = _grace_hopper()
    assert faces.count(portrait) == 1
    assert f.face_visible("woman", portrait, faces)
    hidden = portrait.copy()
    hidden[100:360, 150:400] = 128  # the face (dlib's box ~ (180,139)-(366,325)) covered
    assert faces.count(hidden) == 0
    assert not f.face_visible("a woman", hidden, faces)
    assert not f.face_visible("people", hidden, faces)
    assert f.face_visible("cup", data.coffee(), faces)  # not a person: no face needed
    assert f.is_person("Young Man") and not f.is_person("mug")


def test_clip_similarity_threshold_splits_two_images(data_models):
    """Random tiny CLIP: the scores mean nothing, but the filter must cut exactly at its threshold."""
    clip = f.ClipScorer(data_models["clip"])
    cat, coffee = clip.similarity(data.chelsea(), "a cat"), clip.similarity(data.coffee(), "a cat")
    assert min(cat, coffee) >= -1.0 and max(cat, coffee) <= 1.0 and cat != coffee
    middle = (cat + coffee) / 2
    assert f.clip_match(max(cat, coffee), middle) and not f.clip_match(min(cat, coffee), middle)
    assert clip.similarity(data.chelsea(), "a cat") == pytest.approx(cat)  # deterministic


def test_cutout_failures_names_every_failed_filter(data_models, faces):
    config = f.FilterConfig(clip_model=str(data_models["clip"]), min_clip_similarity=-1.0)
    clip = f.ClipScorer(data_models["clip"])
    photo = data.chelsea()
    blob = np.ones(photo.shape[:2], dtype=bool)
    assert f.cutout_failures("cat", photo, blob, config, clip, faces) == []
    dark_blurry = cv2.GaussianBlur((photo * 0.1).astype(np.uint8), (0, 0), 6)
    confetti = np.zeros_like(blob)
    confetti[5::20, 5::20] = True
    assert f.cutout_failures("cat", dark_blurry, confetti, config, clip, faces) == [
        "dark",
        "fragmented",
        "blurry",
    ]
    assert f.cutout_failures("man", photo, blob, config, clip, faces) == ["face"]
    assert set(f.REASONS) == {"box_size", "overlap", "clip", "face", "dark", "fragmented", "blurry"}
