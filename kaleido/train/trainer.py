"""The training loop: encode (frozen VAE + umT5), flow-matching loss, AdamW, checkpoints, exact resume.

Distribution and precision go through `accelerate`: one process on a CPU or a GPU as is, or
`accelerate launch --config_file kaleido/train/configs/accelerate_fsdp2.yaml -m
kaleido_bench.kaleido.train CONFIG.yaml` to shard the 14B transformer with FSDP2 (each
`WanTransformerBlock` its own unit; the frozen VAE and umT5 are replicated in bf16 on every
process and never wrapped). bf16 is accelerate's autocast around the transformer's forward,
with float32 master weights and AdamW states; gradient checkpointing is diffusers'
`enable_gradient_checkpointing` (honoured by `KaleidoTransformer3DModel.forward`).

A checkpoint is `accelerator.save_state`: transformer, optimiser, RNG states of python / numpy
/ torch (/ CUDA), plus the registered LR scheduler and `TrainProgress` (the step, from which
the loader's position follows). Each step's noise, sigmas and caption dropout come from a
generator seeded by (seed, step, process), so a run resumed at step k draws what the
uninterrupted run drew: on a CPU the loss curve is identical to the bit.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from kaleido_bench.kaleido import vae as vae_ops
from kaleido_bench.kaleido.config import KaleidoConfig, get_config
from kaleido_bench.kaleido.references import reference_pixels
from kaleido_bench.kaleido.text_encoder import ByteTokenizer, UMT5TextEncoder, build_umt5
from kaleido_bench.kaleido.train.config import TrainConfig
from kaleido_bench.kaleido.train.data import ShardDataset, TrainingSample, sample_loader
from kaleido_bench.kaleido.train.objective import (
    drop_captions,
    flow_matching_loss,
    patches_per_frame,
    sample_sigmas,
)
from kaleido_bench.kaleido.transformer import KaleidoTransformer3DModel, build_transformer

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
LOSSES = "losses.jsonl"


@dataclass
class TrainingModels:
    """The trained transformer and the frozen encoders."""

    transformer: KaleidoTransformer3DModel
    vae: torch.nn.Module
    text_encoder: UMT5TextEncoder
    config: KaleidoConfig


@dataclass
class TrainProgress:
    """What a checkpoint needs beyond accelerate's own state: the number of finished steps."""

    step: int = 0

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step = int(state["step"])


@dataclass(frozen=True)
class StepRecord:
    """One line of `losses.jsonl`."""

    step: int
    loss: float
    grad_norm: float
    learning_rate: float
    sigmas: tuple[float, ...]
    captions_dropped: int
    seconds: float


@dataclass
class TrainResult:
    output_dir: Path
    records: list[StepRecord] = field(default_factory=list)
    checkpoints: list[Path] = field(default_factory=list)
    #: the trained transformer (unwrapped from accelerate; on this process).
    transformer: torch.nn.Module | None = None

    @property
    def losses(self) -> list[float]:
        return [r.loss for r in self.records]


# models ----------------------------------------------------------------------------------------


def build_models(
    config: TrainConfig, *, frozen_dtype: torch.dtype, device: torch.device
) -> TrainingModels:
    """The release's weights from `weights_dir`, or random ones from `init_seed` (tiny tests, benchmarks).

    The transformer is loaded in float32 (master weights) on the CPU; accelerate places or
    shards it. The frozen encoders go to `device` in `frozen_dtype`.
    """
    model_config = get_config(config.model)
    if config.weights_dir is None:
        transformer = build_transformer(model_config.transformer, seed=config.init_seed)
        vae = vae_ops.build_vae(model_config.vae, seed=config.init_seed + 1)
        umt5 = build_umt5(model_config.text_encoder, seed=config.init_seed + 2)
        text_encoder = UMT5TextEncoder(umt5, ByteTokenizer(), model_config.text_encoder.text_len)
    else:
        from kaleido_bench.kaleido.checkpoint import load_transformer
        from kaleido_bench.kaleido.text_encoder import load_text_encoder

        weights = Path(config.weights_dir)
        transformer = load_transformer(
            model_config.transformer, weights / "model", dtype=torch.float32
        )
        vae = vae_ops.load_vae(weights, model_config.vae, dtype=frozen_dtype, device=device)
        text_encoder = load_text_encoder(
            weights, model_config.text_encoder, dtype=frozen_dtype, device=device
        )
    for frozen in (vae, text_encoder):
        if next(frozen.parameters()).dtype != frozen_dtype:
            frozen.to(dtype=frozen_dtype)
        frozen.to(device).requires_grad_(False).eval()
    transformer.requires_grad_(True).train()
    return TrainingModels(transformer, vae, text_encoder, model_config)


