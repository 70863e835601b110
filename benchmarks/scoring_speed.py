"""Our scoring pass vs the one-by-one way, on the same videos, same numbers.

One-by-one models the official scripts: each metric runs on its own, after every loaded model
and cache is forgotten; it loads its model once, then for every video decodes it again and
embeds the references again (the official scripts embed the reference per video). Ours: each
model loaded once, each video decoded once, frames and embeddings shared between metrics, with
the runner's overlap (`bench/concurrency.py`: the next video decoded ahead, `--metric-workers`
metrics at once per video; `--sequential` for neither).
Ours runs first (`--order one-by-one-first` swaps them), both start from empty caches. The report gives, per metric, setup and seconds
per video of both passes with the backbones used and their parameter counts, the ratio of the
totals, and the largest difference between the two passes' values (must be <= 1e-6, absent
values must agree; the script exits non-zero otherwise).

    python benchmarks/scoring_speed.py --metrics available            # 5 videos: 2 real + 3 collage
    python benchmarks/scoring_speed.py --random-weights full --metrics clip_i,dino_i --out report.md
    python benchmarks/scoring_speed.py --only singleface_astronaut,faceobj_14 --metrics clip_i  # 2 of the 5
    python benchmarks/scoring_speed.py --videos a.mp4 b.mp4 --suite opens2v --metrics motion_amplitude

`--random-weights full` writes full-size RANDOM weights in the real formats
(`metrics/random_weights.py`) into a temporary folder and points `KALEIDO_BENCH_WEIGHTS` at it:
right for timing, meaningless as scores. Its buffalo_l face pack is synthetic and tiny.

The two passes, the model labels and the comparison live in `kaleido_bench.bench.scoring_passes`
(also behind `kaleido-bench profile --one-by-one`); this script adds the default videos, random
weights and the markdown report.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import _paths  # noqa: F401  (tests/support on the path)
from one_by_one import (
    TOLERANCE,
    Agreement,
    Clock,
    PassResult,
    compare,
    describe_overlap,
    score_all,
    score_one_by_one,
)

from kaleido_bench.bench.concurrency import SEQUENTIAL, Overlap
from kaleido_bench.bench.runner import select_metrics
from kaleido_bench.bench.suites import load_suite
from kaleido_bench.core.cases import Case
from kaleido_bench.core.video import DecodedVideo, decode_video
from kaleido_bench.metrics.weights import WEIGHTS_ENV

SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared/opens2v/videos"


# ----------------------------------------------------------------------------- inputs


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


def expand_names(names: list[str]) -> list[str]:
    """`all` / `available` -> every registered metric (what the random weights must cover)."""
    from kaleido_bench.metrics.base import load_builtin_metrics

    registry = load_builtin_metrics()
    expanded: list[str] = []
    for name in names:
        for item in registry.names() if name in {"all", "available"} else [name]:
            if item not in expanded:
                expanded.append(item)
    return expanded


def use_random_weights(folder: Path, names: list[str]) -> float:
    """Write full-size random weights for `names` into `folder`, point the resolver at it; seconds taken."""
    from support.random_weights import write_random_weights

    started = time.perf_counter()
    write_random_weights(folder, expand_names(names), size="full", seed=0)
    os.environ[WEIGHTS_ENV] = str(folder)
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- report


def machine(device: str) -> str:
    """CPU model and threads, or the GPU's name; with the torch version."""
    import torch

    if device.startswith("cuda"):
        where = f"GPU {torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    else:
        where = f"CPU {_cpu_model()}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}"
    return f"{where}; torch {torch.__version__}; Python {platform.python_version()}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


@dataclass
class VideoInfo:
    name: str
    frames: int
    height: int
    width: int
    case: str


def video_info(videos: list[Path], cases: dict[str, Case]) -> list[VideoInfo]:
    rows = []
    for path in videos:
        video: DecodedVideo = decode_video(path)
        where = (
            "suite case" if path.stem in cases else "no case in the suite: no prompt, no reference"
        )
        rows.append(VideoInfo(path.name, video.num_frames, video.height, video.width, where))
    return rows


