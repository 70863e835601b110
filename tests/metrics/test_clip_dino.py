"""clip_i, dino_i, clip_t on tiny random backbones saved where the weights resolver looks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from kaleido_bench.core.cases import Case, ReferenceImage, Role
from kaleido_bench.core.video import DecodedVideo
from kaleido_bench.metrics import backbones
from kaleido_bench.metrics.clip_i import ClipI
from kaleido_bench.metrics.clip_t import ClipT, clipscore
from kaleido_bench.metrics.dino_i import DinoI

TINY_OPEN_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 32, "patch_size": 32, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
TINY_DINOV2 = {"embed_dim": 32, "depth": 2, "num_heads": 2}


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    """Tiny open_clip ViT-B-32 and timm DINOv2 files at the resolver's file names."""
    import open_clip
    import timm
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("weights")
    clip = open_clip.create_model("ViT-B-32", force_quick_gelu=True, **TINY_OPEN_CLIP)
    dino = timm.create_model("vit_base_patch14_dinov2", num_classes=0, img_size=518, **TINY_DINOV2)
    for weight, model in (
        (backbones.OPENCLIP_VIT_B32_OPENAI, clip),
        (backbones.DINOV2_VITB14, dino),
    ):
        path = root / weight.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return root


@pytest.fixture(autouse=True)
def offline_weights(weights_dir, monkeypatch):
    monkeypatch.setenv("KALEIDO_BENCH_WEIGHTS", str(weights_dir))


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """Three references: an RGBA PNG object, a JPEG face, a background photo."""
    root = tmp_path_factory.mktemp("refs")
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (90, 60, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(root / "cup.png")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(root / "face.jpg")
    Image.fromarray(rng.integers(0, 256, (100, 180, 3), dtype=np.uint8)).save(root / "park.jpg")
    refs = (
        ReferenceImage("Images/cup.png", root / "cup.png", Role.OBJECT, "Cup"),
        ReferenceImage("Images/face.jpg", root / "face.jpg", Role.FACE, "Woman"),
        ReferenceImage("Images/park.jpg", root / "park.jpg", Role.BACKGROUND, "Park"),
    )
    return Case("multiobject_1", "a woman holds a cup in a park", refs)


def make_video(num_frames: int = 40, seed: int = 0) -> DecodedVideo:
    frames = np.random.default_rng(seed).integers(0, 256, (num_frames, 96, 160, 3), dtype=np.uint8)
    return DecodedVideo(frames, 16.0)


def by_hand_cosines(backbone, video: DecodedVideo, references) -> np.ndarray:
    """(32, R) cosines from the backbone's own preprocess + forward, in float64 numpy."""
    frames = backbone.embed_images(video.frames[video.linspace_indices(32)]).double().numpy()
    refs = (
        backbone.embed_images([np.array(Image.open(r.path).convert("RGB")) for r in references])
        .double()
        .numpy()
    )
    frames /= np.linalg.norm(frames, axis=1, keepdims=True)
    refs /= np.linalg.norm(refs, axis=1, keepdims=True)
    return frames @ refs.T


@pytest.mark.parametrize("metric_class", [ClipI, DinoI])
def test_value_is_mean_over_subject_references_of_mean_frame_cosine(ctx, metric_class, case):
    metric = metric_class(model_overrides=TINY_OPEN_CLIP if metric_class is ClipI else TINY_DINOV2)
    metric.setup(ctx)
    video = make_video()
    result = metric.score(video, case, ctx)
    cos = by_hand_cosines(metric.backbone, video, case.references)
    per_reference = cos.mean(axis=0)
    assert result.value == pytest.approx(
        per_reference[:2].mean(), abs=1e-5
    )  # cup + face, not the park
    assert [row["image"] for row in result.details["references"]] == [
        "Images/cup.png",
        "Images/face.jpg",
    ]
    assert [row["role"] for row in result.details["references"]] == ["object", "face"]
    for row, expected, column in zip(result.details["references"], per_reference, cos.T):
        assert row["similarity"] == pytest.approx(expected, abs=1e-5)
        assert row["min"] == pytest.approx(column.min(), abs=1e-5)
        assert row["max"] == pytest.approx(column.max(), abs=1e-5)
    (background,) = result.details["background"]
    assert background["label"] == "Park" and background["similarity"] == pytest.approx(
        per_reference[2], abs=1e-5
    )
    assert result.details["frames"] == 32
    assert result.details["frame_indices"] == [int(i) for i in np.linspace(0, 39, 32, dtype=int)]


def test_raw_cosine_is_not_clipped():
    """clip_i / dino_i average raw cosines: negative similarities pull the value down."""
    from kaleido_bench.metrics.clip_i import cosine_matrix

    frames = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0]])
    refs = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    expected = torch.tensor([[1.0, 2**-0.5], [-1.0, -(2**-0.5)], [0.0, 2**-0.5]])
    torch.testing.assert_close(cosine_matrix(frames, refs), expected)
    assert float(cosine_matrix(frames, refs)[:, 0].mean()) == pytest.approx(0.0, abs=1e-7)


