"""One CLIP image tower per distinct weights: open_clip files and transformers folders alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kaleido_bench.core.cases import Case
from kaleido_bench.core.video import DecodedVideo
from kaleido_bench.metrics import backbones, clip_vision
from kaleido_bench.metrics.aesthetics import Aesthetics, aesthetic_mlp, aesthetic_scores
from kaleido_bench.metrics.clip_i import ClipIL14

# a tiny OpenAI-style ViT-L-14 whose projection is 768-d, so the aesthetic head reads it
TINY_L14 = {
    "embed_dim": 768,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 32, "patch_size": 14, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
TEXT = {
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "vocab_size": 99,
    "max_position_embeddings": 77,
    "bos_token_id": 0,
    "eos_token_id": 1,
}


def save_open_clip(path, seed=0):
    import open_clip
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = open_clip.create_model("ViT-L-14", force_quick_gelu=True, **TINY_L14).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return model


def save_hf_folder(folder, open_clip_model, change=False):
    """A transformers CLIPModel folder whose image tower holds `open_clip_model`'s tensors."""
    import json

    from support.random_weights import HF_CLIP_PREPROCESSOR_CONFIG
    from transformers import CLIPConfig, CLIPModel

    arch = clip_vision.open_clip_architecture("ViT-L-14", TINY_L14)
    vision = {k: v for k, v in arch.items() if k != "projection_dim"}
    model = CLIPModel(CLIPConfig(text_config=TEXT, vision_config=vision, projection_dim=768))
    tower = clip_vision.open_clip_to_transformers(
        open_clip_model.state_dict(), arch["num_hidden_layers"]
    )
    with torch.no_grad():
        own = model.state_dict()
        for name, tensor in tower.items():
            own[name].copy_(tensor)
        if change:
            own["vision_model.post_layernorm.bias"].add_(1e-3)
    model.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(HF_CLIP_PREPROCESSOR_CONFIG))


def frames(count=3, height=480, width=832, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def test_open_clip_tower_in_transformers_matches_open_clip(ctx, tmp_path):
    reference = save_open_clip(tmp_path / "l14.safetensors")
    tower = clip_vision.load_open_clip_image_tower(
        ctx, "ViT-L-14", tmp_path / "l14.safetensors", model_overrides=TINY_L14
    )
    full = backbones.load_open_clip(
        ctx, "ViT-L-14", tmp_path / "l14.safetensors", model_overrides=TINY_L14
    )
    assert tower.preprocess_id == full.preprocess_id  # open_clip's own preprocessing, unchanged
    pixels = tower.preprocess(frames())
    assert torch.equal(pixels, full.preprocess(frames()))
    with torch.no_grad():
        expected = reference.encode_image(pixels)
    got = tower.embed_pixels(pixels)
    assert got.shape == (3, 768)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_same_weights_in_two_formats_give_one_model_and_other_weights_another(ctx, tmp_path):
    reference = save_open_clip(tmp_path / "l14.safetensors")
    save_hf_folder(tmp_path / "same", reference)
    save_hf_folder(tmp_path / "changed", reference, change=True)
    from_open_clip = clip_vision.load_open_clip_image_tower(
        ctx, "ViT-L-14", tmp_path / "l14.safetensors", model_overrides=TINY_L14
    )
    same = clip_vision.load_hf_clip_vision(ctx, tmp_path / "same")
    changed = clip_vision.load_hf_clip_vision(ctx, tmp_path / "changed")
    assert same.model is from_open_clip.model and same.id == from_open_clip.id
    assert changed.model is not same.model and changed.id != same.id


def test_aesthetics_and_clip_i_l14_share_one_forward_with_unchanged_values(ctx, tmp_path):
    reference = save_open_clip(tmp_path / "l14.safetensors")
    save_hf_folder(tmp_path / "hf", reference)
    torch.save(aesthetic_mlp().state_dict(), tmp_path / "head.pth")
    reference_image = tmp_path / "ref.png"
    from PIL import Image

    Image.fromarray(frames(1, 300, 200, seed=1)[0]).save(reference_image)
    from kaleido_bench.core.cases import ReferenceImage, Role

    case = Case("c", "a cat", (ReferenceImage("ref.png", reference_image, Role.OBJECT, "cat"),))
    video = DecodedVideo(frames(40), 16.0)
    aesthetics = Aesthetics(clip_path=str(tmp_path / "hf"), mlp_path=str(tmp_path / "head.pth"))
    clip_i = ClipIL14(model_path=str(tmp_path / "l14.safetensors"), model_overrides=TINY_L14)
    aesthetics.setup(ctx)
    clip_i.setup(ctx)
    value = aesthetics.score(video, case, ctx).value
    clip_i.score(video, case, ctx)
    assert sum(1 for key in video._cache if key[0] == "embeddings") == 1  # one ViT forward for both

    # aesthetics is the same number the direct one-batch path gives
    direct = aesthetic_scores(
        aesthetics.backbone, aesthetics.head, backbones.hf_clip_preprocess(video.linspace(32))
    )
    assert value == direct.mean().item()


def test_open_clip_file_without_a_tower_tensor_names_the_file(ctx, tmp_path):
    from safetensors.torch import load_file, save_file

    save_open_clip(tmp_path / "l14.safetensors")
    state = load_file(str(tmp_path / "l14.safetensors"))
    del state["visual.ln_post.bias"]
    save_file(state, str(tmp_path / "broken.safetensors"))
    with pytest.raises(ValueError, match="broken.safetensors.*visual.ln_post.bias"):
        clip_vision.load_open_clip_image_tower(
            ctx, "ViT-L-14", tmp_path / "broken.safetensors", model_overrides=TINY_L14
        )


def test_digest_sees_every_byte():
    tensors = {"a": torch.zeros(4), "b": torch.ones(2, 2)}
    arch = {"hidden_size": 4}
    base = clip_vision.TowerWeights(arch, tensors, "x").digest()
    assert (
        clip_vision.TowerWeights(arch, {k: v.clone() for k, v in tensors.items()}, "y").digest()
        == base
    )
    nudged = {**tensors, "b": torch.tensor([[1.0, 1.0], [1.0, 1.0 + 2**-20]])}
    assert clip_vision.TowerWeights(arch, nudged, "x").digest() != base
    assert clip_vision.TowerWeights({"hidden_size": 5}, tensors, "x").digest() != base


def test_a_tower_gives_the_same_bits_whichever_file_it_was_read_from(ctx, tmp_path):
    """Built alone from either format (other memory offsets in the files), one image embeds identically."""
    reference = save_open_clip(tmp_path / "l14.safetensors")
    save_hf_folder(tmp_path / "hf", reference)
    pixels = backbones.hf_clip_preprocess(frames(1, 300, 200))
    from_open_clip = clip_vision.load_open_clip_image_tower(
        ctx, "ViT-L-14", tmp_path / "l14.safetensors", model_overrides=TINY_L14
    ).embed_pixels(pixels)
    ctx.pool.close()
    from_folder = clip_vision.load_hf_clip_vision(ctx, tmp_path / "hf").embed_pixels(pixels)
    assert torch.equal(from_open_clip, from_folder)
