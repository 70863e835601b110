"""Our scoring pass under each overlap setting (`bench/concurrency.py`), same videos, same process.

Answers "does scoring metrics side by side pay on this machine?" and checks that no setting
changes a value. Each setting runs `score_all` from empty caches; by default one untimed warm-up
pass on the first video runs first, so that first-use costs (lazy imports, kernel selection)
do not land on whichever setting comes first.

    python benchmarks/overlap_speed.py --random-weights full --metrics all --workers 1,2
    python benchmarks/overlap_speed.py --device cuda --random-weights full --metrics <list> --workers 1,2,4,8

Settings: `sequential` (no overlap at all) and, per `--workers N`: setups at once, the next video
decoded ahead, N metrics at once per video (`Overlap.for_device(device, N)`).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

from scoring_speed import default_videos, machine, resolve_device, use_random_weights

from kaleido_bench.bench.concurrency import SEQUENTIAL, Overlap
from kaleido_bench.bench.scoring_passes import Clock, compare, describe_overlap, score_all


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", default="available")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--random-weights", default="none", choices=("none", "full"))
    parser.add_argument("--workers", default="1,2", help="comma list of metric workers to time besides `sequential`")
    parser.add_argument("--only", help="comma-separated stems: keep only these of the 5 default videos")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    device = resolve_device(args.device)
    names = args.metrics.split(",")
    settings = [("sequential", SEQUENTIAL)] + [
        (f"{n} metric(s) at once", Overlap.for_device(device, int(n))) for n in args.workers.split(",")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        if args.random_weights == "full":
            use_random_weights(Path(tmp) / "weights", names)
        videos, cases = default_videos(Path(tmp))
        if args.only:
            videos = [path for path in videos if path.stem in args.only.split(",")]
        if not args.no_warmup:
            score_all(videos[:1], cases, names, device, Clock(device))
        rows, reference = [], None
        for label, overlap in settings:
            clock = Clock(device)
            result = score_all(videos, cases, names, device, clock, overlap)
            reference = reference or result
            agreement = compare(result.values, reference.values)
            load = sum(clock.loads) / len(clock.loads)
            rows.append(f"| {label} | {describe_overlap(overlap)} | {result.total:.1f} | {result.total / len(videos):.2f} "
                        f"| {result.setup_wall:.1f} | {result.cpu:.1f} | {reference.total / result.total:.2f}x "
                        f"| {agreement.max_diff:.3g}{'' if agreement.ok else ' DIFFER'} | {load:.2f} |")
            print(rows[-1], flush=True)
    text = "\n".join([
        "# Our scoring pass under each overlap setting",
        "",
        f"Command: `python benchmarks/overlap_speed.py {shlex.join(sys.argv[1:])}`",
        "",
        f"- Device: {machine(device)}",
        f"- Videos: {len(videos)} ({', '.join(p.name for p in videos)}); metrics: {', '.join(reference.score)}",
        f"- Warm-up pass on the first video before timing: {'no' if args.no_warmup else 'yes'}",
        "",
        "| setting | overlap | total s | s / video | setup s (wall) | CPU s | speed-up vs sequential "
        "| max \\|diff\\| vs sequential | mean 1-min load |",
        "|:--|:--|--:|--:|--:|--:|--:|--:|--:|",
        *rows,
    ]) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
