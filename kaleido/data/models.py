"""Where a stage's weights come from: a local folder, or a Hugging Face repo id resolved offline
from the hub cache (`huggingface_hub.snapshot_download(local_files_only=True)`). Nothing is
downloaded while the pipeline runs: a missing model is one `DataModelNotFoundError` naming the
repo and the `hf download` command that fetches it."""

from __future__ import annotations

from pathlib import Path

from kaleido_bench.kaleido.errors import KaleidoError


class DataModelNotFoundError(KaleidoError, FileNotFoundError):
    """A stage's model that is neither a local folder nor in the Hugging Face cache."""


def resolve_model(ref: str | Path, stage: str) -> Path:
    """The folder holding `ref`'s files: `ref` itself when it is a folder, else its cached snapshot."""
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    if path.is_absolute() or str(ref).startswith((".", "~")) or str(ref).count("/") != 1:
        raise DataModelNotFoundError(f"{stage} model folder {ref} does not exist")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(ref), local_files_only=True))
    except Exception:  # LocalEntryNotFoundError, an offline cache miss, a gated repo, ...
        raise DataModelNotFoundError(
            f"{stage} model {ref} is not in the Hugging Face cache; download it with "
            f"`hf download {ref}` (or pass a local folder)"
        ) from None
