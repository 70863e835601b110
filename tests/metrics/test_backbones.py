"""Backbone loading (tiny random models saved in the real formats), preprocessing parity, caches."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from kaleido_bench.core.errors import WeightsMissingError
from kaleido_bench.metrics import backbones
from kaleido_bench.metrics.embedding_cache import EmbeddingCache

TINY_DINO = {"embed_dim": 32, "depth": 2, "num_heads": 2}
TINY_DINOV2 = {"embed_dim": 32, "depth": 2, "num_heads": 2}
TINY_OPEN_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 32, "patch_size": 32, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def random_frames(count: int, height: int = 120, width: int = 208, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- HF CLIP preprocessing


@pytest.mark.parametrize("shape", [(480, 832), (832, 480), (300, 300), (225, 511)])
def test_hf_clip_preprocess_is_bit_identical_to_transformers_pil_processor(shape):
    """Ours vs transformers' stock PIL CLIP processor (= 4.51's CLIPImageProcessor OpenS2V used)."""
    from transformers import CLIPImageProcessorPil

    frames = random_frames(3, *shape)
    stock = CLIPImageProcessorPil()(
        images=[Image.fromarray(f) for f in frames], return_tensors="pt"
    )
    ours = backbones.hf_clip_preprocess(frames)
    assert ours.dtype == torch.float32 and ours.shape == (3, 3, 224, 224)
    assert torch.equal(ours, stock["pixel_values"])


def test_hf_clip_folder_with_other_preprocessing_is_refused(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text(
        '{"size": {"shortest_edge": 336}, "crop_size": 336}'
    )
    with pytest.raises(ValueError, match="shortest_edge"):
        backbones.check_hf_clip_preprocessor(tmp_path)
    # the hub's old-style ints for the stock values pass
    (tmp_path / "preprocessor_config.json").write_text(
        '{"size": 224, "crop_size": 224, "resample": 3}'
    )
    backbones.check_hf_clip_preprocessor(tmp_path)


def test_hf_clip_vision_loads_full_clip_folder_once(ctx, tmp_path):
    from transformers import CLIPConfig, CLIPModel, CLIPVisionModelWithProjection

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
    ).save_pretrained(tmp_path)

    from kaleido_bench.metrics.clip_vision import load_hf_clip_vision

    first = load_hf_clip_vision(ctx, tmp_path)
    assert load_hf_clip_vision(ctx, tmp_path) is first  # memoised
    frames = random_frames(2)
    direct = CLIPVisionModelWithProjection.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        expected = direct(pixel_values=backbones.hf_clip_preprocess(frames)).image_embeds
    assert torch.equal(
        first.embed_images(frames), expected
    )  # the very network from_pretrained builds


# --------------------------------------------------------------------------- open_clip


def save_tiny_open_clip(path):
    import open_clip
    from safetensors.torch import save_file

    model = open_clip.create_model("ViT-B-32", force_quick_gelu=True, **TINY_OPEN_CLIP)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return model.eval()


def test_open_clip_loads_from_file_with_quickgelu_and_shipped_vocabulary(ctx, tmp_path):
    import open_clip

    reference = save_tiny_open_clip(tmp_path / "clip.safetensors")
    backbone = backbones.load_open_clip(
        ctx, "ViT-B-32", tmp_path / "clip.safetensors", model_overrides=TINY_OPEN_CLIP
    )
    assert isinstance(
        backbone.model.visual.transformer.resblocks[0].mlp.gelu, open_clip.transformer.QuickGELU
    )
    assert len(backbone.tokenizer.encoder) == 49408  # the real BPE vocabulary, offline
    frames = random_frames(3)
    with torch.no_grad():
        expected = reference.encode_image(backbone.preprocess(frames))
        text = reference.encode_text(open_clip.get_tokenizer("ViT-B-32")(["a red car"]))
    assert torch.allclose(backbone.embed_images(frames), expected, atol=1e-6)
    assert torch.allclose(backbone.embed_texts(["a red car"]), text, atol=1e-6)
    assert "Resize(size=224, interpolation=bicubic" in backbone.preprocess_id


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_open_clip_text_tower_alone_embeds_prompts_as_the_whole_model(ctx, tmp_path, suffix):
    reference = save_tiny_open_clip(tmp_path / "clip.safetensors")
    if suffix == ".pt":
        torch.save(reference.state_dict(), tmp_path / "clip.pt")
    prompts = ["a red car", "two people dancing in the rain " * 3]
    whole = backbones.load_open_clip(
        ctx, "ViT-B-32", tmp_path / "clip.safetensors", model_overrides=TINY_OPEN_CLIP
    )
    text = backbones.load_open_clip_text(
        ctx, "ViT-B-32", tmp_path / f"clip{suffix}", model_overrides=TINY_OPEN_CLIP
    )
    assert torch.equal(text.embed_texts(prompts), whole.embed_texts(prompts))
    assert text.model.visual is None and text.preprocess is None
    text_parameters = sum(
        p.numel() for n, p in whole.model.named_parameters() if not n.startswith("visual.")
    )
    assert sum(p.numel() for p in text.model.parameters()) == text_parameters
    assert text.source == str(tmp_path / f"clip{suffix}") and text.context_length == 77
    with pytest.raises(TypeError, match="text tower only"):
        text.forward(torch.zeros(1, 3, 224, 224))


def test_open_clip_text_tower_missing_a_tensor_names_the_file(ctx, tmp_path):
    from safetensors.torch import save_file

    state = save_tiny_open_clip(tmp_path / "clip.safetensors").state_dict()
    del state["ln_final.weight"]
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "broken.safetensors"))
    with pytest.raises(ValueError, match=r"broken\.safetensors.*ln_final\.weight"):
        backbones.load_open_clip_text(
            ctx, "ViT-B-32", tmp_path / "broken.safetensors", model_overrides=TINY_OPEN_CLIP
        )


# --------------------------------------------------------------------------- timm DINOv2


def test_timm_dinov2_loads_518_checkpoint_resampled_to_224(ctx, tmp_path):
    import timm
    from safetensors.torch import save_file

    saved = timm.create_model("vit_base_patch14_dinov2", num_classes=0, img_size=518, **TINY_DINOV2)
    assert saved.pos_embed.shape[1] == 37 * 37 + 1
    save_file(
        {k: v.contiguous() for k, v in saved.state_dict().items()},
        str(tmp_path / "model.safetensors"),
    )

    backbone = backbones.load_timm_vit(
        ctx, "vit_base_patch14_dinov2", tmp_path / "model.safetensors", model_overrides=TINY_DINOV2
    )
    assert backbone.model.pos_embed.shape[1] == 16 * 16 + 1
    torch.testing.assert_close(
        backbone.model.blocks[1].mlp.fc2.weight, saved.blocks[1].mlp.fc2.weight
    )
    pixels = backbone.preprocess(random_frames(2))
    assert pixels.shape == (2, 3, 224, 224)
    assert backbone.embed_images(random_frames(2)).shape == (2, 32)


# --------------------------------------------------------------------------- DINO v1


def test_dino_v1_state_dict_loads_strictly_and_matches_timm_vit_on_square_input(ctx, tmp_path):
    """Same keys as facebookresearch/dino (timm's ViT shares them) and the same CLS output."""
    import timm

    model = backbones.dino_vision_transformer(**TINY_DINO)
    torch.save(model.state_dict(), tmp_path / "dino.pth")
    backbone = backbones.load_dino_v1(ctx, tmp_path / "dino.pth", model_overrides=TINY_DINO)
    vit = timm.create_model("vit_base_patch16_224", num_classes=0, **TINY_DINO).eval()
    vit.load_state_dict(torch.load(tmp_path / "dino.pth", weights_only=True), strict=True)
    pixels = torch.randn(3, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(backbone.embed_pixels(pixels), vit(pixels), atol=2e-5, rtol=0)


def test_dino_v1_interpolates_position_embedding_by_dinos_scale_factor_rule():
    """224x388 (VBench's 480x832 frame): grid 14x24, bicubic with scale ((14.1)/14, (24.1)/14)."""
    model = backbones.dino_vision_transformer(**TINY_DINO)
    assert model.interpolate_pos_encoding(14 * 14 + 1, 224, 224) is model.pos_embed
    table = model.interpolate_pos_encoding(14 * 24 + 1, 224, 388)
    grid = model.pos_embed[:, 1:].reshape(1, 14, 14, 32).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, scale_factor=(14.1 / 14, 24.1 / 14), mode="bicubic")
    assert expected.shape[-2:] == (14, 24)
    torch.testing.assert_close(
        table[:, 1:], expected.permute(0, 2, 3, 1).reshape(1, -1, 32), atol=0, rtol=0
    )
    torch.testing.assert_close(table[:, :1], model.pos_embed[:, :1])
    # the size-based resampling (timm) is NOT the same table: the reason DINO is our own module
    by_size = F.interpolate(grid, size=(14, 24), mode="bicubic", antialias=True)
    assert not torch.allclose(by_size, expected, atol=1e-4)
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 224, 388)).shape == (2, 32)


