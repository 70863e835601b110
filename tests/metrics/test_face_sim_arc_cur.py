"""face_sim_arc / face_sim_cur: the official rules with fake models, then the real loading paths.

Real buffalo_l and CurricularFace weights cannot be downloaded here, so:
- the rules are checked with a fake insightface app (detector + recogniser) and a fake backbone;
- insightface's own `FaceAnalysis` runs on a synthetic buffalo_l pack (two tiny ONNX graphs
  built with `onnx.helper`, SCRFD-shaped and ArcFace-shaped, `random_weights.synthetic_buffalo_l`),
  through our resolver and setup;
- the IR-101 backbone is built at full size, saved as a `.bin` and loaded back strictly.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.random_weights import TEMPLATE_224, synthetic_buffalo_l

from kaleido_bench.core.cases import Case, ReferenceImage, Role
from kaleido_bench.core.errors import WeightsMissingError
from kaleido_bench.core.video import DecodedVideo
from kaleido_bench.metrics.face_sim_arc import FaceSimArc, InsightFaceFaces, pack_location
from kaleido_bench.metrics.face_sim_cur import FaceSimCur

torch = pytest.importorskip("torch")
pytest.importorskip("insightface")
# insightface's norm_crop calls skimage's deprecated SimilarityTransform.estimate
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

# TEMPLATE_224 (ArcFace's 5 points doubled) + (16, 16): norm_crop(..., 224) crops exactly image[16:240, 16:240].
SIZE = 256


# ----------------------------------------------------------------------------- fakes


class FakeDetector:
    """insightface `det_model.detect` stand-in: one face centred like the image, when `sees(image)`.

    The face's 224 crop is image[16:240, 16:240] of a 256x256 frame, shifted by `dx`; the centre
    rule puts it on the same pixels in the grey-padded image (the pad is symmetric).
    """

    def __init__(
        self,
        sees=lambda image: image[image.shape[0] // 2, image.shape[1] // 2, 0] > 0,
        dx: float = 0.0,
    ):
        self.sees, self.dx, self.calls = sees, dx, []

    def detect(self, image, max_num=0, metric="default"):
        self.calls.append(image.shape[:2])
        if not self.sees(image):
            return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
        shift = np.array(
            [(image.shape[1] - SIZE) / 2 + self.dx, (image.shape[0] - SIZE) / 2], np.float32
        )
        kps = TEMPLATE_224 + 16 + shift
        box = np.array(
            [[16 + shift[0], 16 + shift[1], 240 + shift[0], 240 + shift[1], 0.9]], np.float32
        )
        return box, kps[None]


class FakeRecognition:
    """insightface `ArcFaceONNX.get` stand-in: the embedding of the grey level at the keypoints' centre."""

    def __init__(self, table: dict[int, list[float]]):
        self.table, self.images = table, []

    def get(self, image, face):
        self.images.append(image.shape[:2])
        x, y = face.kps.mean(axis=0).astype(int)
        face.embedding = np.asarray(self.table[int(image[y, x, 0])], np.float32)
        return face.embedding


class FakeApp:
    def __init__(self, detector: FakeDetector, recognition: FakeRecognition):
        self.det_model, self.models = detector, {"detection": detector, "recognition": recognition}


class FakeBackbone(torch.nn.Module):
    """Stands in for IR-101: maps a uniform crop's grey level back from [-1, 1] and looks it up."""

    def __init__(self, table: dict[int, list[float]] | None = None):
        super().__init__()
        self.table, self.batches = table, []

    def forward(self, x):
        self.batches.append(x.clone())
        if self.table is None:
            return torch.tensor([[1.0, 0.0]]).repeat(len(x), 1)
        levels = torch.round((x.mean(dim=(1, 2, 3)) * 0.5 + 0.5) * 255).int().tolist()
        return torch.tensor([self.table[level] for level in levels], dtype=torch.float32)


TABLE = {
    200: [1.0, 0.0],
    150: [0.6, 0.8],
    100: [-1.0, 0.0],
}  # cos to 200: 1, 0.6, -1 (clipped to 0)


def _grey_video(*levels: int) -> DecodedVideo:
    return DecodedVideo(np.stack([np.full((SIZE, SIZE, 3), v, np.uint8) for v in levels]), 16.0)


