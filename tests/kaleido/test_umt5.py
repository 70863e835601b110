"""umT5: Wan's .pth names map onto transformers' UMT5EncoderModel both ways; encoding is Wan's layout."""

from __future__ import annotations

import pytest
import torch

from kaleido_bench.kaleido import text_encoder as te
from kaleido_bench.kaleido.errors import CheckpointKeyError, CheckpointNotFoundError


@pytest.fixture(scope="module")
def umt5(tiny_config):
    return te.build_umt5(tiny_config.text_encoder, seed=5)


def test_key_map_covers_wan_names_and_every_parameter(umt5, tiny_config):
    table = te.wan_t5_key_map(tiny_config.text_encoder.num_layers)
    assert (
        table["blocks.1.ffn.gate.0.weight"] == "encoder.block.1.layer.1.DenseReluDense.wi_0.weight"
    )
    assert (
        table["blocks.0.pos_embedding.embedding.weight"]
        == "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
    )
    assert sorted(table.values()) == sorted(k for k in umt5.state_dict() if k != te.TIED_KEY)
    assert len(te.wan_t5_key_map(24)) == 2 + 24 * 10


def test_wan_file_loads_back_to_identical_states(umt5, tiny_config, tmp_path):
    cfg = tiny_config.text_encoder
    torch.save(te.hf_to_wan_t5(umt5.state_dict(), cfg.num_layers), tmp_path / te.WAN_T5_FILE)
    loaded = te.load_umt5_from_wan(te.find_wan_t5_file(tmp_path), cfg, dtype=torch.float32)
    a = te.UMT5TextEncoder(umt5, te.ByteTokenizer(), cfg.text_len).encode(["a red fox", "two cats"])
    b = te.UMT5TextEncoder(loaded, te.ByteTokenizer(), cfg.text_len).encode(
        ["a red fox", "two cats"]
    )
    assert torch.equal(a, b)
    assert loaded.encoder.embed_tokens.weight is loaded.shared.weight


@pytest.mark.parametrize("edit", ["missing", "extra"])
def test_incomplete_wan_file_fails_clearly(umt5, tiny_config, tmp_path, edit):
    state = te.hf_to_wan_t5(umt5.state_dict(), tiny_config.text_encoder.num_layers)
    if edit == "missing":
        state.pop("blocks.1.ffn.fc2.weight")
        pattern = r"1 missing key\(s\): blocks\.1\.ffn\.fc2\.weight"
    else:
        state["blocks.1.attn.extra.weight"] = torch.zeros(1)
        pattern = r"1 unexpected key\(s\): blocks\.1\.attn\.extra\.weight"
    torch.save(state, tmp_path / te.WAN_T5_FILE)
    with pytest.raises(CheckpointKeyError, match=pattern):
        te.load_umt5_from_wan(tmp_path / te.WAN_T5_FILE, tiny_config.text_encoder)


def test_states_past_the_prompt_are_zero_and_padded_to_text_len(umt5, tiny_config):
    encoder = te.UMT5TextEncoder(umt5, te.ByteTokenizer(), tiny_config.text_encoder.text_len)
    states = encoder.encode(["hi", "a much   longer prompt"])
    assert states.shape == (2, tiny_config.text_encoder.text_len, tiny_config.text_encoder.d_model)
    assert states[0, 3:].abs().max() == 0  # "hi" + eos = 3 tokens
    assert states[0, :3].abs().sum() > 0
    # whitespace is squeezed before tokenising (Wan's clean="whitespace")
    assert torch.equal(encoder.encode(["a much longer prompt"])[0], states[1])


def test_byte_tokenizer_truncates_and_ends_with_eos():
    ids, mask = te.ByteTokenizer()(["abcdef"], max_length=4)
    assert ids.tolist() == [[ord("a") + 3, ord("b") + 3, ord("c") + 3, 1]]
    assert mask.tolist() == [[1, 1, 1, 1]]


def test_missing_text_encoder_names_the_file(tmp_path, tiny_config):
    with pytest.raises(
        CheckpointNotFoundError, match="umt5-xxl/models_t5_umt5-xxl-enc-bf16.pth.*Kaleido-14B-S2V"
    ):
        te.load_text_encoder(tmp_path, tiny_config.text_encoder)