def test_case_without_subject_reference_is_absent(ctx, case):
    only_background = Case("x", "a park", (case.references[2],))
    result = ClipI(model_overrides=TINY_OPEN_CLIP).score(make_video(), only_background, ctx)
    assert result.value is None and "subject" in result.details["absent"]


def test_references_embedded_once_per_run_and_frames_once_per_video(ctx, case, monkeypatch):
    metric = ClipI(model_overrides=TINY_OPEN_CLIP)
    metric.setup(ctx)
    calls = []
    original = metric.backbone.forward
    monkeypatch.setattr(
        metric,
        "backbone",
        backbones.Backbone(
            **{
                **metric.backbone.__dict__,
                "forward": lambda pixels: calls.append(len(pixels)) or original(pixels),
            }
        ),
    )
    first, second = make_video(seed=1), make_video(seed=2)
    metric.score(first, case, ctx)
    metric.score(second, case, ctx)
    metric.score(first, case, ctx)
    # video 1 frames (32) + the 3 references in one batch, video 2 frames; nothing for the rerun
    assert calls == [32, 3, 32]
    assert ctx.cache.misses == 3 and ctx.cache.hits == 6


def test_clip_t_shares_frame_embeddings_with_clip_i(ready, ctx, case):
    video = make_video()
    ready(ClipI(model_overrides=TINY_OPEN_CLIP)).score(video, case, ctx)
    embeddings = [key for key in video._cache if key[0] == "embeddings"]
    ready(ClipT(model_overrides=TINY_OPEN_CLIP)).score(video, case, ctx)
    assert [key for key in video._cache if key[0] == "embeddings"] == embeddings and len(
        embeddings
    ) == 1


def test_clip_t_value_is_mean_raw_cosine_and_details_hold_clipscore(ctx, case):
    import open_clip

    metric = ClipT(model_overrides=TINY_OPEN_CLIP)
    metric.setup(ctx)
    video = make_video()
    result = metric.score(video, case, ctx)
    model = metric.text_backbone.model
    with torch.no_grad():
        text = model.encode_text(open_clip.get_tokenizer("ViT-B-32")([case.prompt]))[0].double()
    frames = metric.backbone.embed_images(video.frames[video.linspace_indices(32)]).double()
    cos = (frames / frames.norm(dim=1, keepdim=True)) @ (text / text.norm())
    assert result.value == pytest.approx(float(cos.mean()), abs=1e-5)
    assert result.details["cosine"] == result.value
    assert result.details["clipscore"] == pytest.approx(
        float((100 * cos.clamp(min=0)).mean()), abs=1e-3
    )
    assert result.details["text_truncated"] is False
    long_prompt = Case("y", "a very long prompt " * 40, case.references)
    assert metric.score(video, long_prompt, ctx).details["text_truncated"] is True
    assert len(metric._text) == 2  # each prompt encoded once
    metric.score(make_video(seed=5), case, ctx)
    assert len(metric._text) == 2


def test_clipscore_clips_each_frame_before_the_mean():
    cosines = torch.tensor([-0.2, 0.3, 0.5])
    assert clipscore(cosines) == pytest.approx(100 * (0 + 0.3 + 0.5) / 3)
    assert float(cosines.mean()) == pytest.approx(0.2)


def test_clip_t_empty_prompt_is_absent(ctx, case):
    assert (
        ClipT(model_overrides=TINY_OPEN_CLIP)
        .score(make_video(), Case("z", " ", case.references), ctx)
        .value
        is None
    )