def test_dino_v1_refuses_a_training_checkpoint(ctx, tmp_path):
    torch.save({"teacher": {}, "student": {}}, tmp_path / "checkpoint.pth")
    with pytest.raises(ValueError, match="backbone-only"):
        backbones.load_dino_v1(ctx, tmp_path / "checkpoint.pth")


# --------------------------------------------------------------------------- memo / weights


def test_each_backbone_is_built_once_per_key(ctx, tmp_path):
    model = backbones.dino_vision_transformer(**TINY_DINO)
    torch.save(model.state_dict(), tmp_path / "dino.pth")
    before = len(ctx.pool)
    first = backbones.load_dino_v1(ctx, tmp_path / "dino.pth", model_overrides=TINY_DINO)
    again = backbones.load_dino_v1(ctx, str(tmp_path / "dino.pth"), model_overrides=dict(TINY_DINO))
    assert again is first and len(ctx.pool) == before + 1
    # another precision is another model
    assert (
        backbones.load_dino_v1(
            ctx, tmp_path / "dino.pth", precision="bf16", model_overrides=TINY_DINO
        )
        is not first
    )


@pytest.mark.parametrize(
    ("metric", "filename"),
    [
        ("clip_i", "ViT-B-32-openai.safetensors"),
        ("clip_i_l14", "ViT-L-14-openai.safetensors"),
        ("clip_t", "ViT-B-32-openai.safetensors"),
        ("dino_i", "vit_base_patch14_dinov2.lvd142m.safetensors"),
        ("subject_consistency", "dino_vitbase16_pretrain.pth"),
        ("background_consistency", "ViT-B-32-openai.safetensors"),
        ("aesthetics", "openai--clip-vit-large-patch14"),
    ],
)
def test_missing_weights_fail_fast_naming_the_file(ctx, tmp_path, monkeypatch, metric, filename):
    from kaleido_bench.metrics.base import get_metric_class

    monkeypatch.setenv("KALEIDO_BENCH_WEIGHTS", str(tmp_path))
    started = time.perf_counter()
    with pytest.raises(WeightsMissingError, match=filename) as error:
        get_metric_class(metric)().setup(ctx)
    assert time.perf_counter() - started < 2.0
    assert f"weights download {metric}" in str(error.value)


