"""`kaleido-bench profile`: seconds per video for decoding and for each metric on this machine.

Model loading (`setup`) is timed once and reported apart from the per-video cost, the way a
run pays it, next to the models each metric loaded and their parameter counts. Videos are
matched to cases by file stem; a stem that is not a case of the suite gets a stand-in case
(prompt "", no references) so reference-free metrics still time it. Timing our shared pass
against the official scripts' one-metric-at-a-time way is a benchmark (`benchmarks/scoring_speed.py`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from kaleido_bench.bench.engine import Engine, Job
from kaleido_bench.bench.runner import select_metrics
from kaleido_bench.bench.suites import load_suite
from kaleido_bench.core.cases import Case
from kaleido_bench.core.video import decode_video
from kaleido_bench.metrics.context import ScoringContext

DECODE_STAGE = "decode (PyAV rgb24)"


def profile_videos(
    videos: list[Path],
    *,
    suite: str = "opens2v",
    data_root: Path | None = None,
    metric_names: list[str] | None = None,
    repeat: int = 1,
    device: str = "cpu",
) -> pd.DataFrame:
    """One row per stage ("decode", then each metric): models loaded, setup seconds and mean seconds per video.

    Scored by the engine one metric at a time (each metric's seconds are its own), on videos
    decoded once beforehand (the decode row)."""
    the_suite = load_suite(suite, data_root)
    cases = {case.id: case for case in the_suite.cases}
    metrics, skipped = select_metrics(metric_names or ["available"])
    decoded = {}
    started = time.perf_counter()
    for _ in range(repeat):
        for path in videos:
            decoded[path] = decode_video(path)
    decode_seconds = (time.perf_counter() - started) / (repeat * len(videos))
    first = next(iter(decoded.values()))
    size = {"frames": first.num_frames, "size": f"{first.height}x{first.width}"}
    rows = [
        {
            "stage": DECODE_STAGE,
            "models": "",
            "setup_s": 0.0,
            "s_per_video": decode_seconds,
            **size,
            "note": "",
        }
    ]
    with ScoringContext.create(device) as context:
        engine = Engine(metrics, context, decode=decoded.__getitem__)
        for metric in metrics:
            engine.set_up(metric)
            seconds, notes = 0.0, set()
            jobs = [
                Job(cases.get(path.stem) or Case(path.stem, "", ()), path, [metric.name])
                for _ in range(repeat)
                for path in videos
            ]
            for outcome in engine.score(jobs):
                if outcome.error is not None:
                    raise outcome.error
                seconds += outcome.seconds
                if outcome.result.value is None:
                    notes.add(str(outcome.result.details.get("absent", "absent")))
            rows.append(
                {
                    "stage": metric.name,
                    "models": describe_models(metric),
                    "setup_s": engine.stats.setup[metric.name],
                    "s_per_video": seconds / (repeat * len(videos)),
                    **size,
                    "note": "; ".join(sorted(notes)),
                }
            )
    for name, reason in skipped.items():
        rows.append(
            {
                "stage": name,
                "models": "",
                "setup_s": None,
                "s_per_video": None,
                "frames": None,
                "size": "",
                "note": f"skipped: {reason}",
            }
        )
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame) -> str:
    """A profile table as markdown: seconds to 3 decimals, value differences in 3 significant digits."""
    return table.to_markdown(
        index=False,
        floatfmt=[".3g" if column == "max_abs_diff" else ".3f" for column in table.columns],
    )


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
    files = [
        Path(model.model_file)
        for model in faces.app.models.values()
        if getattr(model, "model_file", None)
    ]
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
