"""The Kaleido DiT: plain Wan with zero references, reference tokens in, video tokens out."""

from __future__ import annotations

import pytest
import torch
from diffusers import WanTransformer3DModel

from kaleido_bench.kaleido.config import KALEIDO_14B
from kaleido_bench.kaleido.transformer import build_transformer


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(1)
    video = torch.randn(2, 4, 3, 8, 10, generator=g)
    timestep = torch.tensor([900.0, 250.0])
    text = torch.randn(2, 7, 32, generator=g)
    refs = torch.randn(1, 4, 3, 8, 10, generator=g)
    return video, timestep, text, refs


def test_zero_references_equal_diffusers_wan(tiny_transformer, tiny_config, inputs):
    video, timestep, text, _ = inputs
    wan = WanTransformer3DModel(**tiny_config.transformer.diffusers_kwargs()).eval()
    wan.load_state_dict(tiny_transformer.state_dict(), strict=True)
    with torch.no_grad():
        expected = wan(video, timestep, text).sample
        for refs in (None, torch.zeros(1, 4, 0, 8, 10)):
            ours = tiny_transformer(video, timestep, text, refs).sample
            assert (ours - expected).abs().max().item() < 1e-5


def test_zero_references_equal_diffusers_wan_at_head_dim_128(inputs):
    """The released head dim (RoPE split 44/42/42) on one small layer."""
    from dataclasses import replace

    from kaleido_bench.kaleido.config import KALEIDO_TINY

    config = replace(
        KALEIDO_TINY.transformer, num_attention_heads=1, attention_head_dim=128, num_layers=1
    )
    ours = build_transformer(config, seed=4)
    wan = WanTransformer3DModel(**config.diffusers_kwargs()).eval()
    wan.load_state_dict(ours.state_dict(), strict=True)
    video, timestep, text, _ = inputs
    with torch.no_grad():
        assert (
            ours(video, timestep, text).sample - wan(video, timestep, text).sample
        ).abs().max().item() < 1e-5


def test_parameter_names_are_diffusers_names(tiny_transformer, tiny_config):
    wan = WanTransformer3DModel(**tiny_config.transformer.diffusers_kwargs())
    assert list(tiny_transformer.state_dict()) == list(wan.state_dict())


def test_references_change_the_video_but_not_its_shape(tiny_transformer, inputs):
    video, timestep, text, refs = inputs
    with torch.no_grad():
        plain = tiny_transformer(video, timestep, text).sample
        with_refs = tiny_transformer(video, timestep, text, refs).sample
        swapped = tiny_transformer(video, timestep, text, refs[:, :, [1, 0, 2]]).sample
    assert with_refs.shape == plain.shape == video.shape
    assert not torch.allclose(plain, with_refs)
    # no per-reference embedding: only R-RoPE tells references apart, and it does
    assert not torch.allclose(with_refs, swapped)


def test_references_share_batch_and_pre_embedded_text(tiny_transformer, inputs):
    video, timestep, text, refs = inputs
    with torch.no_grad():
        a = tiny_transformer(video, timestep, text, refs).sample
        b = tiny_transformer(video, timestep, tiny_transformer.embed_text(text), refs.expand(2, -1, -1, -1, -1),
                             text_embedded=True).sample  # fmt: skip
        single = tiny_transformer(video[1:], timestep[1:], text[1:], refs).sample
    assert torch.equal(a, b)
    assert torch.allclose(a[1:], single, atol=1e-5)


def test_too_many_references_are_refused(tiny_transformer, inputs):
    video, timestep, text, _ = inputs
    with pytest.raises(ValueError, match="at most 3"):
        tiny_transformer(video, timestep, text, torch.zeros(1, 4, 4, 8, 10))


def test_14b_config_has_the_released_size():
    t = KALEIDO_14B.transformer
    assert (t.num_layers, t.inner_dim, t.num_attention_heads, t.ffn_dim, t.text_dim, t.freq_dim, t.eps) == (
        40, 5120, 40, 13824, 4096, 256, 1e-6)  # fmt: skip
    model = build_transformer(t, device="meta", dtype=torch.bfloat16)
    assert sum(p.numel() for p in model.parameters()) == t.num_parameters() == 14_288_491_584
    assert model.blocks[0].attn1.norm_q.weight.shape == (5120,)  # RMSNorm over the full width
    assert model.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32
    assert model.blocks[0].ffn.net[0].proj.weight.dtype == torch.bfloat16
