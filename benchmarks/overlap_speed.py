"""Our scoring pass under each overlap setting (`bench/concurrency.py`), same videos, same process.

Answers "does scoring metrics side by side pay on this machine?" and checks that no setting
changes a value. Each setting runs `score_all` from empty caches; by default one untimed warm-up
pass on the first video runs first, so that first-use costs (lazy imports, kernel selection)
do not land on whichever setting comes first. That is not enough on a shared CPU: the first
timed setting still tends to be the slowest, so `--repeat N` runs the settings N times, each
round in a rotated order, and reports each setting's median.

    python benchmarks/overlap_speed.py --random-weights full --metrics all --workers 1,2
    python benchmarks/overlap_speed.py --device cuda --random-weights full --metrics <list> --workers 1,2,4,8

Settings: `sequential` (no overlap at all) and, per `--workers N`: the next video decoded ahead,
N metrics at once per video (`Overlap.for_device(device, N)`).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

import _paths  # noqa: F401  (tests/support on the path)
from one_by_one import Clock, compare, describe_overlap, score_all
from scoring_speed import default_videos, machine, resolve_device, use_random_weights

from kaleido_bench.bench.concurrency import SEQUENTIAL, Overlap


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", default="available")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--random-weights", default="none", choices=("none", "full"))
    parser.add_argument(
        "--workers", default="1,2", help="comma list of metric workers to time besides `sequential`"
    )
    parser.add_argument(
        "--only", help="comma-separated stems: keep only these of the 5 default videos"
    )
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds, each in a rotated order; medians reported"
    )
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    device = resolve_device(args.device)
    names = args.metrics.split(",")
    settings = [("sequential", SEQUENTIAL)] + [
        (f"{n} metric(s) at once", Overlap.for_device(device, int(n)))
        for n in args.workers.split(",")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        if args.random_weights == "full":
            use_random_weights(Path(tmp) / "weights", names)
        videos, cases = default_videos(Path(tmp))
        if args.only:
            videos = [path for path in videos if path.stem in args.only.split(",")]
        if not args.no_warmup:
            score_all(videos[:1], cases, names, device, Clock(device))
        runs: dict[str, list] = {label: [] for label, _ in settings}
        reference = None
        for round_ in range(args.repeat):
            shift = round_ % len(settings)
            for label, overlap in settings[shift:] + settings[:shift]:
                clock = Clock(device)
                result = score_all(videos, cases, names, device, clock, overlap)
                reference = reference or result
                load = sum(clock.loads) / len(clock.loads)
                runs[label].append((result, load))
                print(
                    f"round {round_ + 1}: {label}: {result.total:.1f} s, load {load:.2f}",
                    flush=True,
                )
    rows, differ = [], []
    base = statistics.median(r.total for r, _ in runs["sequential"])
    for label, overlap in settings:
        results = [r for r, _ in runs[label]]
        total = statistics.median(r.total for r in results)
        worst = max(compare(r.values, reference.values).max_diff for r in results)
        ok = all(compare(r.values, reference.values).ok for r in results)
        if not ok:
            differ.append(label)
        rows.append(
            f"| {label} | {describe_overlap(overlap)} | {total:.1f} ({', '.join(f'{r.total:.0f}' for r in results)}) "
            f"| {total / len(videos):.2f} | {statistics.median(sum(r.setup.values()) for r in results):.1f} "
            f"| {statistics.median(r.cpu for r in results):.1f} | {base / total:.2f}x "
            f"| {worst:.3g}{'' if ok else ' DIFFER'} | {statistics.median(ld for _, ld in runs[label]):.2f} |"
        )
    text = (
        "\n".join(
            [
                "# Our scoring pass under each overlap setting",
                "",
                f"Command: `python benchmarks/overlap_speed.py {shlex.join(sys.argv[1:])}`",
                "",
                f"- Device: {machine(device)}",
                f"- Videos: {len(videos)} ({', '.join(p.name for p in videos)}); metrics: {', '.join(reference.score)}",
                f"- Warm-up pass on the first video before timing: {'no' if args.no_warmup else 'yes'}; "
                f"rounds: {args.repeat}, each in a rotated order (medians; each round's total in brackets)",
                "",
                "| setting | overlap | total s, median (rounds) | s / video | setup s (wall) | CPU s | speed-up vs sequential "
                "| max \\|diff\\| vs sequential | 1-min load |",
                "|:--|:--|--:|--:|--:|--:|--:|--:|--:|",
                *rows,
            ]
        )
        + "\n"
    )
    print(text)
    if args.out:
        args.out.write_text(text)
    if differ:
        raise SystemExit(f"values differ from the sequential pass under: {', '.join(differ)}")


if __name__ == "__main__":
    main()
