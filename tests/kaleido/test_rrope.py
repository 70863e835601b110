"""R-RoPE: positions token by token, and video-only inputs get exactly Wan's RoPE."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.transformers.transformer_wan import WanRotaryPosEmbed

from kaleido_bench.kaleido.rope import RRoPE, axis_dims, rrope_positions


def test_head_dim_128_splits_44_42_42():
    assert axis_dims(128) == (44, 42, 42)


@pytest.mark.parametrize("rope_continue", [False, True])
@pytest.mark.parametrize("num_refs", [0, 1, 2, 3])
def test_positions_follow_the_rule_token_by_token(num_refs, rope_continue):
    frames, height, width = 3, 4, 5
    positions = rrope_positions(
        num_refs, (frames, height, width), offset=80, rope_continue=rope_continue
    )
    assert positions.shape == ((num_refs + frames) * height * width, 3)
    shift_h, shift_w = (height, width) if rope_continue else (80, 80)
    n = 0
    for k in range(num_refs):  # references first, in the patch embedding's (t, h, w) order
        for i in range(height):
            for j in range(width):
                assert positions[n].tolist() == [k, shift_h + i, shift_w + j]
                n += 1
    for t in range(frames):  # then the video from 0, whatever the number of references
        for h in range(height):
            for w in range(width):
                assert positions[n].tolist() == [t, h, w]
                n += 1


@pytest.mark.parametrize("head_dim", [12, 128])
def test_video_only_tables_equal_wan_rope(head_dim):
    grid = (5, 6, 7)
    ours = RRoPE(head_dim, (1, 2, 2), max_seq_len=1024)(0, grid, torch.device("cpu"))
    wan = WanRotaryPosEmbed(head_dim, (1, 2, 2), max_seq_len=1024)
    theirs = wan(torch.zeros(1, 16, grid[0], grid[1] * 2, grid[2] * 2))
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        assert torch.equal(a, b)


def test_reference_tables_use_the_reference_positions():
    rope = RRoPE(128, (1, 2, 2), max_seq_len=1024)
    cos, sin = rope(2, (3, 4, 4), torch.device("cpu"))
    positions = rrope_positions(2, (3, 4, 4))
    wan = WanRotaryPosEmbed(128, (1, 2, 2), max_seq_len=1024)
    t_dim, h_dim, _ = axis_dims(128)
    token = 1 * 16 + 2 * 4 + 3  # reference 1, patch (2, 3): position (1, 82, 83)
    assert positions[token].tolist() == [1, 82, 83]
    table_t, table_h, table_w = wan.freqs_cos.split([44, 42, 42], dim=1)
    expected = torch.cat([table_t[1], table_h[82], table_w[83]])
    assert torch.equal(cos[0, token, 0], expected)
    assert sin.shape == cos.shape == (1, (2 + 3) * 16, 1, 128)


def test_tables_are_cached_between_steps():
    rope = RRoPE(128, (1, 2, 2), max_seq_len=1024)
    first = rope(3, (2, 4, 4), torch.device("cpu"))
    assert rope(3, (2, 4, 4), torch.device("cpu"))[0] is first[0]


def test_position_beyond_the_table_is_refused():
    rope = RRoPE(12, (1, 2, 2), max_seq_len=64)
    with pytest.raises(ValueError, match="exceeds the table size"):
        rope(1, (2, 4, 4), torch.device("cpu"))
