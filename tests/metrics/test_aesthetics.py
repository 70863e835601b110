"""OpenS2V Aesthetics: the no-activation MLP by hand, strict loading, and the official pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from kaleido_bench.core.cases import Case
from kaleido_bench.core.errors import WeightsMissingError
from kaleido_bench.core.video import DecodedVideo, decode_video
from kaleido_bench.metrics import backbones
from kaleido_bench.metrics.aesthetics import (
    AESTHETIC_MLP,
    Aesthetics,
    aesthetic_mlp,
    aesthetic_scores,
    load_aesthetic_mlp,
)

CASE = Case("faceobj_14", "", ())
# Linear layers of the head with every weight = w and every bias = b.
CONSTANT_LAYERS = {0: (0.001, 0.5), 2: (0.002, -0.1), 4: (0.01, 0.0), 6: (0.05, 0.2), 7: (0.1, 1.0)}


def constant_head_state() -> dict[str, torch.Tensor]:
    state = aesthetic_mlp().state_dict()
    for index, (weight, bias) in CONSTANT_LAYERS.items():
        state[f"layers.{index}.weight"] = torch.full_like(state[f"layers.{index}.weight"], weight)
        state[f"layers.{index}.bias"] = torch.full_like(state[f"layers.{index}.bias"], bias)
    return state


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    """A tiny full CLIPModel folder (vision projection 768, stock processor config) + a random head."""
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    root = tmp_path_factory.mktemp("weights")
    folder = root / backbones.CLIP_VIT_L14_HF.filename
    vision = {
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
    }
    text = {
        **vision,
        "vocab_size": 99,
        "max_position_embeddings": 77,
        "bos_token_id": 0,
        "eos_token_id": 1,
    }
    vision.update(image_size=224, patch_size=32, projection_dim=768)
    CLIPModel(
        CLIPConfig(text_config=text, vision_config=vision, projection_dim=768)
    ).save_pretrained(folder)
    CLIPImageProcessorPil().save_pretrained(folder)
    head = root / AESTHETIC_MLP.filename
    head.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(aesthetic_mlp().state_dict(), head)
    return root


def test_head_has_no_activations_by_hand(ctx, tmp_path):
    """Embeddings 3*e0 and -2*e0 normalise to +-e0; the affine chain gives these by hand."""
    torch.save(constant_head_state(), tmp_path / "aesthetic-model.pth")
    head = load_aesthetic_mlp(ctx, tmp_path / "aesthetic-model.pth")
    embeds = torch.zeros(2, 768)
    embeds[0, 0], embeds[1, 0] = 3.0, -2.0
    fake = backbones.Backbone(
        "fake", None, torch.device("cpu"), torch.float32, "", None, lambda pixels: embeds
    )
    scores = aesthetic_scores(fake, head, torch.zeros(2, 3, 224, 224))
    # +e0: h1 = .001 + .5 = .501; h2 = 1024*.002*.501 - .1; h3 = 128*.01*h2; h4 = 64*.05*h3 + .2; 16*.1*h4 + 1
    expected = []
    for x in (1.0, -1.0):
        h1 = 0.001 * x + 0.5
        h2 = 1024 * 0.002 * h1 - 0.1
        h3 = 128 * 0.01 * h2
        h4 = 64 * 0.05 * h3 + 0.2
        expected.append(16 * 0.1 * h4 + 1.0)
    assert expected == pytest.approx([7.3889481728, 7.3621046272])
    assert scores.tolist() == pytest.approx(expected, rel=1e-5)  # fp32 sums of 1024 terms
    # dropouts are off: a second pass gives the same numbers
    assert torch.equal(scores, aesthetic_scores(fake, head, torch.zeros(2, 3, 224, 224)))


def test_head_loads_only_the_official_key_names(ctx, tmp_path):
    assert sorted(aesthetic_mlp().state_dict()) == sorted(
        f"layers.{i}.{p}" for i in (0, 2, 4, 6, 7) for p in ("weight", "bias")
    )
    renamed = {key.removeprefix("layers."): value for key, value in constant_head_state().items()}
    torch.save(renamed, tmp_path / "renamed.pth")
    with pytest.raises(RuntimeError, match="Missing key"):
        load_aesthetic_mlp(ctx, tmp_path / "renamed.pth")


def test_matches_opens2v_pipeline_built_from_stock_transformers_parts(
    ready, ctx, weights_dir, shared_dir, monkeypatch
):
    """get_aesscore.py's steps with the stock PIL CLIP processor on the real video's 32 frames."""
    from transformers import CLIPImageProcessorPil, CLIPVisionModelWithProjection

    monkeypatch.setenv("KALEIDO_BENCH_WEIGHTS", str(weights_dir))
    video = decode_video(shared_dir / "opens2v/videos/faceobj_14.mp4")
    result = ready(Aesthetics()).score(video, CASE, ctx)

    folder = weights_dir / backbones.CLIP_VIT_L14_HF.filename
    indices = np.linspace(0, video.num_frames - 1, 32, dtype=int)
    images = [Image.fromarray(video.frames[i]) for i in indices]
    inputs = CLIPImageProcessorPil.from_pretrained(folder)(images=images, return_tensors="pt")
    assert torch.equal(
        inputs["pixel_values"],
        video._cache[("pixels", backbones.HF_CLIP_PREPROCESS_ID, "linspace", 32)],
    )
    clip = CLIPVisionModelWithProjection.from_pretrained(folder, dtype=torch.float32).eval()
    head = aesthetic_mlp()
    head.load_state_dict(torch.load(weights_dir / AESTHETIC_MLP.filename, weights_only=True))
    with torch.no_grad():
        embed = clip(**inputs)[0]
        embed = embed / torch.linalg.vector_norm(embed, dim=-1, keepdim=True)
        official = head(embed).squeeze(1)
    assert result.details["frames"] == 32
    assert result.value == official.mean().item()  # same ops on bit-identical inputs
    assert result.details["per_frame"] == pytest.approx(official.tolist(), abs=1e-6)


def test_missing_head_is_named_even_when_clip_is_present(ctx, weights_dir, tmp_path, monkeypatch):
    import shutil

    shutil.copytree(weights_dir / "hf", tmp_path / "hf")
    monkeypatch.setenv("KALEIDO_BENCH_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsMissingError, match="aesthetic-model.pth"):
        Aesthetics().setup(ctx)


def test_one_batch_of_32_frames_even_for_short_videos(ready, ctx, weights_dir, monkeypatch):
    monkeypatch.setenv("KALEIDO_BENCH_WEIGHTS", str(weights_dir))
    frames = np.random.default_rng(0).integers(0, 256, (5, 64, 96, 3), dtype=np.uint8)
    result = ready(Aesthetics()).score(DecodedVideo(frames, 16.0), CASE, ctx)
    per_frame = result.details["per_frame"]
    assert len(per_frame) == 32  # linspace repeats frames of a 5-frame video, as OpenS2V does
    assert per_frame[0] == pytest.approx(per_frame[1], abs=1e-6)  # indices 0, 0, 0, ...