# one step --------------------------------------------------------------------------------------


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """The CPU generator of one step on one process: independent of what ran before."""
    state = np.random.SeedSequence([seed, step, rank]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


@dataclass(frozen=True)
class EncodedSample:
    """Latents and text states of one sample, ready for the loss."""

    latents: torch.Tensor  # 1, C, F, h, w
    reference_latents: torch.Tensor | None  # 1, C, K, h, w
    text_states: torch.Tensor  # 1, L, text_dim


@torch.no_grad()
def encode_sample(
    models: TrainingModels,
    sample: TrainingSample,
    caption: str,
    cache: dict[str, tuple[torch.Tensor, torch.Tensor | None]] | None = None,
) -> EncodedSample:
    """VAE latents of the clip, each reference encoded ALONE as one latent frame (the inference
    path, `KaleidoPipeline.encode_references`; the release's training path encodes them as one
    clip and keeps only the first), and umT5 states of `caption`.

    `cache` (sample id -> latents) skips the VAE on a sample seen before: the VAE is frozen and
    deterministic (posterior mean), so the latents are the same every epoch.
    """
    if cache is not None and sample.sample_id in cache:
        latents, refs = cache[sample.sample_id]
    else:
        device = next(models.vae.parameters()).device
        _, _, height, width = sample.pixels.shape
        latents = vae_ops.encode(models.vae, sample.pixels.unsqueeze(0).to(device))
        refs = None
        if sample.references:
            pixels = reference_pixels(sample.references, height, width).to(device)
            refs = torch.cat(
                [vae_ops.encode(models.vae, pixels[k : k + 1]) for k in range(len(pixels))], dim=2
            )
        if cache is not None:
            cache[sample.sample_id] = (latents, refs)
    text = models.text_encoder.encode([caption]).float()
    return EncodedSample(latents, refs, text)


def sample_loss(
    transformer: torch.nn.Module,
    encoded: EncodedSample,
    patch_size: Sequence[int],
    generator: torch.Generator,
) -> tuple[torch.Tensor, float]:
    """Flow-matching loss of one sample with sigma and noise drawn from `generator` (on the CPU)."""
    x0 = encoded.latents
    sigma = sample_sigmas(1, patches_per_frame(x0.shape[3], x0.shape[4], patch_size), generator)
    noise = torch.randn(x0.shape, generator=generator, dtype=torch.float32).to(x0.device)
    loss = flow_matching_loss(
        transformer, x0, noise, sigma.to(x0.device), encoded.text_states, encoded.reference_latents
    )
    return loss, float(sigma[0])


@torch.no_grad()
def evaluation_loss(
    models: TrainingModels,
    samples: Sequence[TrainingSample],
    sigmas: Sequence[float],
    seed: int = 1234,
) -> float:
    """Loss averaged over samples x fixed sigmas with fixed noise and no caption dropout: a steady gauge."""
    total, count = 0.0, 0
    for index, sample in enumerate(samples):
        encoded = encode_sample(models, sample, sample.caption)
        generator = torch.Generator().manual_seed(seed + index)
        for sigma in sigmas:
            noise = torch.randn(encoded.latents.shape, generator=generator).to(
                encoded.latents.device
            )
            s = torch.tensor([float(sigma)], device=encoded.latents.device)
            loss = flow_matching_loss(
                models.transformer,
                encoded.latents,
                noise,
                s,
                encoded.text_states,
                encoded.reference_latents,
            )
            total, count = total + float(loss), count + 1
    return total / count


# the loop --------------------------------------------------------------------------------------


def _mixed_precision(config: TrainConfig) -> str:
    if config.mixed_precision == "auto":
        return "bf16" if torch.cuda.is_available() else "no"
    return config.mixed_precision


def _frozen_dtype(config: TrainConfig, device: torch.device) -> torch.dtype:
    if config.frozen_dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, config.frozen_dtype)


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = sorted((output_dir / CHECKPOINTS).glob("step-*"))
    return found[-1] if found else None


