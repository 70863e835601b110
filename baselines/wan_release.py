"""What the adapters of the Wan-based baselines (VACE, Phantom-Wan) share: fps and weights look-up.

Light on purpose (no torch, no diffusers): every module of `baselines/` is imported when the
models are listed. The model code lives in `baselines/wan/`.
"""

from __future__ import annotations

from pathlib import Path

from kaleido_bench.bench.errors import WeightsMissingError
from kaleido_bench.metrics.weights import WeightFile, locate, weights_dir

#: Wan2.1's `sample_fps` (its `configs/shared_config.py`).
WAN_FPS = 16.0


def require_weights(model: str, weight: WeightFile, explicit: str | Path | None = None, *, inside: tuple[str, ...] = ()) -> Path:
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
    where = f"in {found.path}: {', '.join(missing)}" if missing else f"looked in: {'; '.join(found.searched)}"
    raise WeightsMissingError(
        f"model {model!r} needs {weight.filename} ({weight.description}, {weight.repo_id or weight.url}); "
        f"missing {where}. Get it with `kaleido-bench weights download {model}` on a connected machine, "
        f"or put it at {weights_dir() / weight.filename} (or pass -o weights=PATH)"
    )
