"""Reference-image embeddings, computed once per run.

A suite reuses reference images across cases, and every generated video of a case (models,
seeds) is scored against the same references. `EmbeddingCache` keys an embedding by

    (sha256 of the image FILE's bytes, model id, preprocessing id)

so a reference is embedded once per backbone + preprocessing whatever its path, and a changed
file (same path, new bytes) is embedded again. Hashes are memoised per (path, size, mtime).
Embeddings are kept as float32 CPU tensors in memory; with `directory` set they are also written
there as `.npy` files (one per key) so a resumed run skips them too.

Each `ScoringContext` owns one (`context.cache`); `clear()` starts afresh. Batching: the images a call misses are embedded in ONE call of `compute`.

`derived` memoises other per-file results (a face search, a subject / background split) under
the same content hash, in memory only, so one `clear()` forgets every per-reference result.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from kaleido_bench.core.once import OnceMap

T = TypeVar("T")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class EmbeddingCache:
    """Embeddings of image files keyed by (content sha256, model id, preprocessing id)."""

    directory: Path | None = None
    hits: int = 0
    misses: int = 0
    _memory: dict[tuple[str, str, str], Any] = field(default_factory=dict, repr=False)
    _digests: dict[tuple[str, int, int], str] = field(default_factory=dict, repr=False)
    _derived: OnceMap[Any] = field(default_factory=OnceMap, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def digest(self, path: str | Path) -> str:
        """sha256 of the file's bytes, hashed once per (path, size, mtime)."""
        from kaleido_bench.core.errors import MissingImageError

        resolved = Path(path).resolve()
        try:
            stat = resolved.stat()
        except OSError:
            raise MissingImageError(f"image {path} does not exist or cannot be read") from None
        memo = (str(resolved), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if memo not in self._digests:
                self._digests[memo] = file_sha256(resolved)
            return self._digests[memo]

    def key(self, path: str | Path, model_id: str, preprocess_id: str) -> tuple[str, str, str]:
        return (self.digest(path), model_id, preprocess_id)

    def embeddings(
        self,
        paths: Sequence[str | Path],
        model_id: str,
        preprocess_id: str,
        compute: Callable[[list[Path]], Any],
    ) -> list[Any]:
        """One embedding per path (a float32 CPU tensor row), computing the missing ones in one batch.

        `compute(paths)` returns a (len(paths), D) tensor or array for the images it is given.
        Duplicate files (same bytes) are embedded once.
        """
        import torch

        keys = [self.key(p, model_id, preprocess_id) for p in paths]
        with self._lock:
            missing: dict[tuple[str, str, str], Path] = {}
            for path, key in zip(paths, keys):
                if key in self._memory or key in missing:
                    continue
                stored = self._read(key)
                if stored is not None:
                    self._memory[key] = stored
                else:
                    missing[key] = Path(path)
            self.hits += len(keys) - len(missing)
            self.misses += len(missing)
            if missing:
                computed = compute(list(missing.values()))
                computed = torch.as_tensor(
                    np.asarray(computed) if not torch.is_tensor(computed) else computed
                )
                if len(computed) != len(missing):
                    raise ValueError(
                        f"compute returned {len(computed)} embeddings for {len(missing)} images"
                    )
                for key, row in zip(missing, computed):
                    row = row.detach().float().cpu().clone()
                    self._memory[key] = row
                    self._write(key, row)
            return [self._memory[key] for key in keys]

    def derived(self, path: str | Path, kind: str, compute: Callable[[], T]) -> T:
        """`compute()` once per (file content sha256, `kind`); memory only, never written to disk.

        For per-file results that are not embedding rows. `kind` must name everything the result
        depends on besides the file's bytes (model / pack, mask file digest, parameters). Each key
        has its own lock, so a slow computation does not hold up other keys or `embeddings`.
        """
        return self._derived.get((self.digest(path), kind), compute)

    def __len__(self) -> int:
        return len(self._memory)

    def clear(self) -> None:
        """Forget embeddings, derived results and file hashes (stored `.npy` files stay)."""
        with self._lock:
            self._memory.clear()
            self._digests.clear()
            self._derived.clear()
            self.hits = self.misses = 0

    def _file(self, key: tuple[str, str, str]) -> Path | None:
        if self.directory is None:
            return None
        name = hashlib.sha256("\0".join(key).encode()).hexdigest()
        return Path(self.directory) / f"{name}.npy"

    def _read(self, key: tuple[str, str, str]) -> Any:
        file = self._file(key)
        if file is None or not file.is_file():
            return None
        import torch

        return torch.from_numpy(np.load(file))

    def _write(self, key: tuple[str, str, str], row: Any) -> None:
        file = self._file(key)
        if file is None:
            return
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(".npy.tmp")
        with open(tmp, "wb") as handle:
            np.save(handle, row.numpy())
        tmp.replace(file)
