"""Read a released `.pth` file safely: `torch.load(weights_only=True)`, and any failure is one
`CheckpointUnreadableError` naming the file. torch's own message is not passed on: it suggests
`weights_only=False`, which would run whatever code the file pickles."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from kaleido_bench.kaleido.errors import CheckpointUnreadableError


def load_torch_weights(path: str | Path, *, mmap: bool = False) -> Any:
    """The file's tensors (memory-mapped with `mmap` when the file allows it: zip format only)."""
    path = Path(path)
    try:
        if mmap:
            try:
                return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:  # a legacy (non-zip) file cannot be memory-mapped
                pass
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, KeyError, EOFError, RuntimeError, ...
        if isinstance(exc, pickle.UnpicklingError) and "weights only" in str(exc).lower():
            why = "it holds pickled Python objects besides tensors, which are refused and never executed"
        else:
            why = f"it is not a readable tensor file ({type(exc).__name__})"
        raise CheckpointUnreadableError(
            f"weights file {path} cannot be loaded safely: {why}; download the released file again"
        ) from None
