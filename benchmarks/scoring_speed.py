"""Our scoring pass vs the one-by-one way, on the same videos, same numbers.

One-by-one models the official scripts: each metric runs on its own, after every loaded model
and cache is forgotten; it loads its model once, then for every video decodes it again and
embeds the references again (the official scripts embed the reference per video). Ours: each
model loaded once, each video decoded once, frames and embeddings shared between metrics.
Ours runs first, both start from empty caches. The report gives, per metric, setup and seconds
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
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaleido_bench.bench.cases import Case
from kaleido_bench.bench.runner import select_metrics
from kaleido_bench.bench.suites import load_suite
from kaleido_bench.bench.video import DecodedVideo, decode_video
from kaleido_bench.metrics.weights import WEIGHTS_ENV

SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared/opens2v/videos"
TOLERANCE = 1e-6

Values = dict[tuple[str, str], float | None]


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


def case_of(path: Path, cases: dict[str, Case]) -> Case:
    """The suite's case of a video (key = file stem), else an empty case (no prompt, no reference)."""
    return cases.get(path.stem, Case(path.stem, "", ()))


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
    from kaleido_bench.metrics.random_weights import write_random_weights

    started = time.perf_counter()
    write_random_weights(folder, expand_names(names), size="full", seed=0)
    os.environ[WEIGHTS_ENV] = str(folder)
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- clocks and caches


