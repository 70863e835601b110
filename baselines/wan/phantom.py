"""Phantom-Wan (Phantom-video/Phantom) on diffusers' Wan parts: configs, checkpoint key map, pipeline.

Read from the release at upstream commit a895470 (2025-05-28; the stored snapshot of
Phantom-video/Phantom predates the code, so the files were read in the fork sbalani/Phantom-cog,
whose history holds upstream's commits unchanged up to a895470): `generate.py`,
`phantom_wan/subject2video.py`, `phantom_wan/configs/`. Each rule and its source:

- DiT: Wan2.1's T2V `WanModel`, unchanged (`subject2video.py` `Phantom_Wan_S2V.__init__` builds
  `WanModel(dim, ffn_dim, ...)` from `configs/wan_s2v_{1_3B,14B}.py`: 1536/8960/12 heads/30 layers
  and 5120/13824/40/40), so diffusers' `WanTransformer3DModel` with Wan's T2V config. umT5-XXL and
  the VAE are Wan2.1's own, read from a `Wan2.1-T2V-1.3B` folder for BOTH sizes (README:
  `--ckpt_dir ./Wan2.1-T2V-1.3B`), through `kaleido/text_encoder.py` and `kaleido/vae.py`.
- References (`generate.py` `load_ref_images`, line 248): RGB, fitted inside H x W keeping the
  aspect ratio (LANCZOS, sizes int()), padded WHITE and centred (left/top get delta // 2): the
  rule Kaleido uses too, so `kaleido.references.reference_pixels` does it. At most 4 (README).
- Each reference is VAE-encoded ALONE as one frame (`get_vae_latents`, line 159:
  `vae.encode([img.unsqueeze(1)])`), the K latents concatenated along time
  (`kaleido.vae.encode_single_frames`).
- Placement (`generate`, lines 223 and 292-299): noise is drawn for T + K latent frames, and at
  EVERY step the network sees `cat([latent[:, :-K], ref_latents], time)`: the clean references
  come AFTER the video frames and replace the last K noisy frames; the scheduler then steps all
  T + K frames, and the last K are dropped before decoding (line 313). Wan's 3D RoPE (diffusers'
  `WanRotaryPosEmbed`) gives the references time positions T..T+K-1 with no other marker.
- Guidance (line 302): three passes a step, pos_it = f(refs, prompt), pos_i = f(refs, negative
  prompt), neg = f(ZERO refs (`torch.zeros_like` of the normalised latents, line 220), negative
  prompt); v = neg + img * (pos_i - neg) + text * (pos_it - pos_i), img 5.0 and text 7.5
  (`generate.py` `--sample_guide_scale_img` / `--sample_guide_scale_text` defaults).
- Sampler: Wan's FlowUniPC (`baselines/wan/scheduler.py`), 50 steps and shift 5.0
  (`generate.py` `_validate_args`: 50 unless i2v, shift 5.0 unless i2v at 480p); Wan's negative
  prompt (`configs/shared_config.py`). Size: 1.3B supports only `832*480` (W*H) with 81 frames at
  16 fps; the README runs 14B at `832*480 --frame_num 121 --sample_fps 24` (trained on 24 fps).
- Checkpoints: 1.3B `Phantom-Wan-1.3B.pth`, a plain `WanModel` state dict; 14B a folder with
  `Phantom_Wan_14B.safetensors.index.json` and its shards (`subject2video.py` lines 110-132). The
  release loads both with `strict=False`, so a missing tensor silently stays random; ours maps
  Wan's names to diffusers' with diffusers' own `convert_wan_transformer_to_diffusers` and
  refuses any missing or extra key, naming it and the file.

Where ours differs: the release keeps fp32 weights under bf16 autocast, ours runs diffusers' bf16
layout (time embedding, modulation tables and norms in fp32); noise comes from a CPU generator
(the release seeds a CUDA one), so a seed gives a valid but different video than the release's;
zero references make plain Wan T2V (the release's `latent[:, :-0]` is empty and fails there).
Checked end to end against the release's `Phantom_Wan_S2V.generate` with the same random weights
in fp32 (`benchmarks/parity_phantom.py`, `results/parity/phantom.json`): identical reference
pixels, final latents within 1.2e-6 after 20 steps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from diffusers import WanTransformer3DModel
from diffusers.models.transformers.transformer_wan import WanRotaryPosEmbed
from PIL import Image

from kaleido_bench.baselines.wan.scheduler import wan_release_scheduler
from kaleido_bench.kaleido import vae as vae_ops
from kaleido_bench.kaleido.checkpoint import assign_tensors, check_complete, check_shapes
from kaleido_bench.kaleido.config import (
    KALEIDO_TINY,
    WAN_NEGATIVE_PROMPT,
    TextEncoderConfig,
    TransformerConfig,
    VaeConfig,
)
from kaleido_bench.kaleido.errors import CheckpointKeyError, CheckpointNotFoundError
from kaleido_bench.kaleido.pipeline import resident
from kaleido_bench.kaleido.references import reference_pixels
from kaleido_bench.kaleido.text_encoder import ByteTokenizer, UMT5TextEncoder, build_umt5
from kaleido_bench.kaleido.transformer import parameter_dtype

PHANTOM_1_3B_FILE = "Phantom-Wan-1.3B.pth"
PHANTOM_14B_INDEX = "Phantom_Wan_14B.safetensors.index.json"
#: where Wan2.1-T2V-1.3B keeps the umT5 tokenizer (`configs/wan_s2v_*.py`: `t5_tokenizer`)
WAN_TOKENIZER_DIR = "google/umt5-xxl"
TINY_SEED = 20250421


@dataclass(frozen=True)
class PhantomSampling:
    """The release's defaults (`generate.py`), 1.3B: 480x832, 81 frames at 16 fps."""

    num_steps: int = 50
    shift: float = 5.0
    guide_scale_img: float = 5.0
    guide_scale_text: float = 7.5
    height: int = 480
    width: int = 832
    num_frames: int = 81
    fps: float = 16.0
    negative_prompt: str = WAN_NEGATIVE_PROMPT
    max_references: int = 4