def metric_table(ours: PassResult, naive: PassResult, count: int) -> list[str]:
    """One markdown row per metric, then decode and the totals."""
    lines = [
        "| metric | backbone(s) used, parameters | ours: setup s | ours: s / video | one-by-one: s / video (setup + decode + score) | one-by-one / ours |",
        "|:--|:--|--:|--:|--:|--:|",
    ]
    for name in ours.score:
        mine = (ours.setup[name] + ours.score[name]) / count
        theirs = (naive.setup[name] + naive.decode[name] + naive.score[name]) / count
        lines.append(
            f"| {name} | {ours.models.get(name, '')} | {ours.setup[name]:.2f} | {ours.score[name] / count:.2f} "
            f"| {theirs:.2f} | {_ratio(theirs, mine)} |"
        )
    decode = ours.decode["decode"] / count
    naive_decode = sum(naive.decode.values()) / count
    lines.append(
        f"| decode (ours: once per video) | PyAV rgb24 | | {decode:.2f} | {naive_decode:.2f} (all metrics' decodes) | |"
    )
    lines.append(
        f"| **total** | | {sum(ours.setup.values()):.2f} | {ours.total / count:.2f} (setup included) "
        f"| {naive.total / count:.2f} | **{naive.total / ours.total:.2f}x** |"
    )
    return lines


def _ratio(theirs: float, mine: float) -> str:
    """theirs / mine, or n/a when ours is next to nothing (an absent value, a shared result)."""
    return f"{theirs / mine:.2f}x" if mine >= 0.01 else "n/a (ours ~0)"