def _case(
    tmp_path: Path,
    image: np.ndarray,
    case_id: str = "singleface_1",
    relpath: str = "Images/singleface/crop_man/1.png",
) -> Case:
    path = tmp_path / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return Case(case_id, "a man", (ReferenceImage(relpath, path, Role.FACE, "Man"),))


def _metrics(detector: FakeDetector, recognition: FakeRecognition, backbone: FakeBackbone):
    faces = InsightFaceFaces(FakeApp(detector, recognition), key="fake")
    arc, cur = FaceSimArc(), FaceSimCur()
    arc.faces = cur.faces = faces
    cur.model, cur.model_id, cur.device = backbone, f"fake-{id(backbone)}", "cpu"
    return arc, cur


# ----------------------------------------------------------------------------- rules


def test_arc_keeps_zero_frames_cur_drops_them_no_face_frames_skipped(ctx, tmp_path):
    arc, cur = _metrics(FakeDetector(), FakeRecognition(TABLE), FakeBackbone(TABLE))
    case = _case(tmp_path, np.full((SIZE, SIZE, 3), 200, np.uint8))
    # 4 frames -> linspace(0, 3, 32, int) takes them 11, 10, 10 and 1 times; the black one has no face
    video = _grey_video(200, 150, 100, 0)
    arc_result, cur_result = arc.score(video, case, ctx), cur.score(video, case, ctx)
    assert arc_result.details["frames_with_face"] == cur_result.details["frames_with_face"] == 31
    assert arc_result.details["frame_scores"][-1] is None
    assert arc_result.value == pytest.approx((11 * 1.0 + 10 * 0.6 + 10 * 0.0) / 31, rel=1e-6)
    assert cur_result.value == pytest.approx((11 * 1.0 + 10 * 0.6) / 21, rel=1e-6)


def test_video_without_faces_scores_zero_reference_without_face_is_absent(ctx, tmp_path):
    arc, cur = _metrics(FakeDetector(), FakeRecognition(TABLE), FakeBackbone(TABLE))
    case = _case(tmp_path, np.full((SIZE, SIZE, 3), 200, np.uint8))
    for metric in (arc, cur):
        result = metric.score(_grey_video(0, 0), case, ctx)
        assert result.value == 0.0 and result.details["frames_with_face"] == 0
    blank = _case(
        tmp_path, np.zeros((SIZE, SIZE, 3), np.uint8), "humanobj_2", "Images/h/woman/blank.png"
    )
    for metric in (arc, cur):
        result = metric.score(_grey_video(200), blank, ctx)
        assert (
            result.value is None
            and result.details["absent"] == "no face found in reference Images/h/woman/blank.png"
        )


def test_non_face_case_is_absent_without_loading_models(ctx, tmp_path):
    case = _case(tmp_path, np.zeros((8, 8, 3), np.uint8), case_id="multihuman_3")
    for metric in (FaceSimArc(), FaceSimCur()):  # no setup, no weights needed
        assert "not a face case" in metric.score(_grey_video(200), case, ctx).details["absent"]


def test_arc_and_cur_share_one_detection_pass_per_video_and_reference(ctx, tmp_path):
    detector = FakeDetector()
    arc, cur = _metrics(detector, FakeRecognition(TABLE), FakeBackbone(TABLE))
    case = _case(tmp_path, np.full((SIZE, SIZE, 3), 200, np.uint8))
    video = _grey_video(200, 150, 0)
    arc.score(video, case, ctx)
    # reference 1 + three distinct frames, the black one twice (pad retry)
    assert len(detector.calls) == 5
    cur.score(video, case, ctx)
    assert len(detector.calls) == 5


def test_reference_embedded_once_per_file_content_and_frames_in_one_batch(ctx, tmp_path):
    backbone = FakeBackbone(TABLE)
    _, cur = _metrics(FakeDetector(), FakeRecognition(TABLE), backbone)
    image = np.full((SIZE, SIZE, 3), 200, np.uint8)
    first = _case(tmp_path, image)
    same_bytes = _case(tmp_path, image, "singleface_2", "Images/singleface/crop_man/copy.png")
    cur.score(_grey_video(200, 150), first, ctx)
    cur.score(_grey_video(150, 200, 100), same_bytes, ctx)
    assert [len(b) for b in backbone.batches] == [1, 32, 32]  # reference once; 32 frames per batch


