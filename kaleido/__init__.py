"""The Kaleido reference model (zai-org/Kaleido-14B-S2V) built on diffusers' Wan parts.

Model code only, like diffusers: nothing here imports the benchmark harness. The parts:
`config` (14B and tiny configs), `rope` (R-RoPE), `transformer` (the DiT), `scheduler`,
`references` (reference preprocessing), `text_encoder` (umT5), `vae` (Wan VAE), `checkpoint`
(SAT key map and loading), `pipeline`; `train/` fine-tunes it. Names are imported lazily so that importing the
package does not import torch or diffusers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "KaleidoConfig": "config",
    "KALEIDO_14B": "config",
    "KALEIDO_TINY": "config",
    "get_config": "config",
    "RRoPE": "rope",
    "rrope_positions": "rope",
    "KaleidoTransformer3DModel": "transformer",
    "build_transformer": "transformer",
    "FlowEulerScheduler": "scheduler",
    "KaleidoPipeline": "pipeline",
    "KaleidoError": "errors",
    "CheckpointKeyError": "errors",
    "CheckpointNotFoundError": "errors",
    "GpuMemoryError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
