"""Where every model file lives: one resolver for explicit paths, the weights dir and the HF cache.

Look-up order for a `WeightFile`:
  1. an explicit path (a metric option), then the installed package that ships it (dlib's models),
  2. `$KALEIDO_BENCH_WEIGHTS/<filename>` (default `~/.cache/kaleido_bench/weights`),
  3. the Hugging Face hub cache (`huggingface_hub.try_to_load_from_cache`: local only, no network).
A miss raises `WeightsMissingError` at once, naming the file, where it looked and the command
that fetches it (`kaleido-bench weights download METRIC`).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaleido_bench.core.errors import BenchError, WeightFileError, WeightsMissingError

WEIGHTS_ENV = "KALEIDO_BENCH_WEIGHTS"


@dataclass(frozen=True)
class WeightFile:
    """One model file (or, with `snapshot=True`, one hub repository folder) a metric needs."""

    filename: str  # path under the weights dir; also the hub filename unless `repo_filename`
    description: str
    repo_id: str | None = None  # Hugging Face repository holding it
    repo_filename: str | None = None
    url: str | None = None  # plain download address when it is not on the hub
    snapshot: bool = False  # a whole hub repository (transformers / open_clip model folders)
    allow_patterns: tuple[str, ...] = ()
    package: str | None = None  # "pkg:path/in/pkg" for files that ship inside an installed package

    def packaged_path(self) -> Path | None:
        """Where an installed package keeps this file (found without importing the package)."""
        if not self.package:
            return None
        from importlib.util import find_spec

        name, _, inner = self.package.partition(":")
        try:
            spec = find_spec(name)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(list(spec.submodule_search_locations)[0]) / inner

    @property
    def hub_filename(self) -> str:
        return self.repo_filename or self.filename


def weights_dir() -> Path:
    return Path(os.environ.get(WEIGHTS_ENV) or Path.home() / ".cache" / "kaleido_bench" / "weights")


@dataclass(frozen=True)
class Resolution:
    """Where a weight file was looked for and where (if anywhere) it was found."""

    weight: WeightFile
    path: Path | None
    searched: tuple[str, ...]

    @property
    def found(self) -> bool:
        return self.path is not None


def locate(weight: WeightFile, explicit: str | Path | None = None) -> Resolution:
    """Find `weight` on local disk only; never touches the network."""
    searched: list[str] = []
    if explicit is not None:
        path = Path(explicit).expanduser()
        searched.append(str(path))
        if path.exists():
            return Resolution(weight, path, tuple(searched))
    packaged = weight.packaged_path()
    if packaged is not None:
        searched.append(str(packaged))
        if packaged.exists():
            return Resolution(weight, packaged, tuple(searched))
    local = weights_dir() / weight.filename
    searched.append(str(local))
    if local.exists() and (not weight.snapshot or any(local.iterdir())):
        return Resolution(weight, local, tuple(searched))
    if weight.repo_id:
        searched.append(f"hf cache {weight.repo_id}")
        cached = _from_hf_cache(weight)
        if cached is not None:
            return Resolution(weight, cached, tuple(searched))
    return Resolution(weight, None, tuple(searched))


def resolve(weight: WeightFile, explicit: str | Path | None = None, *, metric: str = "") -> Path:
    """The local path of `weight`, or a `WeightsMissingError` that says how to get it."""
    found = locate(weight, explicit)
    if found.path is not None:
        return found.path
    how = (
        f"`kaleido-bench weights download {metric}`"
        if metric
        else "`kaleido-bench weights download`"
    )
    source = weight.repo_id or weight.url or "its publisher"
    raise WeightsMissingError(
        f"missing weights {weight.filename} ({weight.description}) for metric {metric or '?'}; "
        f"looked in: {'; '.join(found.searched)}. Get it with {how} on a connected machine "
        f"(source: {source}), or put it at {weights_dir() / weight.filename}"
    )


def weights_fingerprint(path: Path | None) -> str:
    """What identifies a weight file or folder's content, cheaply: per file its relative name,
    size and the sha256 of its first and last MiB (a full hash of a 15 GB checkpoint would cost a
    minute per run). "missing" when there is no file."""
    import hashlib

    if path is None or not Path(path).exists():
        return "missing"
    path = Path(path)
    files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path) if path.is_dir() else file.name}:{size}:".encode())
        with open(file, "rb") as handle:
            digest.update(handle.read(1 << 20))
            if size > 2 << 20:
                handle.seek(-(1 << 20), os.SEEK_END)
                digest.update(handle.read())
    return digest.hexdigest()[:16]


def _from_hf_cache(weight: WeightFile) -> Path | None:
    try:
        from huggingface_hub import snapshot_download, try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub is a core dependency
        return None
    if weight.snapshot:
        try:
            folder = snapshot_download(
                weight.repo_id,
                local_files_only=True,
                allow_patterns=list(weight.allow_patterns) or None,
            )
        except Exception:
            return None
        return Path(folder)
    cached = try_to_load_from_cache(weight.repo_id, weight.hub_filename)
    return Path(cached) if isinstance(cached, str) else None


def download(weight: WeightFile) -> Path:
    """Fetch `weight` into the weights dir (hub with its progress bars, or a plain URL)."""
    target = weights_dir() / weight.filename
    if weight.repo_id:
        from huggingface_hub import hf_hub_download, snapshot_download

        if weight.snapshot:
            return Path(
                snapshot_download(
                    weight.repo_id,
                    local_dir=target,
                    allow_patterns=list(weight.allow_patterns) or None,
                )
            )
        fetched = Path(
            hf_hub_download(weight.repo_id, weight.hub_filename, local_dir=target.parent / "_hub")
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(fetched, target)
        return target
    if weight.url:
        return _download_url(weight.url, target)
    raise WeightsMissingError(f"{weight.filename} has no download source; place it at {target}")


def _download_url(url: str, target: Path) -> Path:
    import urllib.request

    from rich.progress import Progress

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    with (
        urllib.request.urlopen(url, timeout=30) as response,
        open(tmp, "wb") as out,
        Progress() as bar,
    ):
        total = int(response.headers.get("Content-Length") or 0) or None
        task = bar.add_task(f"download {target.name}", total=total)
        while chunk := response.read(1 << 20):
            out.write(chunk)
            bar.advance(task, len(chunk))
    os.replace(tmp, target)
    return target


@contextmanager
def reading_weight_file(path: str | Path, *, metric: str = "") -> Iterator[None]:
    """Turn any failure while READING `path` (torch.load with `weights_only=True`, safetensors, or a
    library loader handed the file: open_clip, timm, transformers) into one `WeightFileError` naming
    the file. torch's own message is not passed on: it advises `weights_only=False`, which would run
    the file's pickled code. Wrap only the read, not the model's `load_state_dict` check."""
    try:
        yield
    except BenchError:
        raise
    except (
        Exception
    ) as exc:  # torch raises UnpicklingError, KeyError, EOFError, RuntimeError; safetensors its own
        if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
            raise  # the machine, not the file
        raise WeightFileError(_weight_file_message(Path(path), exc, metric)) from None


def _weight_file_message(path: Path, exc: BaseException, metric: str) -> str:
    if isinstance(exc, pickle.UnpicklingError) and "weights only" in str(exc).lower():
        why = (
            "it holds pickled Python objects besides tensors, which are refused and never executed"
        )
    elif "Error(s) in loading state_dict" in str(exc):  # a library loader's strict check
        why = "its tensors do not match the model (missing, unexpected or wrong-shape names: another model's file?)"
    elif path.is_file() and path.stat().st_size == 0:
        why = "it is empty (an interrupted download?)"
    else:
        why = f"it is not a readable tensor file ({type(exc).__name__})"
    fix = f"`kaleido-bench weights download {metric}`" if metric else "the published file"
    return f"weight file {path} cannot be loaded safely: {why}; replace it with {fix}"


def load_tensor_file(path: str | Path, *, metric: str = "") -> Any:
    """A state dict from a `.safetensors` file or a torch file read with `weights_only=True`; any
    failure is a `WeightFileError` naming `path` (see `reading_weight_file`)."""
    import torch

    path = Path(path)
    with reading_weight_file(path, metric=metric):
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
