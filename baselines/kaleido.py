"""`kaleido` and `kaleido-tiny`: the Kaleido reference model (kaleido_bench.kaleido) as benchmark models.

`kaleido` runs the released Kaleido-14B-S2V weights (`-o weights=DIR` or `--weights DIR`:
`model/`, `Wan2.1_VAE.pth`, `umt5-xxl/` from zai-org/Kaleido-14B-S2V); the SAT checkpoint is
converted once to safetensors beside it (`model-diffusers/`, or `-o converted=DIR`).
`kaleido-tiny` is the same code with a tiny random network built from a fixed seed (no files):
for smoke runs and tests only, and labelled "random weights" in every table.

Options (`-o key=value`): steps, cfg_scale, height, width, num_frames (the seed comes from the
run). `kaleido` also takes weights (DIR), dtype (bf16 | fp16 | fp32), vae_dtype (default bf16,
as the release), offload (true | false: CPU offload of the idle components), device (cuda |
cpu | cuda:N), converted (DIR), batch_cfg (auto | true | false). Both take rope_continue
(true | false): the R-RoPE variant that shifts references by the video's own H, W instead of
the release's fixed 80 (the released weights were trained with false).
Missing files and a too-small GPU are reported before any loading.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from kaleido_bench.baselines.base import ModelAdapter, ModelCapabilities, register_model
from kaleido_bench.baselines.cutout import load_reference
from kaleido_bench.baselines.options import (
    bool_option,
    check_wan_video_size,
    dtype_option,
    float_option,
    int_option,
    refuse_unknown,
)
from kaleido_bench.core.cases import Case
from kaleido_bench.core.errors import (
    CheckpointMismatchError,
    GpuMemoryTooSmallError,
    ModelOptionError,
    WeightFileError,
    WeightsMissingError,
)
from kaleido_bench.core.video import write_video

WEIGHTS_HINT = (
    "download zai-org/Kaleido-14B-S2V (about 64 GB: `hf download zai-org/Kaleido-14B-S2V --local-dir DIR`, "
    "then `python merge_kaleido.py` inside DIR, the release's script that joins the uploaded parts of model/) "
    "and pass --weights DIR (or -o weights=DIR)"
)


@dataclass(frozen=True)
class KaleidoOptions:
    """Parsed model options (numbers from strings); the fields that change videos form the config."""

    steps: int
    cfg_scale: float
    height: int
    width: int
    num_frames: int
    fps: float = 16.0
    dtype: str = "bfloat16"
    vae_dtype: str = "bfloat16"
    device: str = "auto"
    offload: bool = False
    weights: str | None = None
    converted: str | None = None
    batch_cfg: bool | None = None
    rope_continue: bool = False

    def video_config(self) -> dict[str, Any]:
        """What changes the frames (not where the files are, nor how memory is managed)."""
        out = asdict(self)
        for key in ("weights", "converted", "offload", "batch_cfg"):
            out.pop(key)
        return out


def parse_options(
    model: str, options: dict[str, Any], defaults: dict[str, Any], known: tuple[str, ...]
) -> KaleidoOptions:
    """Options from the command line (strings) or Python (numbers), refusing unknown keys."""
    refuse_unknown(model, options, known)
    values = {**defaults, **options}
    parsed: dict[str, Any] = {}
    for key, kind in (("steps", int), ("height", int), ("width", int), ("num_frames", int),
                      ("cfg_scale", float), ("fps", float)):  # fmt: skip
        parsed[key] = (int_option if kind is int else float_option)(model, key, values[key])
    if parsed["steps"] < 1:
        raise ModelOptionError(f"model {model!r}: steps must be >= 1, got {parsed['steps']}")
    check_wan_video_size(model, parsed["height"], parsed["width"], parsed["num_frames"])
    dtypes = {
        key: dtype_option(model, key, values.get(key, "bf16")) for key in ("dtype", "vae_dtype")
    }
    device = str(values.get("device", "auto")).strip().lower()
    weights = values.get("weights")
    converted = values.get("converted")
    return KaleidoOptions(
        **parsed,
        dtype=dtypes["dtype"],
        vae_dtype=dtypes["vae_dtype"],
        device=device,
        offload=bool(bool_option(model, "offload", values.get("offload", False))),
        weights=str(Path(str(weights)).expanduser()) if weights else None,
        converted=str(Path(str(converted)).expanduser()) if converted else None,
        batch_cfg=bool_option(model, "batch_cfg", values.get("batch_cfg", "auto")),
        rope_continue=bool(bool_option(model, "rope_continue", values.get("rope_continue", False))),
    )


class _KaleidoBase(ModelAdapter):
    defaults: ClassVar[dict[str, Any]] = {}
    known_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **options: Any) -> None:
        self.parsed = parse_options(
            self.name or type(self).__name__, options, self.defaults, self.known_options
        )
        super().__init__(**self.parsed.video_config())
        self.pipeline = None

    @property
    def capabilities(self) -> ModelCapabilities:
        o = self.parsed
        return ModelCapabilities(3, o.height, o.width, o.num_frames, o.fps)

    def _device(self) -> str:
        if self.parsed.device != "auto":
            return self.parsed.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

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
            cfg_scale=o.cfg_scale,
            seed=seed,
        )
        write_video(out_path, frames, o.fps)


@register_model("kaleido")
class KaleidoAdapter(_KaleidoBase):
    description = "Kaleido-14B-S2V (zai-org): Wan2.1 DiT + reference latents + R-RoPE, 512x896x81, 50 steps, CFG 6"
    licence = "not stated by the release (SPEC section 1); Wan2.1 parts Apache-2.0"
    weights_source = "zai-org/Kaleido-14B-S2V (about 64 GB, --weights DIR)"
    parameters = "14B"
    default_capabilities = ModelCapabilities(3, 512, 896, 81, 16.0)
    defaults: ClassVar[dict[str, Any]] = {"steps": 50, "cfg_scale": 6.0, "height": 512, "width": 896,
                                          "num_frames": 81, "fps": 16.0}  # fmt: skip
    known_options = ("weights", "steps", "cfg_scale", "height", "width", "num_frames", "fps", "dtype",
                     "vae_dtype", "offload", "device", "converted", "batch_cfg", "rope_continue")  # fmt: skip

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._check_files()
        self._check_memory()

    def _check_files(self) -> None:
        """Name the first missing file before anything is loaded."""
        if not self.parsed.weights:
            raise WeightsMissingError(f"model 'kaleido' needs its weights: {WEIGHTS_HINT}")
        root = Path(self.parsed.weights)
        converted = (
            Path(self.parsed.converted) if self.parsed.converted else root / "model-diffusers"
        )
        has_converted = (converted / "diffusion_pytorch_model.safetensors.index.json").is_file()
        needed = [] if has_converted else [root / "model" / "latest"]
        needed += [root / "Wan2.1_VAE.pth", root / "umt5-xxl" / "models_t5_umt5-xxl-enc-bf16.pth"]
        missing = [str(p) for p in needed if not p.is_file()]
        tokenizer_files = ("tokenizer.json", "spiece.model", "tokenizer_config.json")
        if not any((root / "umt5-xxl" / name).is_file() for name in tokenizer_files):
            missing.append(f"{root / 'umt5-xxl'}/ tokenizer files ({' or '.join(tokenizer_files)})")
        if not has_converted and (root / "model" / "latest").is_file():
            iteration = (root / "model" / "latest").read_text().strip()
            sat = root / "model" / iteration / "mp_rank_00_model_states.pt"
            if not sat.is_file():
                missing.append(
                    f"{sat} (named by model/latest; run `python merge_kaleido.py` inside the download to join the uploaded parts)"
                )
        if missing:
            raise WeightsMissingError(
                f"model 'kaleido': missing {', '.join(missing)}; {WEIGHTS_HINT}"
            )

    def _check_memory(self) -> None:
        device = self._device()
        if not device.startswith("cuda"):
            return
        import torch

        from kaleido_bench.kaleido.config import KALEIDO_14B
        from kaleido_bench.kaleido.errors import GpuMemoryError
        from kaleido_bench.kaleido.pipeline import check_gpu_memory

        o = self.parsed
        try:
            check_gpu_memory(KALEIDO_14B, torch.device(device), getattr(torch, o.dtype), o.offload,
                             (o.height, o.width, o.num_frames, 3))  # fmt: skip
        except GpuMemoryError as exc:
            raise GpuMemoryTooSmallError(f"model 'kaleido': {exc}") from None

    def setup(self) -> None:
        if self.pipeline is not None:
            return
        import torch

        from kaleido_bench.kaleido.config import get_config
        from kaleido_bench.kaleido.errors import (
            CheckpointKeyError,
            CheckpointNotFoundError,
            CheckpointUnreadableError,
            GpuMemoryError,
            KaleidoError,
        )
        from kaleido_bench.kaleido.pipeline import KaleidoPipeline

        o = self.parsed
        try:
            self.pipeline = KaleidoPipeline.from_pretrained(
                o.weights,
                config=get_config("kaleido-14b", rope_continue=o.rope_continue),
                dtype=getattr(torch, o.dtype),
                vae_dtype=getattr(torch, o.vae_dtype),
                device=self._device(),
                offload=o.offload,
                converted_dir=o.converted,
                batch_cfg=o.batch_cfg,
                plan=(o.height, o.width, o.num_frames, 3),
            )
        except CheckpointNotFoundError as exc:
            raise WeightsMissingError(f"model 'kaleido': {exc}") from None
        except CheckpointKeyError as exc:
            raise CheckpointMismatchError(f"model 'kaleido': {exc}") from None
        except CheckpointUnreadableError as exc:
            raise WeightFileError(f"model 'kaleido': {exc}") from None
        except GpuMemoryError as exc:
            raise GpuMemoryTooSmallError(f"model 'kaleido': {exc}") from None
        except KaleidoError as exc:
            raise ModelOptionError(f"model 'kaleido': {exc}") from None


@register_model("kaleido-tiny")
class KaleidoTinyAdapter(_KaleidoBase):
    description = (
        "Kaleido code path with a tiny random network (fixed seed, no files): smoke runs and tests"
    )
    label = "random weights"
    licence = "Apache-2.0 (this project's code)"
    weights_source = "none (random, built from a fixed seed)"
    parameters = "tiny"
    default_capabilities = ModelCapabilities(3, 64, 64, 9, 16.0)
    defaults: ClassVar[dict[str, Any]] = {"steps": 4, "cfg_scale": 6.0, "height": 64, "width": 64,
                                          "num_frames": 9, "fps": 16.0, "device": "cpu", "dtype": "fp32",
                                          "vae_dtype": "fp32"}  # fmt: skip
    known_options = (
        "steps",
        "cfg_scale",
        "height",
        "width",
        "num_frames",
        "fps",
        "device",
        "rope_continue",
    )

    def setup(self) -> None:
        if self.pipeline is None:
            from kaleido_bench.kaleido.pipeline import KaleidoPipeline

            self.pipeline = KaleidoPipeline.tiny(
                device=self._device(), rope_continue=self.parsed.rope_continue
            )