# --------------------------------------------------------------------------- embedding cache


def test_embedding_cache_embeds_each_file_content_once(tmp_path):
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(a).save(tmp_path / "copy_of_a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    calls = []

    def compute(paths):
        calls.append([p.name for p in paths])
        return torch.stack(
            [torch.from_numpy(np.array(Image.open(p))).float().mean((0, 1)) for p in paths]
        )

    cache = EmbeddingCache(directory=tmp_path / "store")
    paths = [tmp_path / "a.png", tmp_path / "b.png", tmp_path / "copy_of_a.png"]
    rows = cache.embeddings(paths, "model-1", "prep-1", compute)
    assert calls == [["a.png", "b.png"]]  # one batch, the duplicate content not recomputed
    torch.testing.assert_close(rows[0], rows[2])
    cache.embeddings(paths, "model-1", "prep-1", compute)
    assert len(calls) == 1 and cache.hits == 4 and cache.misses == 2
    cache.embeddings(paths[:1], "model-2", "prep-1", compute)  # another model: new key
    cache.embeddings(paths[:1], "model-1", "prep-2", compute)  # another preprocessing: new key
    assert len(calls) == 3

    Image.fromarray(b).save(tmp_path / "a.png")  # same path, new bytes
    assert cache.embeddings(paths[:1], "model-1", "prep-1", compute)[0].tolist() == rows[1].tolist()

    fresh = EmbeddingCache(directory=tmp_path / "store")  # a resumed run reads the stored rows
    fresh.embeddings([tmp_path / "b.png"], "model-1", "prep-1", lambda p: pytest.fail("recomputed"))


def test_file_identity_changes_with_content(tmp_path):
    path = tmp_path / "w.pth"
    path.write_bytes(b"1")
    first = backbones.file_identity(path)
    path.write_bytes(b"22")
    assert backbones.file_identity(path) != first


def test_missing_reference_file_is_a_missing_image_error(tmp_path):
    from kaleido_bench.core.errors import MissingImageError

    with pytest.raises(MissingImageError, match="gone.png"):
        EmbeddingCache().embeddings(
            [tmp_path / "gone.png"], "m", "p", lambda paths: pytest.fail("computed")
        )
