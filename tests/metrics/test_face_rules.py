"""OpenS2V FaceSim rules (`eval/get_facesim.py`), checked against hand-computed values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kaleido_bench.core.cases import Case, ReferenceImage, Role
from kaleido_bench.core.video import DecodedVideo
from kaleido_bench.metrics import face_rules


def _case(case_id: str, *relpaths: str) -> Case:
    refs = tuple(ReferenceImage(rel, Path("/nowhere") / rel, Role.OBJECT) for rel in relpaths)
    return Case(case_id, "a prompt", refs)


@pytest.mark.parametrize(
    ("case_id", "scored"),
    [
        ("singlehuman_1", True),
        ("singleface_3", True),
        ("faceobj_14", True),
        ("humanobj_2", True),
        ("singleobj_1", False),
        ("multiface_4", False),
        ("multihuman_5", False),
        ("multiobject_6", False),
    ],
)
def test_only_the_four_face_families_are_scored(case_id, scored):
    assert face_rules.is_face_case(case_id) is scored


def test_reference_is_the_first_path_under_a_man_or_woman_folder():
    case = _case(
        "humanobj_1",
        "Images/humanobj/thing/clothes/2.jpg",
        "Images/humanobj/human/crop_woman/celebrity/4.jpg",
        "Images/humanobj/human/man/7.jpg",
    )
    assert (
        face_rules.face_reference(case).relpath
        == "Images/humanobj/human/crop_woman/celebrity/4.jpg"
    )
    # "/man/" needs both slashes: "woman" folders do not match it, "human/" and "manual/" do not match
    assert face_rules.face_reference(
        _case("singleface_1", "Images/singleface/woman/1.jpg")
    ).relpath.endswith("woman/1.jpg")
    assert (
        face_rules.face_reference(
            _case("singleface_2", "Images/human/x.jpg", "Images/manual/y.jpg")
        )
        is None
    )


def test_absent_reasons_name_the_rule():
    assert "not a face case" in face_rules.absent_reason(_case("singleobj_1", "Images/man/1.jpg"))
    assert "no reference under" in face_rules.absent_reason(
        _case("singleface_1", "Images/thing/1.jpg")
    )
    assert face_rules.absent_reason(_case("singleface_1", "Images/crop_man/1.jpg")) is None


def test_largest_face_by_box_area_ties_go_to_the_later_one():
    box = lambda face: face["box"]  # noqa: E731
    small, big = {"box": (0, 0, 10, 10)}, {"box": (5, 5, 25, 20)}  # areas 100, 300
    assert face_rules.largest_face([big, small], box) is big
    first, second = {"box": (0, 0, 10, 30)}, {"box": (50, 50, 80, 60)}  # both 300
    assert face_rules.largest_face([first, second], box) is second
    assert face_rules.largest_face([second, first], box) is first
    assert face_rules.largest_face([], box) is None


def test_pad_is_int_quarter_of_each_side_in_grey():
    image = np.zeros((10, 13, 3), np.uint8)
    padded, offset = face_rules.pad_image(image)
    assert offset == (3, 2)  # (int(0.25 * 13), int(0.25 * 10))
    assert padded.shape == (14, 19, 3)
    assert (padded[2:12, 3:16] == 0).all()
    border = np.ones(padded.shape[:2], bool)
    border[2:12, 3:16] = False
    assert (padded[border] == 128).all()


class _PadOnlyDetector:
    """Finds one face only in images larger than `size`, i.e. after padding."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size, self.calls = size, []

    def __call__(self, image):
        self.calls.append(image.shape[:2])
        if image.shape[:2] == self.size:
            return []
        kps = np.array(
            [[30.0, 40.0], [50.0, 40.0], [40.0, 50.0], [32.0, 60.0], [48.0, 60.0]], np.float32
        )
        return [{"box": (20.0, 30.0, 60.0, 70.0), "kps": kps}]


