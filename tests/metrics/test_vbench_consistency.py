"""VBench subject / background consistency: formula, frame weighting, preprocessing, tiny models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kaleido_bench.core.cases import Case
from kaleido_bench.core.video import DecodedVideo, decode_video
from kaleido_bench.metrics import backbones
from kaleido_bench.metrics.base import MetricResult
from kaleido_bench.metrics.vbench_consistency import (
    BackgroundConsistency,
    SubjectConsistency,
    consistency_terms,
    float_frames,
    frame_weighted_mean,
    vbench_clip_transform,
    vbench_dino_transform,
)

TINY_DINO = {"embed_dim": 32, "depth": 2, "num_heads": 2}
TINY_OPEN_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 32, "patch_size": 32, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
CASE = Case("singleobj_1", "a cup", ())


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    """Tiny DINO ViT-B/16-shaped and open_clip ViT-B-32 files at the resolver's file names."""
    import open_clip
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("weights")
    dino_path = root / backbones.DINO_VITB16.filename
    dino_path.parent.mkdir(parents=True)
    torch.save(backbones.dino_vision_transformer(**TINY_DINO).state_dict(), dino_path)
    clip_path = root / backbones.OPENCLIP_VIT_B32_OPENAI.filename
    clip_path.parent.mkdir(parents=True)
    clip = open_clip.create_model("ViT-B-32", force_quick_gelu=True, **TINY_OPEN_CLIP)
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(clip_path))
    return root


@pytest.fixture(autouse=True)
def offline_weights(weights_dir, monkeypatch):
    monkeypatch.setenv("KALEIDO_BENCH_WEIGHTS", str(weights_dir))


def smooth_video(num_frames: int = 9, height: int = 120, width: int = 208) -> DecodedVideo:
    """A drifting gradient (consecutive frames alike, far frames less so)."""
    y, x = np.mgrid[0:height, 0:width]
    frames = [
        np.stack(
            [(x * 255 / width + 9 * t) % 256, y * 255 / height, np.full_like(x, 20 * t % 256)], -1
        )
        for t in range(num_frames)
    ]
    return DecodedVideo(np.asarray(frames, dtype=np.uint8), 16.0)


def vbench_by_hand(model, transform, frames: np.ndarray, one_at_a_time: bool) -> tuple[float, int]:
    """VBench's loop as its files write it: whole-video transform, then features, then the terms."""
    images = transform(torch.Tensor(frames).permute(0, 3, 1, 2))
    with torch.no_grad():
        if one_at_a_time:
            features = [
                F.normalize(model(images[i].unsqueeze(0)), dim=-1, p=2) for i in range(len(images))
            ]
        else:
            features = list(F.normalize(model(images), dim=-1, p=2).unsqueeze(1))
    video_sim, count = 0.0, 0
    for i in range(1, len(features)):
        sim_pre = max(0.0, F.cosine_similarity(features[i - 1], features[i]).item())
        sim_fir = max(0.0, F.cosine_similarity(features[0], features[i]).item())
        video_sim += (sim_pre + sim_fir) / 2
        count += 1
    return video_sim, count


# --------------------------------------------------------------------------- formula


def test_terms_average_previous_and_first_frame_cosines_clipped_at_zero():
    features = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [-3.0, 0.0]])
    terms = consistency_terms(features)
    # t=1: cos(f0,f1)=0, cos(f0,f1)=0; t=2: cos(f1,f2)=cos(f0,f2)=1/sqrt2; t=3: both negative -> 0
    assert terms == pytest.approx([0.0, 2**-0.5, 0.0], abs=1e-7)
    assert consistency_terms(torch.tensor([[1.0, 0.0], [1.0, 1.0]])) == pytest.approx(
        [2**-0.5], abs=1e-7
    )


def test_suite_score_is_frame_weighted_not_a_mean_of_videos():
    results = [
        MetricResult(0.9, {"sum": 2.7, "count": 3}),
        MetricResult(0.5, {"sum": 0.5, "count": 1}),
        MetricResult.absent("video has a single frame"),
    ]
    assert frame_weighted_mean(results) == pytest.approx(3.2 / 4)  # mean of the videos would be 0.7
    assert SubjectConsistency().aggregate(results) == pytest.approx(0.8)
    assert BackgroundConsistency().aggregate(results[2:]) is None


def test_single_frame_video_is_absent(ctx):
    video = DecodedVideo(np.zeros((1, 32, 32, 3), np.uint8), 16.0)
    assert SubjectConsistency(model_overrides=TINY_DINO).score(video, CASE, ctx).value is None


# --------------------------------------------------------------------------- preprocessing


