"""Our YOLO-World port against the OFFICIAL code's outputs (tests/fixtures/nexus, made by
`make_fixtures.py` with OpenS2V's get_nexusscore.py + mmyolo/mmdet on a tiny random model)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from support.nexus_fixtures import fixture_arch

from kaleido_bench.core.errors import CheckpointMismatchError
from kaleido_bench.core.video import decode_video
from kaleido_bench.metrics import backbones, yolo_world
from kaleido_bench.metrics.clip_vision import load_hf_clip_vision
from kaleido_bench.metrics.nexus_score import script_filter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nexus"
#: scores: absolute; boxes: a fraction of the frame's long side (1e-4 of 832 px = 0.08 px). Box
#: corners are pixel coordinates up to 832, where one fp32 step is 6e-5 px: the official code
#: run image by image and ours run on a batch differ by up to 2e-3 px (2e-6 of the frame), the
#: few-ulp differences of other convolution kernels, not of the maths.
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(FIXTURES / "detector.npz")), json.loads(
        (FIXTURES / "meta.json").read_text()
    )


@pytest.fixture(scope="module")
def model():
    from kaleido_bench.metrics.context import ScoringContext

    return yolo_world.load_yolo_world(
        ScoringContext.create("cpu"), FIXTURES / "yolo_world_tiny.pth", fixture_arch()
    )


@pytest.fixture(scope="module")
def video_frames(shared_dir, golden):
    _, meta = golden
    frames = {}
    for name, info in meta["videos"].items():
        video = decode_video(shared_dir / "opens2v" / "videos" / f"{name}.mp4")
        assert video.linspace_indices(32).tolist() == info["indices"]
        sampled = video.linspace(32)
        assert hashlib.sha256(sampled.tobytes()).hexdigest() == info["frames_sha256"]
        frames[name] = sampled
    return frames


def test_released_architecture_has_the_published_shapes():
    model = yolo_world.build_yolo_world(yolo_world.YOLO_WORLD_V2_L)
    state = model.state_dict()
    assert state["backbone.stage4.2.conv2.conv.weight"].shape == (
        512,
        1024,
        1,
        1,
    )  # SPPF, last stage 512
    assert state["neck.top_down_layers.1.attn_block.guide_fc.weight"].shape == (
        128,
        512,
    )  # embed 128
    assert state["neck.top_down_layers.0.attn_block.bias"].shape == (8,)  # 8 heads
    assert state["neck.bottom_up_layers.0.final_conv.conv.weight"].shape == (
        512,
        256 * 6,
        1,
        1,
    )  # split 2 + 3 blocks + attn
    assert state["head.reg_preds.0.2.weight"].shape == (64, 64, 1, 1)  # 4 x reg_max 16
    assert state["head.cls_preds.0.2.weight"].shape == (512, 256, 1, 1)
    assert state["projector.0.weight"].shape == (1024, 512)
    assert 40e6 < sum(v.numel() for v in state.values()) < 60e6


def test_letterbox_gives_the_official_network_input(golden, video_frames):
    arrays, _ = golden
    ours, metas = yolo_world.network_input(video_frames["faceobj_14"][:1])
    assert metas[0].pad_param == (135, 136, 0, 0) and metas[0].resized_shape == (369, 640)
    official = torch.from_numpy(
        arrays["input/first"]
    )  # the data batch before the preprocessor (uint8 RGB)
    assert torch.equal(
        ours[0], official[[2, 1, 0]].float() / 255
    )  # its bgr_to_rgb flip: the net sees BGR


def test_prompts_through_the_shared_clip_tower_match(ctx, golden, model):
    arrays, meta = golden
    clip = load_hf_clip_vision(ctx, FIXTURES / "clip_b32_tiny")
    for name, ref in meta["references"].items():
        image = backbones.load_rgb(FIXTURES / ref["file"])
        embeds = clip.forward(clip.preprocess(image[None])).detach()
        np.testing.assert_allclose(embeds[0].numpy(), arrays[f"clip/{name}"], atol=1e-6, rtol=0)
        prompt = yolo_world.prompt_embeddings(model, embeds)
        official = torch.from_numpy(arrays[f"prompt/faceobj_14/{name}"])
        np.testing.assert_allclose(
            prompt[0].numpy(), (official / official.norm()).numpy(), atol=1e-6, rtol=0
        )


def assert_same_detections(
    boxes, scores, official_boxes, official_scores, scale: float, key: str
) -> None:
    """Same number of boxes, and each official box has one of ours within the tolerance.

    Matched, not compared row by row: among the 300 low-scored boxes, scores 1e-7 apart may come
    out in either order.
    """
    assert len(scores) == len(official_scores), key
    if not len(scores):
        return
    ours = np.concatenate([boxes / scale, scores[:, None]], 1)
    theirs = np.concatenate([official_boxes / scale, official_scores[:, None]], 1)
    distance = np.abs(ours[:, None, :] - theirs[None, :, :]).max(-1)
    assert distance.min(0).max() <= TOLERANCE and distance.min(1).max() <= TOLERANCE, key


@pytest.mark.parametrize("video", ["faceobj_14", "singleface_3"])
def test_detector_matches_official_boxes_and_scores(golden, model, video_frames, video):
    arrays, meta = golden
    names = list(meta["references"])
    prompts = torch.stack([torch.from_numpy(arrays[f"clip/{n}"]) for n in names])
    frames = video_frames[video][::4]  # 8 of the 32 frames, every prompt (CPU time)
    scale = max(frames.shape[1:3])
    detections = yolo_world.detect(
        model, frames, yolo_world.prompt_embeddings(model, prompts), frame_batch=8
    )
    compared = 0
    for k, name in enumerate(names):
        for i, t in enumerate(range(0, 32, 4)):
            key = f"{video}/{name}/{t}"
            ours = detections[k][i]
            assert_same_detections(
                ours.boxes,
                ours.scores,
                arrays[f"{key}/model_boxes"],
                arrays[f"{key}/model_scores"],
                scale,
                key,
            )
            assert (ours.labels == 0).all() and (
                arrays[f"{key}/model_labels"] == 0
            ).all()  # one class
            final = script_filter(ours)
            assert_same_detections(
                final.boxes,
                final.scores,
                arrays[f"{key}/boxes"],
                arrays[f"{key}/scores"],
                scale,
                key,
            )
            assert (np.diff(final.scores) <= 0).all()
            compared += len(final)
    assert compared > 0  # the fixture holds boxes the script keeps


def test_checkpoint_keys_are_the_official_names_both_ways(model):
    state = yolo_world.read_state_dict(FIXTURES / "yolo_world_tiny.pth")
    ours = {yolo_world.official_key(k) for k in model.state_dict()}
    unused = {k for k in state if k.startswith(yolo_world.UNUSED_PREFIXES)}
    assert unused and set(state) == ours | unused  # the CLIP copies are the only keys we leave out


def _rewrite(tmp_path: Path, edit) -> Path:
    payload = torch.load(FIXTURES / "yolo_world_tiny.pth", map_location="cpu", weights_only=True)
    edit(payload["state_dict"])
    path = tmp_path / "edited.pth"
    torch.save(payload, path)
    return path


def test_missing_key_is_an_error_naming_key_and_file(ctx, tmp_path):
    path = _rewrite(tmp_path, lambda s: s.pop("neck.bottom_up_layers.1.attn_block.guide_fc.weight"))
    with pytest.raises(
        CheckpointMismatchError,
        match=r"edited\.pth.*missing tensor\(s\) neck\.bottom_up_layers\.1\.attn_block\.guide_fc\.weight",
    ):
        yolo_world.load_yolo_world(ctx, path, fixture_arch())


def test_extra_key_is_an_error_naming_key_and_file(ctx, tmp_path):
    path = _rewrite(
        tmp_path, lambda s: s.__setitem__("bbox_head.head_module.extra.weight", torch.zeros(3))
    )
    with pytest.raises(
        CheckpointMismatchError,
        match=r"edited\.pth.*unexpected tensor\(s\) bbox_head\.head_module\.extra\.weight",
    ):
        yolo_world.load_yolo_world(ctx, path, fixture_arch())


def test_wrong_architecture_is_an_error(ctx, tmp_path):
    with pytest.raises(CheckpointMismatchError, match="wrong shape"):
        yolo_world.load_yolo_world(
            ctx,
            FIXTURES / "yolo_world_tiny.pth",
            yolo_world.YoloWorldArch(deepen_factor=0.33, widen_factor=0.25, num_train_classes=8),
        )


def test_nexus_score_threshold_shortcut_keeps_the_same_final_boxes(golden, model, video_frames):
    """NexusScore post-processes with score_thr 0.5 (`NEXUS_POSTPROCESS`): same boxes after the script."""
    from kaleido_bench.metrics.nexus_score import NEXUS_POSTPROCESS

    arrays, meta = golden
    prompts = torch.stack([torch.from_numpy(arrays[f"clip/{n}"]) for n in meta["references"]])
    prompts = yolo_world.prompt_embeddings(model, prompts)
    frames = video_frames["faceobj_14"][9:11]  # the frames with the most boxes
    full = yolo_world.detect(model, frames, prompts)
    short = yolo_world.detect(model, frames, prompts, cfg=NEXUS_POSTPROCESS)
    kept = 0
    for per_frame_full, per_frame_short in zip(full, short):
        for a, b in zip(per_frame_full, per_frame_short):
            a, b = script_filter(a), script_filter(b)
            assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)
            kept += len(a)
    assert kept > 10
