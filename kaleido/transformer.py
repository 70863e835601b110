"""The Kaleido DiT: diffusers' Wan2.1 transformer with reference latents in front of the video.

Kaleido adds to Wan2.1-T2V only this (SPEC.md section 1): K clean reference latent frames are
concatenated in front of the noisy video latents along time, go through the same patch
embedding, the same blocks (full self-attention over [refs; video], the same text
cross-attention and timestep modulation), get R-RoPE positions (`rope.py`), and their tokens
are sliced off before the final norm, so the output is the video's velocity only.

`KaleidoTransformer3DModel` subclasses diffusers' `WanTransformer3DModel`, so its parameter
names are diffusers' (the SAT key map in `checkpoint.py` is SPEC.md's table) and, with zero
references, its forward is Wan's step for step. Time embedding, modulation tables and the
affine norms stay in float32 when the rest is cast to bf16 (diffusers' choice; the release
runs them in bf16).
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.transformers.transformer_wan import WanTransformer3DModel

from kaleido_bench.kaleido.config import TransformerConfig
from kaleido_bench.kaleido.rope import RRoPE

#: parameter-name components kept in float32 under a bf16 cast (diffusers' `_keep_in_fp32_modules`).
FP32_COMPONENTS = frozenset({"time_embedder", "scale_shift_table", "norm1", "norm2", "norm3"})


def parameter_dtype(name: str, dtype: torch.dtype) -> torch.dtype:
    """The dtype a parameter gets when the model runs in `dtype`."""
    if dtype in (torch.float16, torch.bfloat16) and FP32_COMPONENTS.intersection(name.split(".")):
        return torch.float32
    return dtype


class KaleidoTransformer3DModel(WanTransformer3DModel):
    """Wan2.1 DiT + reference tokens + R-RoPE (parameter names identical to diffusers')."""

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, ...] = (1, 2, 2),
        num_attention_heads: int = 40,
        attention_head_dim: int = 128,
        in_channels: int = 16,
        out_channels: int = 16,
        text_dim: int = 4096,
        freq_dim: int = 256,
        ffn_dim: int = 13824,
        num_layers: int = 40,
        cross_attn_norm: bool = True,
        qk_norm: str | None = "rms_norm_across_heads",
        eps: float = 1e-6,
        rope_max_seq_len: int = 1024,
        rope_theta: float = 10000.0,
        max_references: int = 3,
        ref_rope_offset: int = 80,
        rope_continue: bool = False,
    ) -> None:
        super().__init__(
            patch_size=patch_size,
            num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim,
            in_channels=in_channels,
            out_channels=out_channels,
            text_dim=text_dim,
            freq_dim=freq_dim,
            ffn_dim=ffn_dim,
            num_layers=num_layers,
            cross_attn_norm=cross_attn_norm,
            qk_norm=qk_norm,
            eps=eps,
            rope_max_seq_len=rope_max_seq_len,
        )
        # Replace Wan's video-only table by R-RoPE (same tables for the video tokens).
        self.rope = RRoPE(
            attention_head_dim,
            tuple(patch_size),
            rope_max_seq_len,
            theta=rope_theta,
            offset=ref_rope_offset,
            rope_continue=rope_continue,
        )

    @classmethod
    def from_config_dataclass(cls, config: TransformerConfig) -> KaleidoTransformer3DModel:
        kwargs = config.diffusers_kwargs()
        return cls(
            **kwargs,
            rope_theta=config.rope_theta,
            max_references=config.max_references,
            ref_rope_offset=config.ref_rope_offset,
            rope_continue=config.rope_continue,
        )

    def cast(self, dtype: torch.dtype) -> KaleidoTransformer3DModel:
        """Cast to `dtype`, keeping time embedding, modulation tables and affine norms in fp32."""
        for name, param in self.named_parameters():
            param.data = param.data.to(parameter_dtype(name, dtype))
        return self

    def embed_text(self, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        """Project umT5 states (B, L, text_dim) to the model width; do it once per video."""
        return self.condition_embedder.text_embedder(encoder_hidden_states)

    def embed_timestep(
        self, timestep: torch.Tensor, like: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(temb, timestep_proj (B, 6, D)) exactly as diffusers' condition embedder computes them."""
        embedder = self.condition_embedder
        t = embedder.timesteps_proj(timestep)
        time_dtype = next(iter(embedder.time_embedder.parameters())).dtype
        if t.dtype != time_dtype and time_dtype != torch.int8:
            t = t.to(time_dtype)
        temb = embedder.time_embedder(t).type_as(like)
        timestep_proj = embedder.time_proj(embedder.act_fn(temb))
        return temb, timestep_proj.unflatten(1, (6, -1))

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        reference_latents: torch.Tensor | None = None,
        *,
        text_embedded: bool = False,
        return_dict: bool = True,
    ) -> Transformer2DModelOutput | tuple[torch.Tensor]:
        """Velocity of the video latents.

        hidden_states: noisy video latents (B, C, F, H, W). timestep: (B,) in [0, 1000].
        encoder_hidden_states: umT5 states (B, L, text_dim), or the output of `embed_text`
        with `text_embedded=True`. reference_latents: clean references (B or 1, C, K, H, W),
        one latent frame each, or None / K = 0 for plain Wan T2V.
        """
        batch, _, frames, height, width = hidden_states.shape
        p_t, p_h, p_w = self.config.patch_size
        grid = (frames // p_t, height // p_h, width // p_w)

        num_refs = 0 if reference_latents is None else reference_latents.shape[2]
        if num_refs > self.config.max_references:
            raise ValueError(
                f"{num_refs} references given; this model takes at most {self.config.max_references}"
            )
        if num_refs:
            if reference_latents.shape[3:] != hidden_states.shape[3:]:
                raise ValueError(
                    f"reference latents {tuple(reference_latents.shape)} must share the video's "
                    f"height and width {tuple(hidden_states.shape[3:])}"
                )
            refs = reference_latents.to(hidden_states.dtype).expand(batch, -1, -1, -1, -1)
            hidden_states = torch.cat([refs, hidden_states], dim=2)

        rotary_emb = self.rope(num_refs, grid, hidden_states.device)

        hidden_states = self.patch_embedding(hidden_states)
        hidden_states = hidden_states.flatten(2).transpose(1, 2).contiguous()

        if not text_embedded:
            encoder_hidden_states = self.embed_text(encoder_hidden_states)
        temb, timestep_proj = self.embed_timestep(timestep, encoder_hidden_states)

        # `enable_gradient_checkpointing()` (diffusers' ModelMixin) recomputes each block in the
        # backward pass, as `WanTransformer3DModel.forward` does (transformer_wan.py, step 4).
        checkpointing = torch.is_grad_enabled() and self.gradient_checkpointing
        for block in self.blocks:
            args = (hidden_states, encoder_hidden_states, timestep_proj, rotary_emb)
            hidden_states = (
                self._gradient_checkpointing_func(block, *args) if checkpointing else block(*args)
            )

        # Reference tokens end here: the output is the video only.
        hidden_states = hidden_states[:, num_refs * grid[1] * grid[2] :]

        shift, scale = (self.scale_shift_table.to(temb.device) + temb.unsqueeze(1)).chunk(2, dim=1)
        hidden_states = (self.norm_out(hidden_states.float()) * (1 + scale) + shift).type_as(
            hidden_states
        )
        hidden_states = self.proj_out(hidden_states)

        hidden_states = hidden_states.reshape(batch, *grid, p_t, p_h, p_w, -1)
        hidden_states = hidden_states.permute(0, 7, 1, 4, 2, 5, 3, 6)
        output = hidden_states.flatten(6, 7).flatten(4, 5).flatten(2, 3)
        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)


def build_transformer(
    config: TransformerConfig,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    seed: int | None = None,
) -> KaleidoTransformer3DModel:
    """A randomly initialised transformer (deterministic for `seed`), or an empty one on `meta`."""
    if str(device) == "meta":
        with torch.device("meta"):
            return KaleidoTransformer3DModel.from_config_dataclass(config).cast(dtype)
    # built where it will run: a 14B model initialised on a GPU takes seconds, on a CPU minutes
    device = torch.device(device)
    rng_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices), device:
        if seed is not None:
            torch.manual_seed(seed)
        model = KaleidoTransformer3DModel.from_config_dataclass(config)
    return model.cast(dtype).eval()
