"""`phantom-1.3b`, `phantom-14b`, `phantom-tiny`: Phantom-Wan (ByteDance) subject-to-video.

The release's sampling on diffusers' Wan parts (`baselines/wan/phantom.py`, which cites the
release file and line of every rule): references fitted and padded white, each VAE-encoded as
one frame and placed AFTER the video latents, replacing the last K noisy frames at every step;
three passes a step (text + image, image only, neither with zeroed references) combined with
image guidance 5.0 and text guidance 7.5; Wan's FlowUniPC, 50 steps, shift 5; Wan's negative prompt.

Weights: umT5 and the VAE from a `Wan-AI/Wan2.1-T2V-1.3B` folder (both sizes, as the release's
README), the DiT from `bytedance-research/Phantom` (`Phantom-Wan-1.3B.pth`, or the
`Phantom_Wan_14B*` safetensors shards), found through the weights resolver (`-o weights=DIR` for
the Wan folder, `-o phantom_ckpt=PATH`, the weights dir or the HF cache; `kaleido-bench weights
download phantom-1.3b` fetches them). The checkpoint is loaded strictly: a missing or extra
tensor is an error naming it and the file. `phantom-tiny` runs the same code on a tiny random
network (no files), labelled "random weights".

Options (`-o key=value`): steps, cfg_image, cfg_text (the release's `--sample_guide_scale_img`,
`--sample_guide_scale_text`), shift, height, width, num_frames, fps, device; the real models also
weights, phantom_ckpt, dtype (bf16), vae_dtype (fp32, as the release) and offload (true | false).
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
from kaleido_bench.core.errors import CheckpointMismatchError, WeightsMissingError
from kaleido_bench.core.video import write_video
from kaleido_bench.metrics.weights import WeightFile

#: `generate.py` defaults for `--task s2v-1.3B --size 832*480`
RELEASE_DEFAULTS: dict[str, Any] = {"steps": 50, "cfg_image": 5.0, "cfg_text": 7.5, "shift": 5.0, "height": 480,
                                    "width": 832, "num_frames": 81, "fps": WAN_FPS}  # fmt: skip
#: the README's 14B command: `--size 832*480 --frame_num 121 --sample_fps 24` (trained on 24 fps data)
RELEASE_DEFAULTS_14B: dict[str, Any] = {**RELEASE_DEFAULTS, "num_frames": 121, "fps": 24.0}

#: Wan's umT5 and VAE (the Phantom README downloads the whole Wan2.1-T2V-1.3B; these are the parts it reads)
WAN_BASE = WeightFile(
    "Wan2.1-T2V-1.3B",
    "Wan2.1's umT5-XXL encoder, tokenizer and VAE (Phantom-Wan reads them from this folder)",
    repo_id="Wan-AI/Wan2.1-T2V-1.3B",
    snapshot=True,
    allow_patterns=("Wan2.1_VAE.pth", "models_t5_umt5-xxl-enc-bf16.pth", "google/umt5-xxl/*"),
)
WAN_BASE_FILES = ("Wan2.1_VAE.pth", "models_t5_umt5-xxl-enc-bf16.pth", "google/umt5-xxl")
PHANTOM_1_3B_WEIGHTS = WeightFile("Phantom-Wan-1.3B.pth", "Phantom-Wan-1.3B DiT (Wan's names)",
                                  repo_id="bytedance-research/Phantom")  # fmt: skip
PHANTOM_14B_WEIGHTS = WeightFile(
    "Phantom-Wan-14B",
    "Phantom-Wan-14B DiT, safetensors shards + Phantom_Wan_14B.safetensors.index.json",
    repo_id="bytedance-research/Phantom",
    snapshot=True,
    allow_patterns=("Phantom_Wan_14B*",),
)


@dataclass(frozen=True)
class PhantomOptions:
    steps: int
    cfg_image: float
    cfg_text: float
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
    phantom_ckpt: str | None = None

    def video_config(self) -> dict[str, Any]:
        """What changes the frames (not where the files are, nor how memory is managed)."""
        out = asdict(self)
        for key in ("weights", "phantom_ckpt", "offload"):
            out.pop(key)
        return out


class _PhantomBase(WanReleaseAdapter):
    defaults: ClassVar[dict[str, Any]] = RELEASE_DEFAULTS
    options_class = PhantomOptions
    float_options = ("cfg_image", "cfg_text", "shift", "fps")
    licence: ClassVar[str] = "Apache-2.0 (Phantom-Wan code and weights; Wan2.1 parts Apache-2.0)"
    #: README: "The number of reference images should be within 4."
    max_references: ClassVar[int] = 4

    def generate(self, case: Case, seed: int, out_path: Path) -> None:
        if self.pipeline is None:
            self.setup()
        o = self.parsed
        frames = self.pipeline(
            case.prompt,
            [load_reference(ref) for ref in case.references],
            height=o.height,
            width=o.width,
            num_frames=o.num_frames,
            num_steps=o.steps,
            shift=o.shift,
            guide_scale_img=o.cfg_image,
            guide_scale_text=o.cfg_text,
            seed=seed,
        )
        write_video(out_path, frames, o.fps)


class _PhantomRelease(_PhantomBase):
    known_options = ("weights", "phantom_ckpt", "steps", "cfg_image", "cfg_text", "shift", "height", "width",
                     "num_frames", "fps", "dtype", "vae_dtype", "device", "offload")  # fmt: skip
    config_name: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        wan, phantom = self.weights
        self.wan_dir = require_weights(self.name, wan, self.parsed.weights, inside=WAN_BASE_FILES)
        inside = ("Phantom_Wan_14B.safetensors.index.json",) if phantom.snapshot else ()
        self.phantom_path = require_weights(
            self.name, phantom, self.parsed.phantom_ckpt, inside=inside, option="phantom_ckpt"
        )

    def setup(self) -> None:
        if self.pipeline is not None:
            return
        import torch

        from kaleido_bench.baselines.wan.phantom import CONFIGS, PhantomPipeline
        from kaleido_bench.kaleido.errors import CheckpointKeyError, CheckpointNotFoundError

        o = self.parsed
        try:
            self.pipeline = PhantomPipeline.from_pretrained(
                self.wan_dir, self.phantom_path, config=CONFIGS[self.config_name], dtype=getattr(torch, o.dtype),
                vae_dtype=getattr(torch, o.vae_dtype), device=resolve_device(o.device), offload=o.offload,
            )  # fmt: skip
        except CheckpointNotFoundError as exc:
            raise WeightsMissingError(
                f"model {self.name!r}: {exc}; `kaleido-bench weights download {self.name}`"
            ) from None
        except CheckpointKeyError as exc:
            raise CheckpointMismatchError(f"model {self.name!r}: {exc}") from None


@register_model("phantom-1.3b")
class Phantom13BAdapter(_PhantomRelease):
    description = "Phantom-Wan-1.3B (ByteDance): Wan2.1 T2V DiT, references after the video latents, 480x832x81, 50 UniPC steps, shift 5, CFG image 5 / text 7.5"
    weights = (WAN_BASE, PHANTOM_1_3B_WEIGHTS)
    weights_source = "Hugging Face bytedance-research/Phantom (Phantom-Wan-1.3B.pth) + Wan-AI/Wan2.1-T2V-1.3B (umT5, VAE)"
    parameters = "1.3B"
    config_name = "phantom-1.3b"


@register_model("phantom-14b")
class Phantom14BAdapter(_PhantomRelease):
    description = "Phantom-Wan-14B (ByteDance): Wan2.1 T2V DiT, references after the video latents, 480x832x121 at 24 fps, 50 UniPC steps, shift 5, CFG image 5 / text 7.5"
    defaults = RELEASE_DEFAULTS_14B
    weights = (WAN_BASE, PHANTOM_14B_WEIGHTS)
    weights_source = "Hugging Face bytedance-research/Phantom (Phantom_Wan_14B shards) + Wan-AI/Wan2.1-T2V-1.3B (umT5, VAE)"
    parameters = "14B"
    config_name = "phantom-14b"


@register_model("phantom-tiny")
class PhantomTinyAdapter(_PhantomBase):
    description = "Phantom-Wan code path with a tiny random network (fixed seed, no files): smoke runs and tests"
    label = "random weights"
    licence = "n/a (random weights)"
    weights_source = "none: random weights built in code"
    parameters = "tiny"
    defaults: ClassVar[dict[str, Any]] = {**RELEASE_DEFAULTS, "steps": 4, "height": 64, "width": 64, "num_frames": 9,
                                          "device": "cpu", "dtype": "fp32", "vae_dtype": "fp32"}  # fmt: skip
    known_options = (
        "steps",
        "cfg_image",
        "cfg_text",
        "shift",
        "height",
        "width",
        "num_frames",
        "fps",
        "device",
    )

    def setup(self) -> None:
        if self.pipeline is None:
            from kaleido_bench.baselines.wan.phantom import PhantomPipeline

            self.pipeline = PhantomPipeline.tiny(device=resolve_device(self.parsed.device))
