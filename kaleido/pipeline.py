"""The Kaleido pipeline: prompt + reference images -> video frames (uint8), seeded and reproducible.

It composes the parts and does no math of its own (diffusers' split): `references.py` fits and
pads the images, `vae.py` encodes each one alone to one clean latent frame and decodes the
result, `text_encoder.py` encodes the prompt and Wan's negative prompt once, the transformer
gets the reference latents in front of the noisy video latents, and `scheduler.py` steps.
Classifier-free guidance is text-only: the unconditional branch keeps the SAME reference
latents and uses the negative prompt; both branches run as one batch of 2 when memory allows.

Memory: `offload=True` keeps every component on the CPU and moves it to the accelerator only
while it works (the text encoder, then the DiT, then the VAE), so at most one is resident.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from kaleido_bench.kaleido import vae as vae_ops
from kaleido_bench.kaleido.config import KALEIDO_14B, KALEIDO_TINY, KaleidoConfig, get_config
from kaleido_bench.kaleido.errors import GpuMemoryError
from kaleido_bench.kaleido.references import reference_pixels
from kaleido_bench.kaleido.scheduler import FlowEulerScheduler
from kaleido_bench.kaleido.text_encoder import ByteTokenizer, UMT5TextEncoder, build_umt5
from kaleido_bench.kaleido.transformer import KaleidoTransformer3DModel, build_transformer

#: the tiny model's weights come from this seed (no files).
TINY_SEED = 20240917


def activation_bytes_per_sample(
    config: KaleidoConfig, height: int, width: int, num_frames: int, num_refs: int
) -> int:
    """A rough peak of one DiT forward's activations for one batch element (bf16)."""
    t = config.transformer
    p_t, p_h, p_w = t.patch_size
    s = config.vae.scale_factor_spatial
    latent_frames = (num_frames - 1) // config.vae.scale_factor_temporal + 1
    tokens = (latent_frames // p_t + num_refs) * (height // s // p_h) * (width // s // p_w)
    return tokens * (10 * t.inner_dim + 2 * t.ffn_dim) * 2


def module_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def write_mp4(path: str | Path, frames: np.ndarray, fps: float, crf: int = 18) -> Path:
    """(T, H, W, 3) uint8 RGB -> H.264 mp4 with PyAV (single-threaded: same frames, same bytes)."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames.shape[1:3]
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf)}
        stream.thread_count = 1
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@contextlib.contextmanager
def resident(
    module: torch.nn.Module, device: torch.device, offload: bool
) -> Iterator[torch.nn.Module]:
    """`module` on `device` for the duration; back to the CPU afterwards when `offload`.

    The offload scheme of Wan's release scripts (`offload_model=True`): one component on the
    accelerator at a time. Shared by every pipeline built on Wan parts (Kaleido, Phantom-Wan).
    """
    if offload:
        module.to(device)
    try:
        yield module
    finally:
        if offload:
            module.to("cpu")
            if torch.device(device).type == "cuda":
                torch.cuda.empty_cache()


@dataclass
class KaleidoPipeline:
    """Transformer + Wan VAE + umT5 on one device; `__call__` makes one video."""

    transformer: KaleidoTransformer3DModel
    vae: torch.nn.Module
    text_encoder: UMT5TextEncoder
    config: KaleidoConfig
    device: torch.device = torch.device("cpu")
    offload: bool = False
    #: True / False forces batched / sequential CFG; None decides from free memory.
    batch_cfg: bool | None = None

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        self._text_cache: dict[tuple[str, ...], torch.Tensor] = {}
        home = torch.device("cpu") if self.offload else self.device
        for module in (self.transformer, self.vae, self.text_encoder):
            module.to(home)

    # construction ----------------------------------------------------------------------------

    @classmethod
    def tiny(
        cls, device: str | torch.device = "cpu", seed: int = TINY_SEED, rope_continue: bool = False
    ) -> KaleidoPipeline:
        """Random weights from a fixed seed, tiny config, byte-level tokenizer: for tests and smoke runs."""
        config = get_config(KALEIDO_TINY.name, rope_continue=rope_continue)
        transformer = build_transformer(config.transformer, seed=seed)
        vae = vae_ops.build_vae(config.vae, seed=seed + 1)
        umt5 = build_umt5(config.text_encoder, seed=seed + 2)
        text_encoder = UMT5TextEncoder(umt5, ByteTokenizer(), config.text_encoder.text_len)
        return cls(transformer, vae, text_encoder, config, torch.device(device))

    @classmethod
    def from_pretrained(
        cls,
        weights_dir: str | Path,
        *,
        config: KaleidoConfig = KALEIDO_14B,
        dtype: torch.dtype = torch.bfloat16,
        vae_dtype: torch.dtype = torch.bfloat16,
        device: str | torch.device = "cuda",
        offload: bool = False,
        converted_dir: str | Path | None = None,
        batch_cfg: bool | None = None,
        plan: tuple[int, int, int, int] | None = None,
    ) -> KaleidoPipeline:
        """The released weights: `model/` (SAT, converted once to safetensors), `Wan2.1_VAE.pth`, `umt5-xxl/`.

        `plan` = (height, width, num_frames, references) checks the GPU memory before loading.
        The VAE runs in bf16 by default, as in the release (`first_stage_config: dtype bfloat16`);
        pass `vae_dtype=torch.float32` for diffusers' choice.
        """
        from kaleido_bench.kaleido.checkpoint import (
            find_sat_checkpoint,
            load_transformer,
            safetensors_files,
        )
        from kaleido_bench.kaleido.text_encoder import find_wan_t5_file, load_text_encoder
        from kaleido_bench.kaleido.vae import WAN_VAE_FILE, load_vae

        weights_dir = Path(weights_dir)
        device = torch.device(device)
        converted = Path(converted_dir) if converted_dir else weights_dir / "model-diffusers"
        # Fail on a missing file before loading anything big.
        if not safetensors_files(converted):
            find_sat_checkpoint(weights_dir / "model")
        find_wan_t5_file(weights_dir)
        if not (weights_dir / WAN_VAE_FILE).is_file():
            load_vae(weights_dir, config.vae)  # raises the missing-file error
        if device.type == "cuda":
            check_gpu_memory(config, device, dtype, offload, plan)
        home = torch.device("cpu") if offload else device
        text_encoder = load_text_encoder(weights_dir, config.text_encoder, dtype=dtype, device=home)
        transformer = load_transformer(
            config.transformer,
            weights_dir / "model",
            converted_dir=converted,
            dtype=dtype,
            device=home,
        )
        vae = load_vae(weights_dir, config.vae, dtype=vae_dtype, device=home)
        return cls(transformer, vae, text_encoder, config, device, offload, batch_cfg)

    # parts -----------------------------------------------------------------------------------

    def _resident(self, module: torch.nn.Module):
        return resident(module, self.device, self.offload)

    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        """umT5 states (B, text_len, text_dim), cached per prompt tuple (the negative prompt is reused)."""
        key = tuple(prompts)
        if key not in self._text_cache:
            with self._resident(self.text_encoder):
                states = self.text_encoder.encode(list(prompts))
            if len(self._text_cache) > 8:
                self._text_cache.clear()
            self._text_cache[key] = states.to("cpu")
        return self._text_cache[key]

    def encode_references(
        self, images: Sequence[Image.Image], height: int, width: int
    ) -> torch.Tensor | None:
        """(1, C, K, h, w) clean latents, each reference encoded alone; None for no reference."""
        if not images:
            return None
        pixels = reference_pixels(images, height, width).to(self.device)
        with self._resident(self.vae):
            return vae_ops.encode_single_frames(self.vae, pixels)

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Latents -> (T, H, W, 3) uint8 frames."""
        with self._resident(self.vae):
            pixels = vae_ops.decode(self.vae, latents)[0]  # 3, T, H, W in [-1, 1]
        # as the release: clamp((x + 1) / 2, 0, 1) * 255, truncated to uint8 (not rounded)
        return vae_ops.frames_from_pixels(pixels)

    def _batch_cfg(
        self, config: KaleidoConfig, height: int, width: int, num_frames: int, num_refs: int
    ) -> bool:
        if self.batch_cfg is not None:
            return self.batch_cfg
        if self.device.type != "cuda":
            return True
        free, _ = torch.cuda.mem_get_info(self.device)
        return free > 3 * activation_bytes_per_sample(config, height, width, num_frames, num_refs)

    # sampling --------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        prompt: str,
        references: Sequence[Image.Image] = (),
        *,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        num_steps: int | None = None,
        cfg_scale: float | None = None,
        seed: int = 0,
        negative_prompt: str | None = None,
        shift: float | None = None,
    ) -> np.ndarray:
        """One video as (T, H, W, 3) uint8 RGB; the same seed gives the same frames."""
        sampling = self.config.sampling
        height = height or sampling.height
        width = width or sampling.width
        num_frames = num_frames or sampling.num_frames
        cfg_scale = sampling.cfg_scale if cfg_scale is None else cfg_scale
        negative_prompt = sampling.negative_prompt if negative_prompt is None else negative_prompt
        scheduler = FlowEulerScheduler(
            num_steps or sampling.num_steps, sampling.shift if shift is None else shift
        )
        vae_cfg, tcfg = self.config.vae, self.config.transformer
        spatial = vae_cfg.scale_factor_spatial * tcfg.patch_size[1]
        if height % spatial or width % spatial:
            raise ValueError(
                f"height and width must be multiples of {spatial}, got {height}x{width}"
            )
        if (num_frames - 1) % vae_cfg.scale_factor_temporal:
            raise ValueError(f"num_frames must be 4k + 1 (Wan VAE), got {num_frames}")
        if len(references) > tcfg.max_references:
            raise ValueError(
                f"{len(references)} references given; the model takes at most {tcfg.max_references}"
            )

        use_cfg = cfg_scale != 1.0
        prompts = [prompt, negative_prompt] if use_cfg else [prompt]
        text_states = self.encode_prompts(prompts)
        ref_latents = self.encode_references(references, height, width)

        latent_shape = (
            1,
            tcfg.in_channels,
            (num_frames - 1) // vae_cfg.scale_factor_temporal + 1,
            height // vae_cfg.scale_factor_spatial,
            width // vae_cfg.scale_factor_spatial,
        )
        generator = torch.Generator("cpu").manual_seed(int(seed))
        latents = torch.randn(latent_shape, generator=generator, dtype=torch.float32).to(
            self.device
        )

        with self._resident(self.transformer) as transformer:
            dtype = transformer.patch_embedding.weight.dtype
            text = transformer.embed_text(text_states.to(self.device, dtype))  # once, not per step
            refs = None if ref_latents is None else ref_latents.to(dtype)
            batched = use_cfg and self._batch_cfg(
                self.config, height, width, num_frames, len(references)
            )
            for index, t in enumerate(scheduler.timesteps()):
                x = latents.to(dtype)
                if batched:
                    out = transformer(
                        x.expand(2, -1, -1, -1, -1),
                        t.expand(2).to(self.device),
                        text,
                        refs,
                        text_embedded=True,
                    ).sample.float()
                    cond, uncond = out.chunk(2)
                elif use_cfg:
                    tt = t.expand(1).to(self.device)
                    cond = transformer(x, tt, text[:1], refs, text_embedded=True).sample.float()
                    uncond = transformer(x, tt, text[1:], refs, text_embedded=True).sample.float()
                else:
                    cond = transformer(
                        x, t.expand(1).to(self.device), text, refs, text_embedded=True
                    ).sample.float()
                    uncond = None
                velocity = cond if uncond is None else uncond + cfg_scale * (cond - uncond)
                latents = scheduler.step(latents, velocity, index)
        return self.decode(latents)