@dataclass(frozen=True)
class PhantomConfig:
    name: str
    transformer: TransformerConfig
    vae: VaeConfig = field(default_factory=VaeConfig)
    text_encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    sampling: PhantomSampling = field(default_factory=PhantomSampling)


#: `configs/wan_s2v_1_3B.py`: Wan2.1-T2V-1.3B's DiT.
PHANTOM_1_3B = PhantomConfig(
    "phantom-1.3b",
    TransformerConfig(num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30),
)
#: `configs/wan_s2v_14B.py`: Wan2.1-T2V-14B's DiT; README: 121 frames at 24 fps.
PHANTOM_14B = PhantomConfig(
    "phantom-14b", TransformerConfig(), sampling=PhantomSampling(num_frames=121, fps=24.0)
)
#: the same structure, small enough for CPU tests (Kaleido's tiny widths).
PHANTOM_TINY = PhantomConfig(
    "phantom-tiny",
    KALEIDO_TINY.transformer,
    KALEIDO_TINY.vae,
    KALEIDO_TINY.text_encoder,
    PhantomSampling(num_steps=4, height=64, width=64, num_frames=9),
)
CONFIGS = {c.name: c for c in (PHANTOM_1_3B, PHANTOM_14B, PHANTOM_TINY)}


# checkpoint ------------------------------------------------------------------------------------


