"""Configurations of the Kaleido model: the released 14B network and a tiny one for tests.

One frozen dataclass a component (transformer, VAE, text encoder, sampler) so that a pipeline,
a checkpoint loader and a benchmark read the same numbers. The 14B numbers are those of
docs SPEC.md section 1 (Wan2.1-T2V-14B plus the release's sampling config
`configs/sampling/sample_wanvae_concat_14b.yaml`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

#: Wan2.1's default negative prompt (`sample_neg_prompt` in Wan's `configs/shared_config.py`; VACE and
#: Phantom-Wan copy it unchanged into their own `shared_config.py`).
WAN_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
    "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)

#: Wan's default negative prompt minus one phrase (画得不好的脸部), as in the Kaleido sampling config.
NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，畸形的，毁容的，形态畸形的肢体，手指融合，"
    "静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)

#: Wan2.1 VAE latent statistics (per channel), used to normalise latents before the DiT.
WAN_VAE_LATENTS_MEAN = (
    -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
    0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
)  # fmt: skip
WAN_VAE_LATENTS_STD = (
    2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
    3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160,
)  # fmt: skip


@dataclass(frozen=True)
class TransformerConfig:
    """The DiT: Wan2.1's transformer plus Kaleido's reference options."""

    patch_size: tuple[int, int, int] = (1, 2, 2)
    num_attention_heads: int = 40
    attention_head_dim: int = 128
    in_channels: int = 16
    out_channels: int = 16
    text_dim: int = 4096
    freq_dim: int = 256
    ffn_dim: int = 13824
    num_layers: int = 40
    eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_max_seq_len: int = 1024
    #: references the model accepts (3 in the release, by convention only).
    max_references: int = 3
    #: R-RoPE offset of reference patches along h and w (`max_h: 80` = 1280 px / 8 / 2).
    ref_rope_offset: int = 80
    #: shift references by the video's own patch grid H, W instead of the fixed offset.
    rope_continue: bool = False

    @property
    def inner_dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    def diffusers_kwargs(self) -> dict[str, Any]:
        """Arguments of diffusers' `WanTransformer3DModel` (Wan2.1 T2V: no image branch)."""
        return {
            "patch_size": tuple(self.patch_size),
            "num_attention_heads": self.num_attention_heads,
            "attention_head_dim": self.attention_head_dim,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "text_dim": self.text_dim,
            "freq_dim": self.freq_dim,
            "ffn_dim": self.ffn_dim,
            "num_layers": self.num_layers,
            "cross_attn_norm": True,
            "qk_norm": "rms_norm_across_heads",
            "eps": self.eps,
            "rope_max_seq_len": self.rope_max_seq_len,
        }

    def num_parameters(self) -> int:
        """Parameter count computed from the shapes (14,288,491,584 for the 14B config)."""
        d, f, t, c = self.inner_dim, self.ffn_dim, self.text_dim, self.in_channels
        p = self.patch_size[0] * self.patch_size[1] * self.patch_size[2]
        attn = 4 * (d * d + d) + 2 * d
        block = 2 * attn + 2 * d + (d * f + f) + (f * d + d) + 6 * d
        embed = c * p * d + d + (self.freq_dim * d + d) + (d * d + d) + (d * 6 * d + 6 * d)
        embed += t * d + d + d * d + d
        head = d * self.out_channels * p + self.out_channels * p + 2 * d
        return self.num_layers * block + embed + head


