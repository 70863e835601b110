"""Two ways to score the same videos, timed, and whether they agree.

`score_all` is ours: each metric set up once, each video decoded once, frames and embeddings
shared between metrics. `score_one_by_one` models the official scripts: each metric runs on its
own after every loaded model and cache is forgotten; it loads its model once, then for every
video decodes it again and embeds the references again. Both start from empty caches, so the
ratio of their totals is what sharing buys; `compare` checks that sharing changed no value.
Used by `kaleido-bench profile --one-by-one` and `benchmarks/scoring_speed.py`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaleido_bench.bench.cases import Case
from kaleido_bench.bench.concurrency import SEQUENTIAL, Overlap
from kaleido_bench.bench.engine import Engine, Job
from kaleido_bench.bench.runner import select_metrics
from kaleido_bench.metrics.context import ScoringContext

TOLERANCE = 1e-6  # largest |ours - one-by-one| accepted: sharing must not change a value

Values = dict[tuple[str, str], float | None]  # (video stem, metric) -> value, None when absent


def case_of(path: Path, cases: dict[str, Case]) -> Case:
    """The suite's case of a video (key = file stem), else an empty case (no prompt, no reference)."""
    return cases.get(path.stem, Case(path.stem, "", ()))


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


# ----------------------------------------------------------------------------- the two passes


@dataclass
class PassResult:
    """Values and seconds of one pass; `decode` per metric for one-by-one, under "decode" for ours."""

    values: Values = field(default_factory=dict)
    setup: dict[str, float] = field(default_factory=dict)
    decode: dict[str, float] = field(default_factory=dict)
    score: dict[str, float] = field(default_factory=dict)
    total: float = 0.0
    overlap: Overlap = SEQUENTIAL
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


def score_all(videos: list[Path], cases: dict[str, Case], names: list[str], device: str,
              clock: Clock, overlap: Overlap = SEQUENTIAL, options: dict[str, dict] | None = None) -> PassResult:
    """Ours: the scoring engine (`engine.py`) from a fresh context: each metric set up once, each
    video decoded once and shared by every metric, with the runner's overlap (`concurrency.py`).
    Per-metric seconds then overlap; `total` is the wall."""
    out = PassResult(overlap=overlap)
    started, cpu_started = clock.now(), time.process_time()
    metrics, out.skipped = select_metrics(names, options)
    with ScoringContext.create(device) as context:
        engine = Engine(metrics, context, overlap=overlap, clock=clock.now)
        engine.set_up_all(metrics)
        out.setup = {metric.name: engine.stats.setup.get(metric.name, 0.0) for metric in metrics}
        out.score = {metric.name: 0.0 for metric in metrics}
        jobs = [Job(case_of(path, cases), path, [m.name for m in metrics]) for path in videos]
        for outcome in engine.score(jobs):
            if outcome.error is not None:
                raise outcome.error
            clock.loads.append(os.getloadavg()[0])
            name = outcome.metric.name
            out.values[(outcome.case.id, name)] = outcome.result.value
            out.score[name] += outcome.seconds
            out.count_faces(name, outcome.result.details)
        out.decode["decode"] = engine.stats.decode
        out.total = clock.now() - started
        out.cpu = time.process_time() - cpu_started
        out.models = {metric.name: describe_models(metric) for metric in metrics}
    return out


def score_one_by_one(videos: list[Path], cases: dict[str, Case], names: list[str], device: str,
                     clock: Clock, options: dict[str, dict] | None = None) -> PassResult:
    """The official scripts' way: per metric a fresh context (nothing shared), its model loaded once;
    per video decode and references again (the context's cache cleared). `names` are plain metric
    names (pass `list(ours.score)` after `score_all`). One metric at a time, so the engine's
    sharing and overlap are deliberately not used here."""
    from kaleido_bench.bench.video import decode_video

    out = PassResult()
    for name in names:
        started, cpu_started = clock.now(), time.process_time()
        [metric], _ = select_metrics([name], options)
        with ScoringContext.create(device) as context:
            scoped = context.scoped(name)
            metric.setup(scoped)
            out.setup[name] = clock.now() - started
            out.decode[name] = out.score[name] = 0.0
            for path in videos:
                cpu_before = time.process_time()
                context.cache.clear()
                out.forget_cpu += time.process_time() - cpu_before
                video, seconds = clock.timed(lambda p=path: decode_video(p))
                out.decode[name] += seconds
                result, seconds = clock.timed(lambda m=metric, v=video, p=path, c=scoped: m.score(v, case_of(p, cases), c))
                out.values[(path.stem, name)] = result.value
                out.score[name] += seconds
        out.total += out.setup[name] + out.decode[name] + out.score[name]
        out.cpu += time.process_time() - cpu_started - out.forget_cpu
        out.forget_cpu = 0.0
        del metric
    return out


def describe_overlap(overlap: Overlap) -> str:
    """How ours overlapped its work, in words for the reports."""
    if overlap == SEQUENTIAL:
        return "none: decodes and metrics one after another"
    ahead = "the next video decoded ahead" if overlap.decode_ahead else "no decode ahead"
    return (f"{ahead}, {overlap.metric_workers} metric(s) at once per video"
            + ("; per-metric seconds overlap, the total is the wall clock" if overlap.metric_workers > 1 else ""))


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
        return f"{_backbone_name(value.id)} {_millions(value.model)}"
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
    if kind == "open_clip-text":
        return f"open_clip {rest.split(':', 1)[0]} text tower"
    names = {
        "clip-tower": f"CLIP image tower (transformers CLIPVisionModelWithProjection, weights sha256 {rest[:8]})",
        "dino-v1": "DINO v1 ViT",
    }
    return names.get(kind, kind)


def _millions(module: Any) -> str:
    return f"{sum(p.numel() for p in module.parameters()) / 1e6:.1f}M"


# ----------------------------------------------------------------------------- comparison


@dataclass
class Agreement:
    """How far the two passes' values are apart; `ok` when within TOLERANCE and absent in the same places."""

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