def wan_t2v_names(num_layers: int) -> list[str]:
    """Every tensor name of Wan2.1's T2V `WanModel` (`phantom_wan/modules/model.py`), in Wan's names."""
    names = [
        "patch_embedding.weight",
        "patch_embedding.bias",
        "head.head.weight",
        "head.head.bias",
        "head.modulation",
    ]
    for part in (
        "text_embedding.0",
        "text_embedding.2",
        "time_embedding.0",
        "time_embedding.2",
        "time_projection.1",
    ):
        names += [f"{part}.weight", f"{part}.bias"]
    for i in range(num_layers):
        block = f"blocks.{i}."
        for attn in ("self_attn", "cross_attn"):
            names += [f"{block}{attn}.{x}.{kind}" for x in "qkvo" for kind in ("weight", "bias")]
            names += [f"{block}{attn}.norm_q.weight", f"{block}{attn}.norm_k.weight"]
        names += [
            f"{block}norm3.{kind}" for kind in ("weight", "bias")
        ]  # the affine cross-attention norm
        names += [f"{block}ffn.{j}.{kind}" for j in (0, 2) for kind in ("weight", "bias")]
        names.append(f"{block}modulation")
    return names


def wan_t2v_key_map(num_layers: int) -> dict[str, str]:
    """Wan's name -> diffusers' `WanTransformer3DModel` name, by diffusers' own single-file converter."""
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

    table = {}
    for name in wan_t2v_names(num_layers):
        (converted,) = convert_wan_transformer_to_diffusers(
            {name: None}
        )  # one key at a time: no order games
        table[name] = converted
    return table


def check_phantom_keys(keys: Sequence[str] | set[str], num_layers: int, what: str) -> None:
    """Raise `CheckpointKeyError` naming every missing and every unexpected key of `what`."""
    table = wan_t2v_key_map(num_layers)
    present = set(keys)
    missing = sorted(set(table) - present)
    unexpected = sorted(present - set(table))
    if missing or unexpected:
        raise CheckpointKeyError(what, missing, unexpected)


def _pth_groups(path: Path) -> Iterator[dict[str, torch.Tensor]]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # a legacy (non-zip) file cannot be memory-mapped
        state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise CheckpointKeyError(str(path), ["(a state dict)"], [type(state).__name__])
    yield dict(state)


def phantom_checkpoint_keys(path: Path) -> tuple[list[str], Iterator[dict[str, torch.Tensor]]]:
    """The tensor names of a Phantom checkpoint (a `.pth` file or a sharded safetensors folder) and
    an iterator over its tensors, one shard at a time."""
    path = Path(path)
    if path.is_dir():
        index = path / PHANTOM_14B_INDEX
        if not index.is_file():
            raise CheckpointNotFoundError(
                f"Phantom-Wan checkpoint folder {path} has no {PHANTOM_14B_INDEX}"
            )
        weight_map: dict[str, str] = json.loads(index.read_text())["weight_map"]
        shards = sorted(set(weight_map.values()))
        absent = [str(path / s) for s in shards if not (path / s).is_file()]
        if absent:
            raise CheckpointNotFoundError(
                f"shard(s) named by {index} are missing: {', '.join(absent)}"
            )

        def groups() -> Iterator[dict[str, torch.Tensor]]:
            from safetensors import safe_open

            for shard in shards:
                with safe_open(str(path / shard), framework="pt", device="cpu") as handle:
                    yield {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118

        return sorted(weight_map), groups()
    if not path.is_file():
        raise CheckpointNotFoundError(f"Phantom-Wan checkpoint not found: {path}")
    groups = _pth_groups(path)
    first = next(groups)
    return sorted(first), iter([first])


def build_wan_transformer(config: TransformerConfig, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                          seed: int | None = None) -> WanTransformer3DModel:  # fmt: skip
    """diffusers' Wan2.1 T2V DiT, random (deterministic for `seed`) or empty on `meta`, cast like diffusers."""
    if str(device) == "meta":
        with torch.device("meta"):
            return WanTransformer3DModel(**config.diffusers_kwargs())
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), device:
        if seed is not None:
            torch.manual_seed(seed)
        model = WanTransformer3DModel(**config.diffusers_kwargs())
    for name, param in model.named_parameters():
        param.data = param.data.to(parameter_dtype(name, dtype))
    return model.eval()