@dataclass(frozen=True)
class VaeConfig:
    """Arguments of diffusers' `AutoencoderKLWan` (defaults: Wan2.1's VAE, t4 x h8 x w8)."""

    base_dim: int = 96
    z_dim: int = 16
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    temperal_downsample: tuple[bool, ...] = (False, True, True)
    latents_mean: tuple[float, ...] = WAN_VAE_LATENTS_MEAN
    latents_std: tuple[float, ...] = WAN_VAE_LATENTS_STD
    scale_factor_temporal: int = 4
    scale_factor_spatial: int = 8

    def diffusers_kwargs(self) -> dict[str, Any]:
        return {
            "base_dim": self.base_dim,
            "z_dim": self.z_dim,
            "dim_mult": list(self.dim_mult),
            "num_res_blocks": self.num_res_blocks,
            "attn_scales": [],
            "temperal_downsample": list(self.temperal_downsample),
            "latents_mean": list(self.latents_mean),
            "latents_std": list(self.latents_std),
            "scale_factor_temporal": self.scale_factor_temporal,
            "scale_factor_spatial": self.scale_factor_spatial,
        }


@dataclass(frozen=True)
class TextEncoderConfig:
    """umT5-XXL encoder (Wan's `umt5_xxl`) as a transformers `UMT5Config`."""

    vocab_size: int = 256384
    d_model: int = 4096
    d_kv: int = 64
    d_ff: int = 10240
    num_heads: int = 64
    num_layers: int = 24
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    #: prompts are padded (with zeros after the encoder) to this many tokens.
    text_len: int = 512

    def umt5_config(self):
        from transformers import UMT5Config

        return UMT5Config(
            vocab_size=self.vocab_size,
            d_model=self.d_model,
            d_kv=self.d_kv,
            d_ff=self.d_ff,
            num_heads=self.num_heads,
            num_layers=self.num_layers,
            num_decoder_layers=0,
            relative_attention_num_buckets=self.relative_attention_num_buckets,
            relative_attention_max_distance=self.relative_attention_max_distance,
            feed_forward_proj="gated-gelu",
            layer_norm_epsilon=1e-6,
            dropout_rate=0.0,
            is_encoder_decoder=False,
            use_cache=False,
            tie_word_embeddings=False,
        )


@dataclass(frozen=True)
class SamplingConfig:
    """The release's sampler: rectified flow, Euler, time shift 7, CFG 6, 512x896, 81 frames at 16 fps."""

    num_steps: int = 50
    shift: float = 7.0
    cfg_scale: float = 6.0
    height: int = 512
    width: int = 896
    num_frames: int = 81
    fps: float = 16.0
    negative_prompt: str = NEGATIVE_PROMPT


@dataclass(frozen=True)
class KaleidoConfig:
    """Every component of one Kaleido model."""

    name: str
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    vae: VaeConfig = field(default_factory=VaeConfig)
    text_encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


KALEIDO_14B = KaleidoConfig(name="kaleido-14b")

#: A network of the same structure, small enough for CPU tests (64x64, 9 frames in about a second).
KALEIDO_TINY = KaleidoConfig(
    name="kaleido-tiny",
    transformer=TransformerConfig(
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=4,
        out_channels=4,
        text_dim=32,
        freq_dim=16,
        ffn_dim=48,
        num_layers=2,
        rope_max_seq_len=256,
        ref_rope_offset=80,
    ),
    vae=VaeConfig(
        base_dim=8,
        z_dim=4,
        dim_mult=(1, 1, 1, 1),
        num_res_blocks=1,
        latents_mean=(0.0, 0.0, 0.0, 0.0),
        latents_std=(1.0, 1.0, 1.0, 1.0),
    ),
    text_encoder=TextEncoderConfig(
        vocab_size=384,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_heads=4,
        num_layers=2,
        text_len=32,
    ),
    sampling=SamplingConfig(num_steps=4, height=64, width=64, num_frames=9),
)

CONFIGS: dict[str, KaleidoConfig] = {c.name: c for c in (KALEIDO_14B, KALEIDO_TINY)}


def get_config(name: str, **transformer_overrides: Any) -> KaleidoConfig:
    """A named config, optionally with transformer fields replaced (e.g. `num_layers=2`)."""
    try:
        config = CONFIGS[name]
    except KeyError:
        raise KeyError(f"unknown Kaleido config {name!r} (known: {', '.join(CONFIGS)})") from None
    if transformer_overrides:
        config = replace(config, transformer=replace(config.transformer, **transformer_overrides))
    return config
