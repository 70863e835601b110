"""Samples per minute of the data pipeline (`kaleido.data.build`) with 1 and 2 actors per model
stage on a local Ray cluster, tiny random models (tests/kaleido/data_tiny_models.py), synthetic
panning clips with their subjects given (the tiny VLM writes no JSON).

    python benchmarks/data_pipeline_speed.py --clips 12 --out results/benchmarks/data_pipeline_cpu.md

Each run starts a fresh dataset folder; the wall time includes starting the actors (loading the
models), which is why a second rate is reported: the slowest stage's mean time per sample
inside its actors (the funnel's `stage_seconds`) bounds the rate once every actor is busy."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "kaleido"))


def make_clips(folder: Path, count: int) -> None:
    import cv2
    import numpy as np
    from skimage import data

    from kaleido_bench.kaleido.data.video import write_mp4

    photos = [(data.chelsea(), "cat"), (data.coffee(), "cup"), (data.chelsea()[:, ::-1], "cat")]
    for i in range(count):
        photo, label = photos[i % len(photos)]
        scaled = cv2.resize(photo, (192, 96), interpolation=cv2.INTER_AREA)
        shift = np.linspace(0, 64, 8).round().astype(int) + (i % 5)
        write_mp4(
            folder / f"clip{i:03d}.mp4",
            np.stack([scaled[:, s : s + 128] for s in np.minimum(shift, 64)]),
        )
        (folder / f"clip{i:03d}.json").write_text(
            json.dumps({"caption": f"a {label}", "subjects": [label]})
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "results" / "benchmarks" / "data_pipeline_cpu.md"
    )
    args = parser.parse_args()

    import pyarrow.parquet as pq
    import ray
    from data_tiny_models import tiny_pipeline_config, write_all

    from kaleido_bench.kaleido.data import build

    tmp = Path(tempfile.mkdtemp(prefix="data_pipeline_speed_"))
    models = write_all(tmp / "models")
    (tmp / "clips").mkdir()
    make_clips(tmp / "clips", args.clips)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = []
    for workers in args.workers:
        out = tmp / f"dataset_w{workers}"
        config = replace(tiny_pipeline_config(models), workers=workers, shard_size=1)
        start = time.time()
        report = build(tmp / "clips", out, config)
        wall = time.time() - start
        funnel = [
            r for p in (out / "funnel").glob("part-*.parquet") for r in pq.read_table(p).to_pylist()
        ]
        per_stage: dict[str, list[float]] = {}
        for row in funnel:
            for stage, seconds in zip(row["stages"], row["stage_seconds"]):
                per_stage.setdefault(stage, []).append(seconds)
        means = {k: sum(v) / len(v) for k, v in per_stage.items()}
        # with every stage busy, a pool of `workers` actors finishes workers / mean samples a second
        steady = 60 * workers / max(means.values())
        kept = sum(pq.read_metadata(p).num_rows for p in out.glob("part-*.parquet"))
        rows.append(
            (workers, report.processed, kept, wall, report.processed / wall * 60, steady, means)
        )
        print(rows[-1], flush=True)
    ray.shutdown()
    load = os.getloadavg()
    lines = [
        "# Data pipeline speed, CPU, tiny random models",
        "",
        f"`python benchmarks/data_pipeline_speed.py --clips {args.clips}`: local Ray (num_cpus=2), five model-stage",
        "actor pools (caption, detect, cut-out + filters, inpaint, re-pose), the driver writes; 8-frame 128x96 clips,",
        "FLUX at 32x32 with 1 step. `workers` = actors per model stage. Wall time includes starting the actors",
        "(loading the models). 'Bottleneck' = 60 x workers / the slowest stage's mean seconds per sample",
        "(measured inside the actors): the rate once every actor is loaded and busy.",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs shared with other jobs",
        f"(load average at the end {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}: the numbers are noisy).",
        "",
        "| workers | samples | kept | wall s | samples/min (wall) | samples/min (bottleneck) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {w} | {n} | {k} | {t:.1f} | {r:.1f} | {s:.0f} |" for w, n, k, t, r, s, _ in rows]
    stages = list(rows[0][6])
    lines += ["", "Mean seconds per sample in each stage (inside the actor):", ""]
    lines += ["| workers | " + " | ".join(stages) + " |", "|---:|" + "---:|" * len(stages)]
    lines += [
        f"| {r[0]} | " + " | ".join(f"{r[6].get(k, float('nan')):.3f}" for k in stages) + " |"
        for r in rows
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