def _resume_path(config: TrainConfig, output_dir: Path) -> Path | None:
    if config.resume_from is None:
        return None
    if config.resume_from == "latest":
        return latest_checkpoint(output_dir)  # none yet: a fresh start
    path = Path(config.resume_from)
    if not path.is_dir():
        raise FileNotFoundError(f"resume_from: checkpoint folder {path} not found")
    return path


def run(config: TrainConfig | str | Path) -> TrainResult:
    """Train `config.max_steps` steps (from a checkpoint when `resume_from` is set)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import set_seed

    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_yaml(config)
    accelerator = Accelerator(mixed_precision=_mixed_precision(config))
    set_seed(config.seed)
    device = accelerator.device
    output_dir = Path(config.output_dir)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        import yaml

        (output_dir / "train_config.yaml").write_text(
            yaml.safe_dump(config.to_dict(), sort_keys=False)
        )

    models = build_models(config, frozen_dtype=_frozen_dtype(config, device), device=device)
    if config.gradient_checkpointing:
        models.transformer.enable_gradient_checkpointing()
    optimizer = torch.optim.AdamW(
        models.transformer.parameters(),
        lr=config.learning_rate,
        betas=config.betas,
        weight_decay=config.weight_decay,
        eps=config.epsilon,
    )
    warmup = config.warmup_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0
    )
    transformer, optimizer = accelerator.prepare(models.transformer, optimizer)
    progress = TrainProgress()
    # the scheduler is registered, not prepared: prepared, accelerate would step it once per process
    accelerator.register_for_checkpointing(scheduler)
    accelerator.register_for_checkpointing(progress)

    resume = _resume_path(config, output_dir)
    if resume is not None:
        accelerator.load_state(str(resume))
        log.info("resumed from %s at step %d", resume, progress.step)

    dataset = ShardDataset(
        config.data,
        height=config.height,
        width=config.width,
        num_frames=config.num_frames,
        fps=config.fps,
    )
    loader = sample_loader(
        dataset,
        batch_size=config.batch_size,
        seed=config.seed,
        start_step=progress.step,
        shuffle=config.shuffle,
        num_workers=config.num_workers,
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
    )
    patch = models.config.transformer.patch_size
    result = TrainResult(output_dir)
    batches = iter(loader)
    cache: dict[str, tuple[torch.Tensor, torch.Tensor | None]] | None = (
        {} if config.cache_latents else None
    )
    while progress.step < config.max_steps:
        started = time.perf_counter()
        samples = next(batches)
        generator = step_generator(config.seed, progress.step, accelerator.process_index)
        captions = drop_captions([s.caption for s in samples], config.caption_dropout, generator)
        step_loss, sigmas = torch.zeros((), device=device), []
        for sample, caption in zip(samples, captions):
            encoded = encode_sample(models, sample, caption, cache)
            with accelerator.autocast():
                loss, sigma = sample_loss(transformer, encoded, patch, generator)
            accelerator.backward(loss / len(samples))
            step_loss += loss.detach() / len(samples)
            sigmas.append(sigma)
        grad_norm = accelerator.clip_grad_norm_(transformer.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        progress.step += 1

        mean_loss = float(accelerator.reduce(step_loss, reduction="mean"))
        record = StepRecord(
            progress.step, mean_loss, float(grad_norm), scheduler.get_last_lr()[0], tuple(sigmas),
            sum(c == "" for c in captions), time.perf_counter() - started,
        )  # fmt: skip
        result.records.append(record)
        if accelerator.is_main_process and (
            progress.step % config.log_every == 0 or progress.step == config.max_steps
        ):
            with open(output_dir / LOSSES, "a") as handle:
                handle.write(json.dumps(record.__dict__) + "\n")
            log.info("step %d loss %.6f grad %.4f", record.step, record.loss, record.grad_norm)
        if progress.step % config.save_every == 0 or progress.step == config.max_steps:
            path = output_dir / CHECKPOINTS / f"step-{progress.step:08d}"
            accelerator.save_state(str(path))
            result.checkpoints.append(path)
    accelerator.wait_for_everyone()
    result.transformer = accelerator.unwrap_model(transformer)
    accelerator.end_training()
    # accelerate keeps one precision setting a process; forget it (not the process group) so
    # that a later run() in this process may choose another
    AcceleratorState._reset_state()
    return result