def load_phantom_transformer(path: Path, config: TransformerConfig, *, dtype: torch.dtype = torch.bfloat16,
                             device: str | torch.device = "cpu") -> WanTransformer3DModel:  # fmt: skip
    """The Phantom DiT from `path`, STRICTLY: every key checked both ways before a tensor is read."""
    keys, groups = phantom_checkpoint_keys(path)
    check_phantom_keys(keys, config.num_layers, str(path))
    table = wan_t2v_key_map(config.num_layers)
    model = build_wan_transformer(config, device="meta")
    loaded: set[str] = set()
    for group in groups:
        renamed = {table[k]: v for k, v in group.items()}
        check_shapes(model, renamed, str(path))
        assign_tensors(model, renamed, dtype, device)
        loaded.update(renamed)
        del group, renamed
    check_complete(model, loaded, str(path))
    # RoPE tables are buffers built in __init__ (on meta above): rebuild them where the model runs
    model.rope = WanRotaryPosEmbed(
        config.attention_head_dim, config.patch_size, config.rope_max_seq_len
    ).to(device)
    return model.eval()


def diffusers_to_wan_state(
    state: Mapping[str, torch.Tensor], num_layers: int
) -> dict[str, torch.Tensor]:
    """The inverse map (diffusers -> Wan names): writes release-format checkpoints for tests."""
    inverse = {new: old for old, new in wan_t2v_key_map(num_layers).items()}
    missing = sorted(set(inverse) - set(state))
    unexpected = sorted(set(state) - set(inverse))
    if missing or unexpected:
        raise CheckpointKeyError("WanTransformer3DModel state dict", missing, unexpected)
    return {inverse[k]: v for k, v in state.items()}


# pipeline --------------------------------------------------------------------------------------