def test_pad_retry_finds_the_face_in_the_padded_image_and_shifts_keypoints_back():
    image = np.full((40, 80, 3), 200, np.uint8)
    detector = _PadOnlyDetector((40, 80))
    hit = face_rules.detect_with_pad_retry(image, detector, lambda f: f["box"])
    assert detector.calls == [(40, 80), (60, 120)]
    assert hit.padded and hit.offset == (20, 10)
    shifted = face_rules.shift_points(hit.face["kps"], hit.offset)
    assert shifted.dtype == np.float32
    np.testing.assert_array_equal(shifted[0], [10.0, 30.0])  # (30 - 20, 40 - 10)


def test_pad_retry_not_needed_when_the_first_search_finds_a_face():
    detector = _PadOnlyDetector((1, 1))
    hit = face_rules.detect_with_pad_retry(
        np.zeros((40, 80, 3), np.uint8), detector, lambda f: f["box"]
    )
    assert detector.calls == [(40, 80)] and hit.offset == (0, 0) and not hit.padded


def test_no_face_even_after_padding_is_none():
    calls = []
    hit = face_rules.detect_with_pad_retry(
        np.zeros((8, 8, 3), np.uint8), lambda im: calls.append(im.shape) or [], lambda f: f
    )
    assert hit is None and calls == [(8, 8, 3), (12, 12, 3)]


def test_frame_scores_are_cosines_clipped_at_zero():
    reference = np.array([1.0, 0.0])
    frames = np.array([[2.0, 0.0], [3.0, 4.0], [-1.0, 0.0], [0.0, 1.0], [-3.0, 4.0]])
    assert face_rules.frame_scores(reference, frames) == pytest.approx([1.0, 0.6, 0.0, 0.0, 0.0])
    assert face_rules.frame_scores(reference, np.zeros((0, 2))) == []


def test_cur_drops_zero_frames_arc_keeps_them():
    scores = [1.0, 0.6, 0.0, 0.0]
    assert face_rules.video_score(scores, drop_zeros=True) == pytest.approx(0.8)  # (1 + 0.6) / 2
    assert face_rules.video_score(scores, drop_zeros=False) == pytest.approx(0.4)  # (1 + 0.6) / 4
    assert face_rules.video_score([0.0, 0.0], drop_zeros=True) == 0.0
    assert face_rules.video_score([], drop_zeros=False) == 0.0


def test_sampled_frames_are_computed_once_per_distinct_index():
    frames = np.arange(3, dtype=np.uint8)[:, None, None, None] * np.ones((3, 2, 2, 3), np.uint8)
    seen = []
    values = face_rules.per_sampled_frame(
        DecodedVideo(frames, 16.0), lambda f: seen.append(int(f[0, 0, 0])) or int(f[0, 0, 0])
    )
    assert seen == [0, 1, 2]
    assert values == np.linspace(0, 2, 32, dtype=int).tolist()


def test_reference_embedding_once_per_file_content_and_no_face_cached(ctx, tmp_path):
    first, copy, blank = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    first.write_bytes(b"same bytes")
    copy.write_bytes(b"same bytes")
    blank.write_bytes(b"no face here")
    calls = []

    def embed(path):
        calls.append(path.name)
        return None if path == blank else np.array([3.0, 4.0], np.float32)

    for path in (first, copy, first):
        np.testing.assert_array_equal(
            face_rules.reference_embedding(path, "m", "p", embed, ctx.cache), [3.0, 4.0]
        )
    assert face_rules.reference_embedding(blank, "m", "p", embed, ctx.cache) is None
    assert face_rules.reference_embedding(blank, "m", "p", embed, ctx.cache) is None
    assert calls == ["a.png", "c.png"]
    face_rules.reference_embedding(first, "other-model", "p", embed, ctx.cache)
    assert calls[-1] == "a.png"


def test_face_metric_modules_import_no_heavy_library():
    code = (
        "import sys\n"
        "import kaleido_bench.metrics.face_sim_dlib, kaleido_bench.metrics.face_sim_arc\n"
        "import kaleido_bench.metrics.face_sim_cur, kaleido_bench.metrics.curricular_face\n"
        "print(sorted(m for m in ('torch', 'dlib', 'insightface', 'cv2', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
