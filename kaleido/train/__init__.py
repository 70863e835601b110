"""Fine-tuning Kaleido on the data pipeline's shards (issue 17 part 5).

`config` (TrainConfig from YAML), `data` (shard reader / writer, resumable sample order),
`objective` (flow matching on the video tokens, the release's sigma shift, caption dropout),
`trainer` (accelerate loop: bf16, gradient checkpointing, FSDP2, checkpoints, exact resume).
`run(config)` trains; `python -m kaleido_bench.kaleido.train CONFIG.yaml` (or under
`accelerate launch`) does the same from a shell. Names are imported lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "config",
    "TrainConfigError": "config",
    "run": "trainer",
    "TrainResult": "trainer",
    "ShardDataset": "data",
    "ShardError": "data",
    "SampleToWrite": "data",
    "write_shard": "data",
    "read_shard": "data",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
