"""What the adapters of the Wan-based baselines (VACE, Phantom-Wan) share: fps and weights look-up.

Light on purpose (no torch, no diffusers): every module of `baselines/` is imported when the
models are listed. The model code lives in `baselines/wan/`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from kaleido_bench.baselines.base import ModelAdapter, ModelCapabilities
from kaleido_bench.baselines.options import (
    bool_option,
    check_wan_video_size,
    dtype_option,
    float_option,
    int_option,
    refuse_unknown,
)
from kaleido_bench.core.errors import ModelOptionError, WeightsMissingError
from kaleido_bench.metrics.weights import WeightFile, locate, weights_dir

#: Wan2.1's `sample_fps` (its `configs/shared_config.py`).
WAN_FPS = 16.0


def require_weights(model: str, weight: WeightFile, explicit: str | Path | None = None, *, inside: tuple[str, ...] = (),
                    option: str = "weights") -> Path:  # fmt: skip
    """The local path of `weight` (explicit path, weights dir or HF cache), else a `WeightsMissingError`.

    `inside` names files that must exist in a snapshot folder (e.g. `model_index.json`), so a
    half-finished download is reported as missing, not as a crash inside diffusers.
    """
    found = locate(weight, explicit)
    missing: list[str] = []
    if found.path is not None:
        missing = [name for name in inside if not (found.path / name).exists()]
        if not missing:
            return found.path
    where = (
        f"in {found.path}: {', '.join(missing)}"
        if missing
        else f"(looked in: {'; '.join(found.searched)})"
    )
    raise WeightsMissingError(
        f"model {model!r} needs {weight.filename} ({weight.description}, {weight.repo_id or weight.url}); "
        f"missing {where}. Get it with `kaleido-bench weights download {model}` on a connected machine, "
        f"or put it at {weights_dir() / weight.filename} (or pass -o {option}=PATH)"
    )


def parse_wan_options(model: str, options: Mapping[str, Any], defaults: Mapping[str, Any], known: Iterable[str], *,
                      ints: Iterable[str] = ("steps", "height", "width", "num_frames"),
                      floats: Iterable[str] = ()) -> dict[str, Any]:  # fmt: skip
    """Typed options of a Wan-based model: numbers parsed, sizes checked, unknown keys refused.

    Also reads, when `known` has them: dtype / vae_dtype (bf16 | fp16 | fp32), device, offload
    (true | false) and path options (weights, phantom_ckpt).
    """
    known = tuple(known)
    refuse_unknown(model, options, known)
    values = {**defaults, **options}
    out: dict[str, Any] = {key: int_option(model, key, values[key]) for key in ints}
    out.update({key: float_option(model, key, values[key]) for key in floats})
    if out["steps"] < 1:
        raise ModelOptionError(f"model {model!r}: steps must be >= 1, got {out['steps']}")
    check_wan_video_size(model, out["height"], out["width"], out["num_frames"])
    for key in ("dtype", "vae_dtype"):
        if key in values:
            out[key] = dtype_option(model, key, values[key])
    if "device" in values:
        out["device"] = str(values["device"]).strip().lower()
    if "offload" in known:
        out["offload"] = bool(bool_option(model, "offload", values.get("offload", False)))
    for key in ("weights", "phantom_ckpt"):
        if key in known:
            out[key] = str(Path(str(values[key])).expanduser()) if values.get(key) else None
    return out


def resolve_device(device: str) -> str:
    """ "auto" -> cuda when there is one, else cpu."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class WanReleaseAdapter(ModelAdapter):
    """A released Wan-based model's adapter: options parsed against its release `defaults` into
    `options_class` (what changes the frames goes into the run's config), and its model card
    sizes and reference limit from those defaults."""

    defaults: ClassVar[dict[str, Any]] = {}
    known_options: ClassVar[tuple[str, ...]] = ()
    float_options: ClassVar[tuple[str, ...]] = ("shift", "fps")
    options_class: ClassVar[type] = dict
    weights_source: ClassVar[str] = ""
    parameters: ClassVar[str] = ""
    weights: ClassVar[tuple[WeightFile, ...]] = ()
    max_references: ClassVar[int] = 3

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """The model card's sizes are the release defaults each subclass declares."""
        super().__init_subclass__(**kwargs)
        d = cls.defaults
        if d:
            cls.default_capabilities = ModelCapabilities(
                cls.max_references, d["height"], d["width"], d["num_frames"], d["fps"]
            )

    def __init__(self, **options: Any) -> None:
        model = self.name or type(self).__name__
        parsed = parse_wan_options(
            model, options, self.defaults, self.known_options, floats=self.float_options
        )
        self.parsed = self.options_class(**parsed)
        super().__init__(**self.parsed.video_config())
        self.pipeline = None

    @property
    def capabilities(self) -> ModelCapabilities:
        o = self.parsed
        return ModelCapabilities(self.max_references, o.height, o.width, o.num_frames, o.fps)
