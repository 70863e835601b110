"""R-RoPE: Kaleido's 3D rotary positions for [references; video] token sequences.

Wan's 3D RoPE (diffusers' `WanRotaryPosEmbed`) gives video token (t, h, w) the position
(t, h, w), with the head dimension split t:h:w = 44:42:42 for 128 (h = w = 2 * (d // 6)) and
interleaved cos/sin pairs, theta 10000. Kaleido keeps exactly that for the video and places
reference k (0-based), patch (i, j) at (k, offset + i, offset + j) with offset = 80 in the
release (`max_h: 80`), so references differ from the video and from each other only by
position. The `rope_continue` variant shifts by the video's own patch grid (H, W) instead.

The tables are built once per (number of references, grid, device) and cached: nothing is
recomputed per sampling step.
"""

from __future__ import annotations

import torch
from diffusers.models.embeddings import get_1d_rotary_pos_embed
from torch import nn


def axis_dims(attention_head_dim: int) -> tuple[int, int, int]:
    """Head-dim split (t, h, w), the same rule as Wan: 44/42/42 for 128."""
    h = w = 2 * (attention_head_dim // 6)
    return attention_head_dim - h - w, h, w


def rrope_positions(
    num_references: int,
    grid: tuple[int, int, int],
    *,
    offset: int = 80,
    rope_continue: bool = False,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Integer positions (N, 3) of the token sequence [ref_0, ..., ref_{K-1}, video].

    `grid` is the video's patch grid (frames, height, width); each reference is one latent
    frame of the same height and width. Tokens are in the patch embedding's flatten order
    (time, then height, then width).
    """
    frames, height, width = grid
    parts = []
    if num_references:
        shift_h, shift_w = (height, width) if rope_continue else (offset, offset)
        k, i, j = torch.meshgrid(
            torch.arange(num_references, device=device),
            torch.arange(height, device=device) + shift_h,
            torch.arange(width, device=device) + shift_w,
            indexing="ij",
        )
        parts.append(torch.stack([k, i, j], dim=-1).reshape(-1, 3))
    t, h, w = torch.meshgrid(
        torch.arange(frames, device=device),
        torch.arange(height, device=device),
        torch.arange(width, device=device),
        indexing="ij",
    )
    parts.append(torch.stack([t, h, w], dim=-1).reshape(-1, 3))
    return torch.cat(parts)


class RRoPE(nn.Module):
    """Cos/sin tables for R-RoPE in the layout diffusers' Wan attention expects: (1, N, 1, D).

    Holds no parameters or buffers (so a model built on the meta device needs no fix-up);
    per-axis tables are computed in float64 like `WanRotaryPosEmbed` and cached by device.
    """

    def __init__(
        self,
        attention_head_dim: int,
        patch_size: tuple[int, int, int],
        max_seq_len: int,
        theta: float = 10000.0,
        offset: int = 80,
        rope_continue: bool = False,
    ) -> None:
        super().__init__()
        self.attention_head_dim = attention_head_dim
        self.patch_size = tuple(patch_size)
        self.max_seq_len = max_seq_len
        self.theta = theta
        self.offset = offset
        self.rope_continue = rope_continue
        self.t_dim, self.h_dim, self.w_dim = axis_dims(attention_head_dim)
        self._axis_tables: dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def axis_tables(self, device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per-axis (max_seq_len, dim) cos and sin tables, interleaved pairs, float32."""
        key = str(device)
        if key not in self._axis_tables:
            cos, sin = [], []
            for dim in (self.t_dim, self.h_dim, self.w_dim):
                c, s = get_1d_rotary_pos_embed(
                    dim,
                    self.max_seq_len,
                    self.theta,
                    use_real=True,
                    repeat_interleave_real=True,
                    freqs_dtype=torch.float64,
                )
                cos.append(c.to(device))
                sin.append(s.to(device))
            self._axis_tables[key] = (cos, sin)
        return self._axis_tables[key]

    def tables_for_positions(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, N, 1, D) cos and sin for integer positions (N, 3)."""
        if int(positions.max()) >= self.max_seq_len:
            raise ValueError(
                f"R-RoPE position {int(positions.max())} exceeds the table size {self.max_seq_len}"
            )
        cos_axes, sin_axes = self.axis_tables(positions.device)
        cos = torch.cat([table[positions[:, a]] for a, table in enumerate(cos_axes)], dim=-1)
        sin = torch.cat([table[positions[:, a]] for a, table in enumerate(sin_axes)], dim=-1)
        return cos[None, :, None, :], sin[None, :, None, :]

    def forward(
        self, num_references: int, grid: tuple[int, int, int], device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Tables for K references and a video patch grid, cached for the next step."""
        key = (num_references, tuple(grid), str(device))
        if key not in self._cache:
            positions = rrope_positions(
                num_references,
                grid,
                offset=self.offset,
                rope_continue=self.rope_continue,
                device=device,
            )
            if len(self._cache) > 16:
                self._cache.clear()
            self._cache[key] = self.tables_for_positions(positions)
        return self._cache[key]