def test_tie_between_equal_faces_goes_to_the_later_one(ctx, tmp_path):
    class TwoFaces(FakeDetector):
        def detect(self, image, max_num=0, metric="default"):
            box, kps = super().detect(image)
            if not len(box):
                return box, kps
            right = kps + np.array([100.0, 0.0], np.float32)  # same box size, on the right half
            boxes = np.concatenate([box, box + np.array([[100, 0, 100, 0, 0]], np.float32)])
            return boxes, np.concatenate([kps, right])

    arc, _ = _metrics(TwoFaces(), FakeRecognition(TABLE), FakeBackbone(TABLE))
    frame = np.full((SIZE, SIZE, 3), 200, np.uint8)
    frame[:, 160:] = 150  # the right face (keypoint centre x ~ 228) sits on 150
    result = arc.score(
        DecodedVideo(frame[None], 16.0),
        _case(tmp_path, np.full((SIZE, SIZE, 3), 200, np.uint8)),
        ctx,
    )
    assert result.value == pytest.approx(0.6)


def test_pad_retry_arc_embeds_the_padded_image_cur_crops_the_original(ctx, tmp_path):
    # the face is only found after padding, and its 224 crop sticks 40 px out of the frame's left edge
    detector = FakeDetector(sees=lambda image: image.shape[0] > SIZE, dx=-40.0)
    recognition, backbone = FakeRecognition(TABLE), FakeBackbone()
    arc, cur = _metrics(detector, recognition, backbone)
    case = _case(tmp_path, np.full((SIZE, SIZE, 3), 200, np.uint8))
    assert arc.score(_grey_video(200), case, ctx).value == pytest.approx(1.0)
    assert set(recognition.images) == {(SIZE + 2 * 64, SIZE + 2 * 64)}  # padded by int(0.25 * 256)
    cur.score(_grey_video(200), case, ctx)
    crops = backbone.batches[-1]
    # the crop spans frame x -24..200: its left 24 of 224 px (12 of 112) are black from warpAffine on
    # the UNPADDED frame (grey 128 would mean the padded one); the rest is the frame's 200
    assert torch.all(crops[..., :11] == -1.0)
    assert torch.allclose(crops[..., 13:], torch.tensor((200 / 255 - 0.5) / 0.5))


# ----------------------------------------------------------------------------- weights


def test_missing_buffalo_l_is_one_clear_error_quickly(ctx):
    started = time.perf_counter()
    with pytest.raises(WeightsMissingError) as error:
        FaceSimArc().setup(ctx)
    assert time.perf_counter() - started < 10
    message = str(error.value)
    assert "buffalo_l" in message and "kaleido-bench weights download face_sim_arc" in message
    with pytest.raises(WeightsMissingError, match="face_sim_cur"):
        FaceSimCur().setup(ctx)


def test_pack_location_accepts_root_opens2v_checkout_and_pack_folder(tmp_path):
    pack = tmp_path / "ckpts" / "face_extractor" / "models" / "buffalo_l"
    pack.mkdir(parents=True)
    for name in ("det_10g.onnx", "w600k_r50.onnx"):
        (pack / name).write_bytes(b"")
    expected = ("buffalo_l", tmp_path / "ckpts" / "face_extractor")
    assert pack_location(tmp_path / "ckpts") == expected  # OpenS2V-Weight checkout
    assert pack_location(tmp_path / "ckpts" / "face_extractor") == expected  # FaceAnalysis root
    assert pack_location(pack) == expected
    bare = tmp_path / "my_buffalo"
    bare.mkdir()
    for name in ("det_10g.onnx", "w600k_r50.onnx"):
        (bare / name).write_bytes(b"")
    assert pack_location(bare) == (str(bare.resolve()), tmp_path)  # an absolute name is used as is
    with pytest.raises(WeightsMissingError, match="buffalo_l"):
        pack_location(tmp_path)


# ----------------------------------------------------------------------------- real loading paths


