"""Kaleido's cross-paired data pipeline (SPEC.md section 1, "Data pipeline"): VLM caption and
subjects, Grounding DINO boxes, SAM cut-outs, quality filters, FLUX Fill / Redux synthesis,
run as a Ray Data pipeline into parquet shards. Model code only: knows nothing of the bench."""

from __future__ import annotations

from typing import Any


def build(*args: Any, **kwargs: Any):
    """`pipeline.build` (imported lazily: Ray and the models load only when a build runs)."""
    from kaleido_bench.kaleido.data.pipeline import build as _build

    return _build(*args, **kwargs)
