"""`vace-1.3b`, `vace-14b`, `vace-tiny`: VACE (Wan2.1-VACE) reference-to-video through diffusers.

diffusers' `WanVACEPipeline` with the case's references as `reference_images` and no source
video, the release's sampler (Wan's FlowUniPC, 50 steps, shift 16, CFG 5.0, Wan's negative
prompt), 480x832 (H x W), 81 frames at 16 fps, bf16 DiT and fp32 VAE on a GPU. How references
are fitted (bilinear, white padding, centred) and where every default comes from:
`baselines/wan/vace.py`.

Weights: the diffusers-format folders `Wan-AI/Wan2.1-VACE-1.3B-diffusers` /
`Wan-AI/Wan2.1-VACE-14B-diffusers`, found through the weights resolver (`-o weights=DIR`, the
weights dir, or the HF cache; `kaleido-bench weights download vace-1.3b` fetches them).
`vace-tiny` is the same code on a tiny random network (no files), labelled "random weights".

Options (`-o key=value`): steps, cfg_scale, shift, height, width, num_frames, fps, device (auto |
cpu | cuda | cuda:N); the real models also weights (DIR), dtype (default bf16), vae_dtype
(default fp32) and offload (true: diffusers' model CPU offload, one component on the GPU at a time).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from kaleido_bench.baselines.base import register_model
from kaleido_bench.baselines.cutout import load_reference
from kaleido_bench.baselines.wan_release import (
    WAN_FPS,
    WanReleaseAdapter,
    require_weights,
    resolve_device,
)
from kaleido_bench.core.cases import Case
from kaleido_bench.core.video import write_video
from kaleido_bench.metrics.weights import WeightFile

#: the VACE release's reference-to-video defaults (`vace/vace_wan_inference.py`), our H x W
RELEASE_DEFAULTS: dict[str, Any] = {"steps": 50, "cfg_scale": 5.0, "shift": 16.0, "height": 480, "width": 832,
                                    "num_frames": 81, "fps": WAN_FPS}  # fmt: skip
#: files a usable diffusers folder has (a half-finished download is reported as missing)
REQUIRED_FILES = ("model_index.json", "transformer/config.json", "vae/config.json", "text_encoder/config.json",
                  "tokenizer/tokenizer_config.json", "scheduler/scheduler_config.json")  # fmt: skip


def vace_weights(size: str) -> WeightFile:
    repo = f"Wan-AI/Wan2.1-VACE-{size}-diffusers"
    return WeightFile(
        repo.split("/")[1], f"Wan2.1-VACE-{size} in diffusers' layout", repo_id=repo, snapshot=True
    )


@dataclass(frozen=True)
class VaceOptions:
    steps: int
    cfg_scale: float
    shift: float
    height: int
    width: int
    num_frames: int
    fps: float
    device: str = "auto"
    dtype: str = "bfloat16"
    vae_dtype: str = "float32"
    offload: bool = False
    weights: str | None = None

    def video_config(self) -> dict[str, Any]:
        """What changes the frames (not where the files are, nor how memory is managed)."""
        out = asdict(self)
        for key in ("weights", "offload"):
            out.pop(key)
        return out


class _VaceBase(WanReleaseAdapter):
    defaults: ClassVar[dict[str, Any]] = RELEASE_DEFAULTS
    options_class = VaceOptions
    float_options = ("cfg_scale", "shift", "fps")
    licence: ClassVar[str] = "Apache-2.0 (Wan2.1-VACE)"
    #: the release's demo takes up to 3 reference images (`vace/gradios/vace_wan_demo.py`)
    max_references: ClassVar[int] = 3

    def _text_len(self) -> int:
        return 512

    def generate(self, case: Case, seed: int, out_path: Path) -> None:
        if self.pipeline is None:
            self.setup()
        from kaleido_bench.baselines.wan import vace

        o = self.parsed
        frames = vace.generate(
            self.pipeline,
            case.prompt,
            [load_reference(ref) for ref in case.references],
            height=o.height,
            width=o.width,
            num_frames=o.num_frames,
            num_steps=o.steps,
            guidance_scale=o.cfg_scale,
            seed=seed,
            max_sequence_length=self._text_len(),
        )
        write_video(out_path, frames, o.fps)


class _VaceRelease(_VaceBase):
    known_options = ("weights", "steps", "cfg_scale", "shift", "height", "width", "num_frames", "fps", "dtype",
                     "vae_dtype", "device", "offload")  # fmt: skip
    defaults: ClassVar[dict[str, Any]] = {
        **RELEASE_DEFAULTS,
        "device": "auto",
        "dtype": "bf16",
        "vae_dtype": "fp32",
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.weights_path = require_weights(
            self.name, self.weights[0], self.parsed.weights, inside=REQUIRED_FILES
        )

    def setup(self) -> None:
        if self.pipeline is not None:
            return
        import torch

        from kaleido_bench.baselines.wan import vace

        o = self.parsed
        self.pipeline = vace.load_pipeline(self.weights_path, shift=o.shift, dtype=getattr(torch, o.dtype),
                                           vae_dtype=getattr(torch, o.vae_dtype), device=resolve_device(o.device),
                                           offload=o.offload)  # fmt: skip


@register_model("vace-1.3b")
class Vace13BAdapter(_VaceRelease):
    description = "VACE Wan2.1-1.3B (ali-vilab) via diffusers' WanVACEPipeline: references in front, 480x832x81, 50 UniPC steps, shift 16, CFG 5"
    weights = (vace_weights("1.3B"),)
    weights_source = "Hugging Face Wan-AI/Wan2.1-VACE-1.3B-diffusers"
    parameters = "1.3B"


@register_model("vace-14b")
class Vace14BAdapter(_VaceRelease):
    description = "VACE Wan2.1-14B (ali-vilab) via diffusers' WanVACEPipeline: references in front, 480x832x81, 50 UniPC steps, shift 16, CFG 5"
    weights = (vace_weights("14B"),)
    weights_source = "Hugging Face Wan-AI/Wan2.1-VACE-14B-diffusers"
    parameters = "14B"


@register_model("vace-tiny")
class VaceTinyAdapter(_VaceBase):
    description = "VACE code path (diffusers' WanVACEPipeline) with a tiny random network (fixed seed, no files): smoke runs and tests"
    label = "random weights"
    licence = "n/a (random weights)"
    weights_source = "none: random weights built in code"
    parameters = "tiny"
    defaults: ClassVar[dict[str, Any]] = {**RELEASE_DEFAULTS, "steps": 4, "height": 64, "width": 64, "num_frames": 9,
                                          "device": "cpu", "dtype": "fp32", "vae_dtype": "fp32"}  # fmt: skip
    known_options = (
        "steps",
        "cfg_scale",
        "shift",
        "height",
        "width",
        "num_frames",
        "fps",
        "device",
    )

    def _text_len(self) -> int:
        from kaleido_bench.baselines.wan.vace import TINY_TEXT_LEN

        return TINY_TEXT_LEN

    def setup(self) -> None:
        if self.pipeline is None:
            from kaleido_bench.baselines.wan.vace import build_tiny_pipeline

            self.pipeline = build_tiny_pipeline(
                shift=self.parsed.shift, device=resolve_device(self.parsed.device)
            )
