"""`kaleido-bench profile`: seconds per video for decoding and for each metric on this machine.

Model loading (`setup`) is timed once and reported apart from the per-video cost, the way a
run pays it. Videos are matched to cases by file stem; a stem that is not a case of the suite
gets a stand-in case (prompt "", no references) so reference-free metrics still time it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from kaleido_bench.bench.cases import Case
from kaleido_bench.bench.runner import select_metrics
from kaleido_bench.bench.suites import load_suite
from kaleido_bench.bench.video import decode_video


def profile_videos(videos: list[Path], *, suite: str = "opens2v", data_root: Path | None = None,
                   metric_names: list[str] | None = None, repeat: int = 1, device: str = "cpu") -> pd.DataFrame:
    """One row per stage ("decode", then each metric): setup seconds and mean seconds per video."""
    the_suite = load_suite(suite, data_root)
    cases = {case.id: case for case in the_suite.cases}
    metrics, skipped = select_metrics(metric_names or ["available"], device)
    rows = []
    decoded = {}
    started = time.perf_counter()
    for _ in range(repeat):
        for path in videos:
            decoded[path] = decode_video(path)
    decode_seconds = (time.perf_counter() - started) / (repeat * len(videos))
    first = next(iter(decoded.values()))
    rows.append({"stage": "decode (PyAV rgb24)", "setup_s": 0.0, "s_per_video": decode_seconds,
                 "frames": first.num_frames, "size": f"{first.height}x{first.width}", "note": ""})
    for metric in metrics:
        started = time.perf_counter()
        metric.setup()
        setup = time.perf_counter() - started
        started = time.perf_counter()
        notes = set()
        for _ in range(repeat):
            for path, video in decoded.items():
                case = cases.get(path.stem) or Case(path.stem, "", ())
                result = metric.score(video, case)
                if result.value is None:
                    notes.add(str(result.details.get("absent", "absent")))
        seconds = (time.perf_counter() - started) / (repeat * len(videos))
        rows.append({"stage": metric.name, "setup_s": setup, "s_per_video": seconds, "frames": first.num_frames,
                     "size": f"{first.height}x{first.width}", "note": "; ".join(sorted(notes))})
    for name, reason in skipped.items():
        rows.append({"stage": name, "setup_s": None, "s_per_video": None, "frames": None, "size": "",
                     "note": f"skipped: {reason}"})
    return pd.DataFrame(rows)
