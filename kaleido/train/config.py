"""The training run's settings: one frozen dataclass, read from YAML, unknown keys refused.

Defaults are the release's fine-tune (SPEC.md section 1, "Training"): AdamW lr 5e-6, betas
(0.9, 0.95), weight decay 1e-4, gradient clip 0.1, bf16, 480x832, 81 frames at 16 fps, caption
dropout 0.1. A tiny run for tests overrides the model, sizes and learning rate.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class TrainConfigError(ValueError):
    """A training config that cannot be used (unknown key, wrong type, bad value)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run reads; `output_dir` holds checkpoints and `losses.jsonl`."""

    #: shard directories written by the data pipeline (or folders holding such directories).
    data: tuple[str, ...]
    output_dir: str
    #: a name of `kaleido.config.CONFIGS` ("kaleido-14b", "kaleido-tiny").
    model: str = "kaleido-14b"
    #: the release's files (`model/`, `Wan2.1_VAE.pth`, `umt5-xxl/`); None = random weights
    #: from `init_seed` (tests, benchmarks).
    weights_dir: str | None = None
    init_seed: int = 20240917
    seed: int = 0
    # clip the loader decodes (the release's fine-tune: 480x832, 81 frames at 16 fps)
    height: int = 480
    width: int = 832
    num_frames: int = 81
    fps: float = 16.0
    # objective
    caption_dropout: float = 0.1
    # optimiser (the release's): AdamW, constant learning rate after an optional linear warm-up
    learning_rate: float = 5e-6
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 1e-4
    epsilon: float = 1e-8
    grad_clip: float = 0.1
    warmup_steps: int = 0
    # loop
    max_steps: int = 1000
    #: samples per optimiser step on each process (each sample is its own forward: the number
    #: of references may differ between samples).
    batch_size: int = 1
    #: "bf16" autocast (GPU), "no" (float32; CPU tests), "auto" = bf16 on CUDA else "no".
    mixed_precision: str = "auto"
    gradient_checkpointing: bool = True
    #: frozen VAE and umT5 dtype: "bfloat16" or "float32"; "auto" = bfloat16 on CUDA.
    frozen_dtype: str = "auto"
    save_every: int = 500
    log_every: int = 1
    #: a checkpoint folder, "latest" (the newest under output_dir/checkpoints), or None.
    resume_from: str | None = None
    num_workers: int = 0
    #: keep each sample's VAE latents (clip and references) in memory after its first visit:
    #: the VAE is frozen, so they never change (small data sets and tests; off for real runs).
    cache_latents: bool = False
    shuffle: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.data, str):
            object.__setattr__(self, "data", (self.data,))
        object.__setattr__(self, "data", tuple(str(d) for d in self.data))
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if not self.data:
            raise TrainConfigError("data: at least one shard directory is required")
        if len(self.betas) != 2:
            raise TrainConfigError(f"betas: two numbers expected, got {self.betas}")
        if not 0.0 <= self.caption_dropout <= 1.0:
            raise TrainConfigError(f"caption_dropout must be in [0, 1], got {self.caption_dropout}")
        if self.mixed_precision not in ("auto", "bf16", "no"):
            raise TrainConfigError(
                f"mixed_precision must be auto, bf16 or no, got {self.mixed_precision!r}"
            )
        if self.frozen_dtype not in ("auto", "bfloat16", "float32"):
            raise TrainConfigError(
                f"frozen_dtype must be auto, bfloat16 or float32, got {self.frozen_dtype!r}"
            )
        for name in (
            "max_steps",
            "batch_size",
            "save_every",
            "log_every",
            "num_frames",
            "height",
            "width",
        ):
            if getattr(self, name) < 1:
                raise TrainConfigError(f"{name} must be at least 1, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TrainConfigError(
                f"unknown training config key(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        try:
            return cls(**values)
        except TypeError as exc:
            raise TrainConfigError(str(exc)) from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise TrainConfigError(f"training config not found: {path}")
        values = yaml.safe_load(path.read_text()) or {}
        if not isinstance(values, dict):
            raise TrainConfigError(
                f"{path}: a mapping of settings expected, got {type(values).__name__}"
            )
        return cls.from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["data"] = list(self.data)
        values["betas"] = list(self.betas)
        return values

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)
