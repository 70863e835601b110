"""The same 10-case run under each executor, and the memory a model budget saves, side by side.

Part 1 (wall time): `kaleido-bench run --model collage --suite mini` (10 cases) with CPU metrics
(motion_amplitude, decoupling_hist, face_sim_dlib), from an empty run folder each time, as
  - local: one process;
  - ray-1 / ray-2: `--executor ray --ray-workers 1|2` (a local Ray cluster started by the run,
    its start-up included: that is what a user pays);
  - shards-2: `--shard 0/2` and `--shard 1/2` as two processes at once, the wall of both.
Rounds rotate the order; the table gives the median wall per setting and its ratio to local.

Part 2 (peak memory): `kaleido-bench score` of the same videos with two model groups, CLIP ViT-L/14
(`clip_i_l14`, about 1.2 GB in fp32) and DINOv2 ViT-B/14 + DINO ViT-B/16 (`dino_i`,
`subject_consistency`, about 0.35 GB each), full-size random weights in the real formats, once
with no budget (all groups resident) and once with `--memory-budget 1.3` (GiB: the L/14 group fits
alone, not beside the others), peak RSS of the process from `getrusage`. Values must agree.

Usage: python benchmarks/engine_scaling.py [--rounds 2] [--out results/benchmarks/engine_scaling_cpu.md]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _paths  # noqa: F401  (tests/support on the path)

CLI = [sys.executable, "-m", "kaleido_bench.bench.cli"]
RUN = [
    "run",
    "--model",
    "collage",
    "--suite",
    "mini",
    "--metrics",
    "motion_amplitude,decoupling_hist,face_sim_dlib",
    "-o",
    "num_frames=17",
    "--device",
    "cpu",
]
SETTINGS = {
    "local": [[]],
    "ray-1": [["--executor", "ray", "--ray-workers", "1"]],
    "ray-2": [["--executor", "ray", "--ray-workers", "2"]],
    "shards-2": [["--shard", "0/2"], ["--shard", "1/2"]],
}
MEMORY_METRICS = "clip_i_l14,dino_i,subject_consistency"


def timed_run(root: Path, name: str, env: dict) -> float:
    """Wall seconds of one setting from an empty run folder (all its processes at once)."""
    out = root / f"run-{name}-{time.monotonic_ns()}"
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [*CLI, *RUN, "--out", str(out), *extra],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for extra in SETTINGS[name]
    ]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed ({proc.returncode}): {err[-2000:]}")
    return time.perf_counter() - started


def peak_rss_run(args: list[str], env: dict, cwd: Path) -> tuple[float, float]:
    """(peak RSS in GiB, wall seconds) of one CLI process, from the kernel's accounting of the child."""
    code = (
        "import resource, subprocess, sys, time, json; t = time.perf_counter(); "
        f"r = subprocess.run({[*CLI, *args]!r}, capture_output=True, text=True); "
        "w = time.perf_counter() - t; "
        "print(json.dumps([r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, w, r.stderr[-2000:]]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    returncode, maxrss_kib, wall, err = json.loads(result.stdout.strip().splitlines()[-1])
    if returncode != 0:
        raise SystemExit(f"memory run failed ({returncode}): {err}")
    return maxrss_kib / 2**20, wall


def values(run_dir: Path) -> dict:
    from kaleido_bench.bench.store import ResultStore

    return {(r.case, r.metric): r.value for r in ResultStore(run_dir).records() if r.ok}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    lines = [
        "# Executors and the model-memory budget (this CPU)",
        "",
        f"Machine: {os.cpu_count()} CPU cores, load {os.getloadavg()[0]:.1f} at start. "
        f"Command: `python benchmarks/engine_scaling.py --rounds {args.rounds}`.",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {
            **os.environ,
            "KALEIDO_BENCH_WEIGHTS": str(root / "weights"),
            "HF_HUB_OFFLINE": "1",
            "KALEIDO_BENCH_CACHE": str(root / "cache"),
        }
        timed_run(root, "local", env)  # warm-up: the mini images, caches, imports
        walls: dict[str, list[float]] = {name: [] for name in SETTINGS}
        names = list(SETTINGS)
        for round_index in range(args.rounds):
            for name in names[round_index % len(names) :] + names[: round_index % len(names)]:
                walls[name].append(timed_run(root, name, env))
        local = statistics.median(walls["local"])
        lines += [
            "## Wall time of the same 10-case run (collage + motion_amplitude, decoupling_hist, face_sim_dlib)",
            "",
            "| setting | median wall (s) | runs (s) | local / setting |",
            "|---|--:|---|--:|",
        ]
        for name, runs in walls.items():
            median = statistics.median(runs)
            lines.append(
                f"| {name} | {median:.1f} | {', '.join(f'{r:.1f}' for r in runs)} | {local / median:.2f}x |"
            )
        lines.append("")
        if not args.skip_memory:
            from support.random_weights import write_random_weights

            write_random_weights(root / "weights", MEMORY_METRICS.split(","), size="full", seed=0)
            made = next(p for p in root.glob("run-local-*"))
            score = [
                "score",
                "--videos",
                str(made / "videos"),
                "--suite",
                "mini",
                "--metrics",
                MEMORY_METRICS,
                "--device",
                "cpu",
            ]
            rss_all, wall_all = peak_rss_run([*score, "--out", str(root / "mem-all")], env, root)
            rss_budget, wall_budget = peak_rss_run(
                [*score, "--out", str(root / "mem-budget"), "--memory-budget", "1.3"], env, root
            )
            same = values(root / "mem-all") == values(root / "mem-budget")
            lines += [
                "## Peak memory with two model groups that do not fit together under the budget",
                "",
                f"Metrics {MEMORY_METRICS} on the 10 videos, full-size random weights (real formats).",
                "",
                "| run | peak RSS (GiB) | wall (s) |",
                "|---|--:|--:|",
                f"| no budget (all groups resident) | {rss_all:.2f} | {wall_all:.1f} |",
                f"| `--memory-budget 1.3` (group by group) | {rss_budget:.2f} | {wall_budget:.1f} |",
                "",
                f"Values identical between the two runs: {'yes' if same else 'NO'}.",
                "",
            ]
            if not same:
                print("\n".join(lines))
                raise SystemExit("values differ between the budgeted and the unbudgeted run")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