def check_gpu_memory(
    config: KaleidoConfig,
    device: torch.device,
    dtype: torch.dtype,
    offload: bool,
    plan: tuple[int, int, int, int] | None = None,
) -> None:
    """Raise `GpuMemoryError` naming what is needed when the device is too small for the settings."""
    from kaleido_bench.kaleido.config import TextEncoderConfig

    if not torch.cuda.is_available():
        raise GpuMemoryError(
            f"device {device} requested but CUDA is not available; use -o device=cpu (very slow)"
        )
    total = torch.cuda.get_device_properties(device).total_memory
    size = torch.finfo(dtype).bits // 8
    dit = config.transformer.num_parameters() * size
    t5: TextEncoderConfig = config.text_encoder
    t5_bytes = (
        t5.vocab_size * t5.d_model
        + t5.num_layers * (4 * t5.d_model * t5.num_heads * t5.d_kv + 3 * t5.d_model * t5.d_ff)
    ) * size
    height, width, frames, refs = plan or (
        config.sampling.height,
        config.sampling.width,
        config.sampling.num_frames,
        3,
    )
    activations = activation_bytes_per_sample(config, height, width, frames, refs)
    need = dit + activations + (0 if offload else t5_bytes + 2 * 1024**3)
    gib = 1024**3
    if total < need:
        hint = (
            ""
            if offload
            else f"; -o offload=true lowers it to about {(dit + activations) / gib:.0f} GiB"
        )
        raise GpuMemoryError(
            f"Kaleido-14B at {height}x{width}x{frames} with {refs} reference(s) in {dtype} needs about "
            f"{need / gib:.0f} GiB of GPU memory (DiT {dit / gib:.1f} GiB + activations {activations / gib:.1f} GiB"
            f"{'' if offload else f' + umT5 {t5_bytes / gib:.1f} GiB + VAE'}); {device} has {total / gib:.1f} GiB{hint}"
        )