def test_ir101_has_the_tface_layout_and_loads_strictly_from_a_bin(tmp_path):
    from kaleido_bench.metrics.curricular_face import build_ir_backbone, load_ir_backbone

    torch.manual_seed(0)
    state = build_ir_backbone().state_dict()
    # counts and shapes of TFace's IR_101 (`get_model("IR_101")([112, 112])`), checked against it
    assert len(state) == 917 and sum(t.numel() for t in state.values()) == 65_220_569
    assert list(state)[:5] == [
        "input_layer.0.weight",
        "input_layer.1.weight",
        "input_layer.1.bias",
        "input_layer.1.running_mean",
        "input_layer.1.running_var",
    ]
    assert list(state)[7] == "output_layer.0.weight"  # TFace registers output_layer before body
    assert state["output_layer.3.weight"].shape == (512, 512 * 7 * 7)
    assert state["body.48.res_layer.4.weight"].shape == (512, 512, 3, 3)
    assert "body.49.res_layer.0.weight" not in state and "output_layer.4.weight" not in state
    path = tmp_path / "glint360k_curricular_face_r101_backbone.bin"
    torch.save(state, path)
    loaded = load_ir_backbone(path).state_dict()  # torch.load(weights_only=True) + strict load
    assert all(torch.equal(loaded[key], value) for key, value in state.items())


def test_shallow_ir_round_trip_gives_identical_embeddings(tmp_path):
    from kaleido_bench.metrics.curricular_face import build_ir_backbone, load_ir_backbone

    torch.manual_seed(1)
    model = build_ir_backbone((1, 2, 1, 1)).eval()
    path = tmp_path / "ir.bin"
    torch.save(model.state_dict(), path)
    loaded = load_ir_backbone(path, stage_units=(1, 2, 1, 1))
    assert not loaded.training
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    with pytest.raises(RuntimeError, match="Unexpected key|Missing key"):
        load_ir_backbone(path, stage_units=(1, 1, 1, 1))


def test_real_insightface_pack_and_ir_file_through_resolver_and_setup(ctx, tmp_path):
    pytest.importorskip("onnx")
    from kaleido_bench.metrics.curricular_face import build_ir_backbone

    weight = np.array(
        [[1.0, 0.0, 0.5, 0.0], [0.0, 1.0, 0.5, 0.0], [0.0, 0.0, 0.2, 1.0]], np.float32
    )
    synthetic_buffalo_l(tmp_path / "weights" / "models" / "buffalo_l", weight)
    torch.manual_seed(0)
    bin_path = tmp_path / "glint360k_curricular_face_r101_backbone.bin"
    torch.save(build_ir_backbone((1, 1, 1, 1)).state_dict(), bin_path)

    arc = FaceSimArc(buffalo_l_path=str(tmp_path / "weights"))
    cur = FaceSimCur(
        buffalo_l_path=str(tmp_path / "weights"),
        curricular_face_path=str(bin_path),
        stage_units=(1, 1, 1, 1),
    )
    arc.setup(ctx)
    cur.setup(ctx)
    assert cur.faces is arc.faces  # one FaceAnalysis for both metrics
    detector = arc.faces.app.det_model
    assert detector.det_thresh == 0.5 and tuple(detector.input_size) == (320, 320)

    reference, other = (200, 200, 50), (230, 150, 100)  # RGB; cos of their embeddings ~0.84
    frames = [
        np.full((SIZE, SIZE, 3), colour, np.uint8) for colour in (reference, other, (0, 0, 0))
    ]
    case = _case(tmp_path, frames[0])
    video = DecodedVideo(
        np.stack(frames), 16.0
    )  # sampled 16, 15, 1 times; the black frame has no face

    def arc_embedding(rgb):  # what the ONNX graph computes on a uniform RGB crop (mean / std 127.5)
        return weight.T @ ((np.array(rgb, np.float32) - 127.5) / 127.5)

    r, o = arc_embedding(reference), arc_embedding(other)
    cos_other = max(0.0, float(r @ o / np.linalg.norm(r) / np.linalg.norm(o)))
    arc_result = arc.score(video, case, ctx)
    assert 0.1 < cos_other < 0.9
    assert arc_result.details["frames_with_face"] == 31
    assert arc_result.value == pytest.approx((16 * 1.0 + 15 * cos_other) / 31, rel=1e-5)
    cur_result = cur.score(video, case, ctx)
    assert cur_result.details["frames_with_face"] == 31
    assert cur_result.details["frame_scores"][:16] == pytest.approx([1.0] * 16, abs=1e-5)
