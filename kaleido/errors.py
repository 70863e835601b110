"""Errors of the Kaleido model code, each naming what is missing and how to get it.

`kaleido_bench.kaleido` is model code only (like diffusers) and does not import the harness;
the adapter in `baselines/kaleido.py` turns these into the harness's error types.
"""

from __future__ import annotations

#: Where the released weights live (about 64 GB).
WEIGHTS_REPO = "zai-org/Kaleido-14B-S2V"
#: The release uploads model/ in parts; its own `merge_kaleido.py` (at the top of the download)
#: joins them into `model/<iter>/mp_rank_00_model_states.pt` (zai-org/Kaleido README, "Checkpoints Download").
MERGE_STEP = "then run `python merge_kaleido.py` inside DIR to join the uploaded parts of model/"
DOWNLOAD_HINT = f"download them with `hf download {WEIGHTS_REPO} --local-dir DIR` ({MERGE_STEP}) and pass that DIR"


class KaleidoError(Exception):
    """Base of every error a user can act on."""


class CheckpointNotFoundError(KaleidoError, FileNotFoundError):
    """A weights file or folder that is not on disk."""


class CheckpointKeyError(KaleidoError, KeyError):
    """A checkpoint whose tensor names or shapes do not match the model exactly."""

    def __init__(
        self,
        what: str,
        missing: list[str],
        unexpected: list[str],
        mismatched: list[str] | None = None,
    ):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched or []
        lines = [f"{what} does not match the model:"]
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", self.mismatched),
        ):
            if keys:
                shown = ", ".join(keys[:10]) + (
                    f", ... ({len(keys) - 10} more)" if len(keys) > 10 else ""
                )
                lines.append(f"  {len(keys)} {label} key(s): {shown}")
        super().__init__("\n".join(lines))

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class GpuMemoryError(KaleidoError):
    """The accelerator has less memory than the chosen settings need."""


class CheckpointUnreadableError(KaleidoError):
    """A weights file on disk that is not a tensor file that can be loaded safely (`weights_only=True`)."""