class Clock:
    """`perf_counter` that first waits for queued CUDA work, so GPU time lands where it was spent."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.loads: list[float] = []  # 1-minute load average at each timed step (others share the CPU)

    def now(self) -> float:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
        return time.perf_counter()

    def timed(self, fn: Callable[[], Any]) -> tuple[Any, float]:
        self.loads.append(os.getloadavg()[0])
        started = self.now()
        result = fn()
        return result, self.now() - started


def forget_references() -> None:
    """Drop every per-reference result: embeddings, face searches, GrabCut splits (all in the shared cache)."""
    from kaleido_bench.metrics.embedding_cache import shared_cache

    shared_cache().clear()


def forget_models() -> None:
    """Forget every loaded backbone, the shared buffalo_l apps and all reference caches."""
    from kaleido_bench.metrics import backbones

    forget_references()
    backbones.clear_loaded()
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- the two passes


@dataclass
class PassResult:
    """Values and seconds of one pass; `decode` per metric for one-by-one, under "decode" for ours."""

    values: Values = field(default_factory=dict)
    setup: dict[str, float] = field(default_factory=dict)
    decode: dict[str, float] = field(default_factory=dict)
    score: dict[str, float] = field(default_factory=dict)
    total: float = 0.0
    cpu: float = 0.0  # CPU seconds of this process (all threads): barely moved by other processes' load
    forget_cpu: float = 0.0  # one-by-one: CPU seconds spent clearing caches (not counted)
    models: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    face_frames: dict[str, list[int]] = field(default_factory=dict)  # metric -> [frames with a face, sampled]

    def count_faces(self, name: str, details: dict) -> None:
        """Tally how many sampled frames a face metric actually embedded (its model's real workload)."""
        if "frames_with_face" in details:
            tally = self.face_frames.setdefault(name, [0, 0])
            tally[0] += int(details["frames_with_face"])
            tally[1] += int(details.get("frames_sampled", 0))


def score_all(videos: list[Path], cases: dict[str, Case], names: list[str], device: str, clock: Clock) -> PassResult:
    """Ours: each metric set up once, each video decoded once and shared by every metric."""
    forget_models()
    out = PassResult()
    started, cpu_started = clock.now(), time.process_time()
    metrics, out.skipped = select_metrics(names, device)
    for metric in metrics:
        _, out.setup[metric.name] = clock.timed(metric.setup)
        out.score[metric.name] = 0.0
    out.decode["decode"] = 0.0
    for path in videos:
        video, seconds = clock.timed(lambda p=path: decode_video(p))
        out.decode["decode"] += seconds
        for metric in metrics:
            result, seconds = clock.timed(lambda m=metric, v=video, p=path: m.score(v, case_of(p, cases)))
            out.values[(path.stem, metric.name)] = result.value
            out.score[metric.name] += seconds
            out.count_faces(metric.name, result.details)
    out.total = clock.now() - started
    out.cpu = time.process_time() - cpu_started
    out.models = {metric.name: describe_models(metric) for metric in metrics}
    return out


def score_one_by_one(videos: list[Path], cases: dict[str, Case], names: list[str], device: str, clock: Clock) -> PassResult:
    """The official scripts' way: per metric from scratch, its model loaded once; per video decode and references again."""
    out = PassResult()
    for name in names:
        forget_models()
        started, cpu_started = clock.now(), time.process_time()
        [metric], _ = select_metrics([name], device)
        metric.setup()
        out.setup[name] = clock.now() - started
        out.decode[name] = out.score[name] = 0.0
        for path in videos:
            cpu_before = time.process_time()
            forget_references()
            out.forget_cpu += time.process_time() - cpu_before
            video, seconds = clock.timed(lambda p=path: decode_video(p))
            out.decode[name] += seconds
            result, seconds = clock.timed(lambda m=metric, v=video, p=path: m.score(v, case_of(p, cases)))
            out.values[(path.stem, name)] = result.value
            out.score[name] += seconds
        out.total += out.setup[name] + out.decode[name] + out.score[name]
        out.cpu += time.process_time() - cpu_started - out.forget_cpu
        out.forget_cpu = 0.0
        del metric
    forget_models()
    return out


# ----------------------------------------------------------------------------- model sizes


def describe_models(metric: Any) -> str:
    """The models a set-up metric holds, each with its parameter count read off the loaded object."""
    labels = [label for attr, value in vars(metric).items() if (label := _model_label(attr, value))]
    return "; ".join(labels) or "none (no learned weights)"


def _model_label(attr: str, value: Any) -> str | None:
    from kaleido_bench.metrics.backbones import Backbone
    from kaleido_bench.metrics.face_sim_arc import InsightFaceFaces

    if isinstance(getattr(value, "backbone", None), Backbone):  # decoupling's DINOv2 patch backend
        value = value.backbone
    if isinstance(value, Backbone):
        role = " (text tower used)" if attr == "text_backbone" else ""
        return f"{_backbone_name(value.id)}{role} {_millions(value.model)}"
    if isinstance(value, InsightFaceFaces):
        return _face_pack_label(value)
    if "dlib" in type(value).__module__:
        return f"dlib {type(value).__name__} (packaged)"
    if hasattr(value, "parameters") and callable(value.parameters):
        name = {"head": "aesthetic MLP head"}.get(attr, type(value).__name__)
        return f"{name} {_millions(value)}"
    return None


def _face_pack_label(faces: Any) -> str:
    """buffalo_l's ONNX files and their size; a pack far below the real ~190 MB is the synthetic one."""
    files = [Path(model.model_file) for model in faces.app.models.values() if getattr(model, "model_file", None)]
    megabytes = sum(f.stat().st_size for f in files if f.is_file()) / 1e6
    kind = "SYNTHETIC tiny graphs, not representative" if megabytes < 10 else "ONNX"
    return f"insightface buffalo_l {'+'.join(f.name for f in files)} ({megabytes:.2f} MB, {kind})"


def _backbone_name(ident: str) -> str:
    kind, _, rest = ident.partition(":")
    if kind in {"open_clip", "timm"}:
        return f"{kind} {rest.split(':', 1)[0]}"
    names = {
        "clip-tower": f"CLIP image tower (transformers CLIPVisionModelWithProjection, weights sha256 {rest[:8]})",
        "dino-v1": "DINO v1 ViT",
    }
    return names.get(kind, kind)


def _millions(module: Any) -> str:
    return f"{sum(p.numel() for p in module.parameters()) / 1e6:.1f}M"


# ----------------------------------------------------------------------------- comparison and report


@dataclass
class Agreement:
    max_diff: float
    compared: int
    absent_both: int
    absent_mismatch: list[tuple[str, str]]

    @property
    def ok(self) -> bool:
        return self.max_diff <= TOLERANCE and not self.absent_mismatch and not math.isnan(self.max_diff)


def compare(ours: Values, naive: Values) -> Agreement:
    """Largest |ours - one-by-one| over values both have; keys where only one is absent."""
    diffs, both, mismatch = [], 0, []
    for key, a in ours.items():
        b = naive.get(key)
        if a is None and b is None:
            both += 1
        elif a is None or b is None:
            mismatch.append(key)
        else:
            diffs.append(abs(a - b))
    worst = max(diffs, default=0.0)
    if any(math.isnan(d) for d in diffs):
        worst = math.nan
    return Agreement(worst, len(diffs), both, mismatch)


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
        where = "suite case" if path.stem in cases else "no case in the suite: no prompt, no reference"
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
    lines.append(f"| decode (ours: once per video) | PyAV rgb24 | | {decode:.2f} | {naive_decode:.2f} (all metrics' decodes) | |")
    lines.append(
        f"| **total** | | {sum(ours.setup.values()):.2f} | {ours.total / count:.2f} (setup included) "
        f"| {naive.total / count:.2f} | **{naive.total / ours.total:.2f}x** |"
    )
    return lines


def _ratio(theirs: float, mine: float) -> str:
    """theirs / mine, or n/a when ours is next to nothing (an absent value, a shared result)."""
    return f"{theirs / mine:.2f}x" if mine >= 0.01 else "n/a (ours ~0)"


def report(ours: PassResult, naive: PassResult, agreement: Agreement, videos: list[VideoInfo],
           device: str, weights_note: str, clock: Clock, videos_note: str = "") -> str:
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
        f"- Videos ({count}{videos_note}): " + "; ".join(f"{v.name} ({v.frames} frames, {v.height}x{v.width}, {v.case})" for v in videos),
        f"- Skipped (weights missing): {', '.join(ours.skipped) or 'none'}",
        f"- Sampled frames in which a face was found and embedded (ours): {faces or 'no face metric scored a video'}",
        f"- 1-minute load average during the run: min {min(loads):.2f}, mean {sum(loads) / len(loads):.2f}, "
        f"max {max(loads):.2f} over {len(loads)} timed steps ({os.cpu_count()} cores; above that, other "
        "processes were competing for the CPU and timings are inflated)",
        "",
        *metric_table(ours, naive, count),
        "",
        f"- Ours: {ours.total:.1f} s = setup {sum(ours.setup.values()):.1f} + decode {ours_decode:.1f} + scoring {ours_score:.1f}.",
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
    parser.add_argument("--only", help="comma-separated stems: keep only these of the default videos")
    parser.add_argument("--suite", default="mini")
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--metrics", default="available")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--random-weights", default="none", choices=("none", "full"),
                        help="full: time with full-size random weights in the real formats (temp folder)")
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
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
        ours = score_all(videos, cases, names, device, clock)
        naive = score_one_by_one(videos, cases, list(ours.score), device, clock)
    agreement = compare(ours.values, naive.values)
    subset = "; a subset of the 5 default videos, chosen with --only" if args.only and not args.videos else ""
    text = report(ours, naive, agreement, infos, device, weights_note, clock, subset)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    if not agreement.ok:
        raise SystemExit(f"values differ between the two passes: {agreement}")


if __name__ == "__main__":
    main()