def report(
    ours: PassResult,
    naive: PassResult,
    agreement: Agreement,
    videos: list[VideoInfo],
    device: str,
    weights_note: str,
    clock: Clock,
    videos_note: str = "",
    order: str = "ours-first",
) -> str:
    count = len(videos)
    ours_decode = ours.decode["decode"]
    ours_score = sum(ours.score.values())
    faces = ", ".join(f"{name} {hit} of {total}" for name, (hit, total) in ours.face_frames.items())
    loads = clock.loads or [os.getloadavg()[0]]
    lines = [
        "# Scoring speed: our pass vs one metric at a time",
        "",
        f"Command: `python benchmarks/scoring_speed.py {shlex.join(sys.argv[1:])}`",
        "",
        f"- Device: {machine(device)}",
        f"- Weights: {weights_note}",
        f"- Videos ({count}{videos_note}): "
        + "; ".join(
            f"{v.name} ({v.frames} frames, {v.height}x{v.width}, {v.case})" for v in videos
        ),
        f"- Skipped (weights missing): {', '.join(ours.skipped) or 'none'}",
        f"- Order: {'ours' if order == 'ours-first' else 'one-by-one'} ran first, in the same process",
        f"- Overlap in ours: {describe_overlap(ours.overlap)}",
        f"- Sampled frames in which a face was found and embedded (ours): {faces or 'no face metric scored a video'}",
        f"- 1-minute load average during the run: min {min(loads):.2f}, mean {sum(loads) / len(loads):.2f}, "
        f"max {max(loads):.2f} over {len(loads)} timed steps ({os.cpu_count()} cores; above that, other "
        "processes were competing for the CPU and timings are inflated)",
        "",
        *metric_table(ours, naive, count),
        "",
        f"- Ours: {ours.total:.1f} s = setup {sum(ours.setup.values()):.1f} + decode {ours_decode:.1f} (waited for) "
        f"+ scoring {ours.total - sum(ours.setup.values()) - ours_decode:.1f} "
        f"(wall; {ours_score:.1f} summed over metrics).",
        f"- One-by-one: {naive.total:.1f} s = setup {sum(naive.setup.values()):.1f} + decode {sum(naive.decode.values()):.1f} "
        f"+ scoring {sum(naive.score.values()):.1f}.",
        f"- **Ratio one-by-one / ours: {naive.total / ours.total:.2f}x** (target 3x), wall clock.",
        f"- In CPU seconds of this process (all threads; little moved by other processes' load): ours "
        f"{ours.cpu:.1f}, one-by-one {naive.cpu:.1f}, ratio {naive.cpu / ours.cpu:.2f}x.",
        f"- Values: max |ours - one-by-one| = {agreement.max_diff:.3g} over {agreement.compared} values "
        f"(tolerance {TOLERANCE:g}); absent in both: {agreement.absent_both}; absent in one pass only: "
        f"{len(agreement.absent_mismatch)}.",
        "",
        "How to read it: 'ours: s / video' is each metric's scoring time in the shared pass; a computation "
        "several metrics share (frames, embeddings, face detections) is charged to the first metric, in the "
        "order given, that asks for it. One-by-one forgets every model and cache before each metric, loads its "
        "model once, and decodes each video and embeds its references again per video. "
        "'one-by-one / ours' per metric compares one-by-one's setup + decode + score with ours' setup + score "
        "(ours decodes once for all, the decode row). Weight files are read from the page cache in both passes.",
    ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", nargs="*", type=Path)
    parser.add_argument(
        "--only", help="comma-separated stems: keep only these of the default videos"
    )
    parser.add_argument("--suite", default="mini")
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--metrics", default="available")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument(
        "--random-weights",
        default="none",
        choices=("none", "full"),
        help="full: time with full-size random weights in the real formats (temp folder)",
    )
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    parser.add_argument(
        "--metric-workers",
        type=int,
        help="ours: metrics at once per video (default: 4 on a GPU, 1 on a CPU)",
    )
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="ours without any overlap: setups, decodes and metrics one after another",
    )
    parser.add_argument(
        "--order",
        default="ours-first",
        choices=("ours-first", "one-by-one-first"),
        help="which pass runs first in this process (the second may find the process warmer)",
    )
    return parser.parse_args()


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def main() -> None:
    args = parse_args()
    device = resolve_device(args.device)
    clock = Clock(device)
    names = args.metrics.split(",")
    overlap = SEQUENTIAL if args.sequential else Overlap.for_device(device, args.metric_workers)
    with tempfile.TemporaryDirectory() as tmp:
        weights_note = "the resolver's (real files where present)"
        if args.random_weights == "full":
            seconds = use_random_weights(Path(tmp) / "weights", names)
            weights_note = (
                f"FULL-SIZE RANDOM weights in the real on-disk formats (metrics/random_weights.py, written in "
                f"{seconds:.0f} s, not counted); values are meaningless, timings are those of the real sizes, "
                "EXCEPT the buffalo_l face pack: synthetic tiny ONNX graphs, so face detection / ArcFace time "
                "is NOT representative (CurricularFace IR-101 is full size)"
            )
        if args.videos:
            suite = load_suite(args.suite, args.data_root)
            videos, cases = list(args.videos), {c.id: c for c in suite.cases}
        else:
            videos, cases = default_videos(Path(tmp))
            if args.only:
                keep = args.only.split(",")
                videos = [path for path in videos if path.stem in keep]
        infos = video_info(videos, cases)
        if args.order == "ours-first":
            ours = score_all(videos, cases, names, device, clock, overlap)
            naive = score_one_by_one(videos, cases, list(ours.score), device, clock)
        else:
            selected, _ = select_metrics(names)
            run_names = [metric.name for metric in selected]
            del selected
            naive = score_one_by_one(videos, cases, run_names, device, clock)
            ours = score_all(videos, cases, names, device, clock, overlap)
    agreement = compare(ours.values, naive.values)
    subset = (
        "; a subset of the 5 default videos, chosen with --only"
        if args.only and not args.videos
        else ""
    )
    text = report(ours, naive, agreement, infos, device, weights_note, clock, subset, args.order)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    if not agreement.ok:
        raise SystemExit(f"values differ between the two passes: {agreement}")


if __name__ == "__main__":
    main()