@dataclass
class PhantomPipeline:
    """Phantom DiT + Wan VAE + umT5 on one device; `__call__` makes one video (uint8 frames)."""

    transformer: WanTransformer3DModel
    vae: torch.nn.Module
    text_encoder: UMT5TextEncoder
    config: PhantomConfig
    device: torch.device = torch.device("cpu")
    offload: bool = False

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        home = torch.device("cpu") if self.offload else self.device
        for module in (self.transformer, self.vae, self.text_encoder):
            module.to(home)

    @classmethod
    def tiny(cls, device: str | torch.device = "cpu", seed: int = TINY_SEED) -> PhantomPipeline:
        """Random weights from a fixed seed, tiny config, byte-level tokenizer: tests and smoke runs."""
        config = PHANTOM_TINY
        transformer = build_wan_transformer(config.transformer, seed=seed)
        vae = vae_ops.build_vae(config.vae, seed=seed + 1)
        umt5 = build_umt5(config.text_encoder, seed=seed + 2)
        return cls(
            transformer,
            vae,
            UMT5TextEncoder(umt5, ByteTokenizer(), config.text_encoder.text_len),
            config,
            device,
        )

    @classmethod
    def from_pretrained(cls, wan_dir: str | Path, phantom_ckpt: str | Path, *, config: PhantomConfig = PHANTOM_1_3B,
                        dtype: torch.dtype = torch.bfloat16, vae_dtype: torch.dtype = torch.float32,
                        device: str | torch.device = "cuda", offload: bool = False) -> PhantomPipeline:  # fmt: skip
        """umT5 + VAE from a Wan2.1-T2V-1.3B folder (Wan's own files), the DiT from Phantom's checkpoint.

        The VAE runs in fp32 by default, as the release's `WanVAE`.
        """
        from kaleido_bench.kaleido.text_encoder import load_text_encoder

        wan_dir, device = Path(wan_dir), torch.device(device)
        home = torch.device("cpu") if offload else device
        phantom_checkpoint_keys(
            Path(phantom_ckpt)
        )  # a missing file fails before anything big is read
        text_encoder = load_text_encoder(wan_dir, config.text_encoder, dtype=dtype, device=home,
                                         tokenizer_dir=wan_dir / WAN_TOKENIZER_DIR)  # fmt: skip
        vae = vae_ops.load_vae(wan_dir, config.vae, dtype=vae_dtype, device=home)
        transformer = load_phantom_transformer(
            Path(phantom_ckpt), config.transformer, dtype=dtype, device=home
        )
        return cls(transformer, vae, text_encoder, config, device, offload)

    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        with resident(self.text_encoder, self.device, self.offload):
            return self.text_encoder.encode(list(prompts))

    def encode_references(
        self, images: Sequence[Image.Image], height: int, width: int
    ) -> torch.Tensor | None:
        """(1, C, K, h, w): each reference fitted, padded white and encoded alone; None for none."""
        if not images:
            return None
        pixels = reference_pixels(images, height, width).to(self.device)
        with resident(self.vae, self.device, self.offload):
            return vae_ops.encode_single_frames(self.vae, pixels)

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        with resident(self.vae, self.device, self.offload):
            return vae_ops.frames_from_pixels(vae_ops.decode(self.vae, latents)[0])

    @torch.no_grad()
    def __call__(self, prompt: str, references: Sequence[Image.Image] = (), *, height: int | None = None,
                 width: int | None = None, num_frames: int | None = None, num_steps: int | None = None,
                 shift: float | None = None, guide_scale_img: float | None = None,
                 guide_scale_text: float | None = None, seed: int = 0,
                 negative_prompt: str | None = None) -> np.ndarray:  # fmt: skip
        """One video as (T, H, W, 3) uint8 RGB; the same seed gives the same frames."""
        s = self.config.sampling
        height, width, num_frames = height or s.height, width or s.width, num_frames or s.num_frames
        gi = s.guide_scale_img if guide_scale_img is None else guide_scale_img
        gt = s.guide_scale_text if guide_scale_text is None else guide_scale_text
        if len(references) > s.max_references:
            raise ValueError(
                f"{len(references)} references given; Phantom-Wan takes at most {s.max_references}"
            )
        vae_cfg, tcfg = self.config.vae, self.config.transformer
        text = self.encode_prompts(
            [prompt, s.negative_prompt if negative_prompt is None else negative_prompt]
        )
        refs = self.encode_references(references, height, width)
        k = 0 if refs is None else refs.shape[2]
        frames = (num_frames - 1) // vae_cfg.scale_factor_temporal + 1
        shape = (
            1,
            tcfg.in_channels,
            frames + k,
            height // vae_cfg.scale_factor_spatial,
            width // vae_cfg.scale_factor_spatial,
        )
        generator = torch.Generator("cpu").manual_seed(int(seed))
        latents = torch.randn(shape, generator=generator, dtype=torch.float32).to(self.device)
        scheduler = wan_release_scheduler(s.shift if shift is None else shift)
        scheduler.set_timesteps(num_steps or s.num_steps, device=self.device)

        with resident(self.transformer, self.device, self.offload) as transformer:
            dtype = transformer.patch_embedding.weight.dtype
            cond, uncond = text.to(self.device, dtype).chunk(2)
            zero_refs = None if refs is None else torch.zeros_like(refs)

            def velocity(x: torch.Tensor, t: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
                return transformer(x.to(dtype), t.expand(1), states, return_dict=False)[0].float()

            for t in scheduler.timesteps:
                if refs is None:  # plain Wan T2V: pos_i == neg, so v = neg + text * (pos_it - neg)
                    pos_it, neg = velocity(latents, t, cond), velocity(latents, t, uncond)
                    v = neg + gt * (pos_it - neg)
                else:
                    video = latents[:, :, :-k]
                    with_refs = torch.cat([video, refs.float()], dim=2)
                    pos_it = velocity(with_refs, t, cond)
                    pos_i = velocity(with_refs, t, uncond)
                    neg = velocity(torch.cat([video, zero_refs.float()], dim=2), t, uncond)
                    v = neg + gi * (pos_i - neg) + gt * (pos_it - pos_i)
                latents = scheduler.step(v, t, latents, return_dict=False)[0]
        return self.decode(latents[:, :, :frames])
