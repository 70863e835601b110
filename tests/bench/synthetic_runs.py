"""Run folders built in a test through the store's own API (manifest, score records, videos),
for the leaderboard and report tests. Not a test module."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from kaleido_bench.bench.store import ResultStore, RunManifest, ScoreRecord
from kaleido_bench.core.video import write_video


def make_run(
    root: Path,
    name: str,
    records: Iterable[ScoreRecord],
    *,
    model: str,
    label: str = "",
    suite: str = "mini",
    domain: str = "",
    videos: Iterable[str] = (),
    bulk: bool = False,
) -> Path:
    """A run folder `root/name`; `videos`: case ids that get a small real H.264 file.

    `bulk` writes scores.jsonl in one go (the store's line format, without one fsync per line)
    for the large synthetic runs."""
    store = ResultStore(root / name)
    store.open(
        RunManifest(
            model={"model": model},
            suite={"name": suite, "version": "2", "domain": domain},
            seed=0,
            label=label,
        )
    )
    if bulk:
        with open(store.scores_path, "a", encoding="utf-8") as handle:
            handle.writelines(json.dumps(asdict(record)) + "\n" for record in records)
    else:
        for record in records:
            store.append(record)
    for index, case in enumerate(videos):
        write_video(store.video_path(case), moving_frames(index), fps=8)
    return store.root


def moving_frames(seed: int, count: int = 8, size: int = 32) -> np.ndarray:
    """A square that moves over a coloured background: a few KB of H.264."""
    frames = np.zeros((count, size, size, 3), dtype=np.uint8)
    frames[..., seed % 3] = 60 + 20 * (seed % 5)
    for t in range(count):
        frames[t, 8:16, 2 + 2 * t : 10 + 2 * t] = 255
    return frames