def test_float_frames_match_vbenchs_tensor_construction():
    frames = np.random.default_rng(0).integers(0, 256, (3, 10, 14, 3), dtype=np.uint8)
    vbench = torch.Tensor(frames).permute(0, 3, 1, 2)
    ours = float_frames(frames)
    assert (
        torch.equal(ours, vbench)
        and ours.stride() == vbench.stride()
        and ours.dtype == torch.float32
    )


def test_transforms_give_vbench_sizes_and_chunking_changes_no_pixel(shared_dir):
    frames = decode_video(shared_dir / "opens2v/videos/singleface_3.mp4").frames[:7]
    for transform, size in (
        (vbench_dino_transform(), (224, 388)),
        (vbench_clip_transform(), (224, 224)),
    ):
        whole = transform(torch.Tensor(frames).permute(0, 3, 1, 2))
        assert whole.shape == (7, 3, *size)
        chunked = torch.cat([transform(float_frames(frames[i : i + 3])) for i in range(0, 7, 3)])
        assert torch.equal(chunked, whole)


def test_dino_resize_is_bilinear_without_antialias_on_floats():
    frames = np.random.default_rng(1).integers(0, 256, (2, 48, 80, 3), dtype=np.uint8)
    x = torch.Tensor(frames).permute(0, 3, 1, 2)
    ours = vbench_dino_transform(24)(x)
    resized = F.interpolate(x, size=(24, 40), mode="bilinear", align_corners=False, antialias=False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(ours, (resized / 255.0 - mean) / std)


# --------------------------------------------------------------------------- end to end


def test_subject_consistency_matches_vbench_loop_on_tiny_dino(ready, ctx, weights_dir):
    video = smooth_video(num_frames=5)
    exact = ready(SubjectConsistency(model_overrides=TINY_DINO, batch_size=1)).score(
        video, CASE, ctx
    )
    model = backbones.load_dino_v1(
        ctx, weights_dir / backbones.DINO_VITB16.filename, model_overrides=TINY_DINO
    ).model
    video_sim, count = vbench_by_hand(
        model, vbench_dino_transform(), video.frames, one_at_a_time=True
    )
    # Two code paths (our chunked transform + model calls vs VBench's whole-video transform, then
    # one frame at a time): the same arithmetic, but oneDNN picks kernels by tensor shape and CPU, so
    # the last bits of a float32 cosine may differ by machine (seen: 3.94303897023201 vs
    # 3.9430389404296875). Guaranteed: the same terms to float32 rounding, counted alike.
    assert exact.details["count"] == count == 4 and exact.details["frames"] == 5
    assert exact.details["sum"] == pytest.approx(video_sim, rel=1e-6)
    assert (
        exact.value == exact.details["sum"] / count
    )  # our own value is exactly our own sum / count
    batched = ready(SubjectConsistency(model_overrides=TINY_DINO, batch_size=32)).score(
        smooth_video(num_frames=5), CASE, ctx
    )
    assert batched.value == pytest.approx(exact.value, abs=1e-6)  # batching: fp32 rounding only


def test_background_consistency_matches_vbench_loop_on_tiny_clip(ready, ctx, weights_dir):
    video = smooth_video(num_frames=6, height=100, width=300)
    metric = ready(BackgroundConsistency(model_overrides=TINY_OPEN_CLIP))
    result = metric.score(video, CASE, ctx)
    assert metric.backbone.dtype == torch.float32  # CPU: fp32, as clip.load gives
    video_sim, count = vbench_by_hand(
        metric.backbone.model.encode_image,
        vbench_clip_transform(),
        video.frames,
        one_at_a_time=False,
    )
    assert result.details["count"] == count == 5
    assert result.details["sum"] == pytest.approx(video_sim, abs=1e-6)
    assert 0.0 <= result.value <= 1.0


def test_background_consistency_runs_fp16_only_on_cuda():
    assert BackgroundConsistency().precision("cpu") == "fp32"
    assert BackgroundConsistency().precision("cuda") == "fp16"
    assert BackgroundConsistency(precision="fp32").precision("cuda") == "fp32"


def test_subject_consistency_on_a_real_video(ready, ctx, shared_dir):
    """Every one of the 69 frames, 480x832 resized to 224x388 (DINO's 14x24 patch grid)."""
    video = decode_video(shared_dir / "opens2v/videos/faceobj_14.mp4")
    result = ready(SubjectConsistency(model_overrides=TINY_DINO)).score(video, CASE, ctx)
    assert result.details["count"] == 68 and result.details["frames"] == 69
    assert math.isclose(result.value, result.details["sum"] / 68)
    assert 0.0 <= result.value <= 1.0
