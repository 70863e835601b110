"""Who may work on a run folder: one whole-run process, or several shards of it, never two of the same.

`fcntl.flock` on files in the run folder (released by the kernel when a process dies, so a
kill -9 leaves no stale lock):

- a local run or a Ray driver takes `.lock` EXCLUSIVELY: a second identical command exits at
  once with a clear message instead of doing the same work;
- shard i of N takes `.lock` SHARED (several shards run side by side, but not beside a whole
  run) and `.lock-shard-i-of-N` exclusively (the same shard twice is refused).

Shards never overlap (a deterministic split of the cases) and Ray workers get distinct cases
from their driver, so holding these locks is all it takes for no case to be done twice.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from kaleido_bench.core.errors import RunLockedError

LOCK = ".lock"


def _take(path: Path, mode: int, holder: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunLockedError(
            f"run folder {path.parent} is in use by another process ({holder}); wait for it to finish, "
            "or run another shard (--shard i/N) of it"
        ) from None
    return fd


@contextmanager
def run_lock(root: Path, shard: tuple[int, int] | None = None) -> Iterator[None]:
    """Hold the run folder for this process (whole, or as shard `(i, N)`) until the block ends."""
    with ExitStack() as stack:
        if shard is None:
            fds = [_take(root / LOCK, fcntl.LOCK_EX, "a whole run or one of its shards")]
        else:
            index, count = shard
            fds = [
                _take(root / LOCK, fcntl.LOCK_SH, "a whole run"),
                _take(
                    root / f"{LOCK}-shard-{index}-of-{count}",
                    fcntl.LOCK_EX,
                    f"shard {index}/{count}",
                ),
            ]
        for fd in fds:
            stack.callback(os.close, fd)
        yield
