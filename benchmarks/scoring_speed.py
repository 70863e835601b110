"""Our scoring pass vs the one-by-one way, on the same videos, same numbers.

One-by-one is how the official scripts run: each metric on its own, decoding every video again
and loading its model again. Ours: decode each video once, load each model once, share frames.
Prints seconds per video for decode and each metric, the ratio of the two passes, and the
largest difference between their values (must be <= 1e-6).

    python benchmarks/scoring_speed.py --metrics available            # 5 videos: 2 real + 3 collage
    python benchmarks/scoring_speed.py --videos a.mp4 b.mp4 --suite opens2v --metrics motion_amplitude
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import pandas as pd

from kaleido_bench.bench.cases import Case
from kaleido_bench.bench.runner import select_metrics
from kaleido_bench.bench.suites import load_suite
from kaleido_bench.bench.video import decode_video

SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared/opens2v/videos"


def default_videos(workdir: Path) -> tuple[list[Path], dict[str, Case]]:
    """The two real OpenS2V videos plus three `collage` videos of `mini` (so face cases have references)."""
    from kaleido_bench.baselines.base import get_model_class

    mini = load_suite("mini")
    collage = get_model_class("collage")(height=480, width=832, num_frames=49)
    videos, cases = [], {}
    for case in mini.cases[:3]:
        path = workdir / f"{case.id}.mp4"
        collage.generate(case, 0, path)
        videos.append(path)
        cases[case.id] = case
    videos += sorted(SHARED_VIDEOS.glob("*.mp4"))
    return videos, cases


def score_all(videos, cases, metric_names, device):
    """Ours: each video decoded once, each metric set up once."""
    timings = {"decode": 0.0}
    values = {}
    metrics, skipped = select_metrics(metric_names, device)
    for metric in metrics:
        started = time.perf_counter()
        metric.setup()
        timings[f"setup {metric.name}"] = time.perf_counter() - started
    for path in videos:
        started = time.perf_counter()
        video = decode_video(path)
        timings["decode"] += time.perf_counter() - started
        case = cases.get(path.stem, Case(path.stem, "", ()))
        for metric in metrics:
            started = time.perf_counter()
            values[(path.stem, metric.name)] = metric.score(video, case).value
            timings[metric.name] = timings.get(metric.name, 0.0) + time.perf_counter() - started
    return values, timings, [m.name for m in metrics], skipped


def score_one_by_one(videos, cases, metric_names, device):
    """The official scripts' way: per metric, per video: decode again, load the model again."""
    values, seconds = {}, 0.0
    for name in metric_names:
        for path in videos:
            started = time.perf_counter()
            [metric], _ = select_metrics([name], device)
            metric.setup()
            video = decode_video(path)
            values[(path.stem, name)] = metric.score(video, cases.get(path.stem, Case(path.stem, "", ()))).value
            seconds += time.perf_counter() - started
    return values, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", nargs="*", type=Path)
    parser.add_argument("--suite", default="mini")
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--metrics", default="available")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, help="also write the table (markdown) here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.videos:
            suite = load_suite(args.suite, args.data_root)
            videos, cases = args.videos, {c.id: c for c in suite.cases}
        else:
            videos, cases = default_videos(Path(tmp))
        names = args.metrics.split(",")
        started = time.perf_counter()
        ours, timings, used, skipped = score_all(videos, cases, names, args.device)
        ours_seconds = time.perf_counter() - started
        naive, naive_seconds = score_one_by_one(videos, cases, used, args.device)
        first = decode_video(videos[0])
    diffs = [abs(a - b) for key, a in ours.items() if (b := naive[key]) is not None and a is not None]
    same_absent = all((ours[k] is None) == (naive[k] is None) for k in ours)
    rows = [{"stage": k, "seconds_per_video": v / len(videos)} for k, v in timings.items() if not k.startswith("setup")]
    rows += [{"stage": k, "seconds_once": v} for k, v in timings.items() if k.startswith("setup")]
    table = pd.DataFrame(rows)
    lines = [
        f"videos: {len(videos)} ({first.num_frames} frames, {first.height}x{first.width} first); metrics: {', '.join(used)}",
        f"skipped (weights missing): {', '.join(skipped) or 'none'}",
        table.to_markdown(index=False, floatfmt=".3f"),
        "",
        f"ours (decode once, load once): {ours_seconds:.2f} s; one-by-one: {naive_seconds:.2f} s; "
        f"ratio {naive_seconds / ours_seconds:.2f}x",
        f"max |ours - one-by-one| = {max(diffs, default=0.0):.3g} over {len(diffs)} values; absent values agree: {same_absent}",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if max(diffs, default=0.0) > 1e-6 or not same_absent or any(math.isnan(d) for d in diffs):
        raise SystemExit("values differ between the two passes")


if __name__ == "__main__":
    main()
