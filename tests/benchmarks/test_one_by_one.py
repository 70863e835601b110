"""The benchmarks' two scoring passes (benchmarks/one_by_one.py): ours through the engine, and the
official scripts' one-metric-at-a-time way; same values, and a disagreement is reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import one_by_one
import pytest
from one_by_one import Clock, compare, profile_one_by_one, score_all, score_one_by_one

from kaleido_bench.bench.suites import load_suite
from kaleido_bench.core.video import write_video

METRICS = ["motion_amplitude", "decoupling_hist"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    paths = []
    for stem in ("singleobj_cat", "no_case"):
        base = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
        frames = np.stack([np.roll(base, 2 * t, axis=1) for t in range(12)])  # a moving texture
        paths.append(write_video(folder / f"{stem}.mp4", frames, 8.0))
    return paths


@pytest.fixture(scope="module")
def cases() -> dict:
    return {case.id: case for case in load_suite("mini").cases}


def test_both_passes_give_the_same_values(videos, cases):
    clock = Clock("cpu")
    ours = score_all(videos, cases, METRICS, "cpu", clock)
    naive = score_one_by_one(videos, cases, list(ours.score), "cpu", clock)
    assert set(ours.values) == set(naive.values) == {(p.stem, m) for p in videos for m in METRICS}
    assert ours.values[("singleobj_cat", "decoupling_hist")] is not None  # the reference was used
    assert ours.values[("no_case", "decoupling_hist")] is None
    agreement = compare(ours.values, naive.values)
    assert agreement.ok and agreement.max_diff == 0.0
    assert (agreement.compared, agreement.absent_both, agreement.absent_mismatch) == (3, 1, [])
    assert ours.models == {m: "none (no learned weights)" for m in METRICS}
    assert set(naive.decode) == set(METRICS) and list(ours.decode) == ["decode"]


def test_ours_with_every_overlap_gives_the_same_values(videos, cases):
    from kaleido_bench.bench.concurrency import Overlap

    clock = Clock("cpu")
    sequential = score_all(videos, cases, METRICS, "cpu", clock)
    overlapped = score_all(
        videos, cases, METRICS, "cpu", clock, Overlap(metric_workers=2, decode_ahead=True)
    )
    agreement = compare(overlapped.values, sequential.values)
    assert agreement.ok and agreement.max_diff == 0.0 and agreement.compared == 3
    assert (
        list(overlapped.setup) == list(overlapped.score) == METRICS
    )  # the metrics' order, whoever ended first
    assert sum(
        overlapped.setup.values()
    ) <= overlapped.total and "2 metric(s) at once" in one_by_one.describe_overlap(
        overlapped.overlap
    )


def test_compare_flags_differences_and_absent_mismatch():
    assert not compare({("a", "m"): 1.0}, {("a", "m"): 1.0 + 2e-6}).ok
    assert compare({("a", "m"): 1.0}, {("a", "m"): 1.0 + 5e-7}).ok
    mismatch = compare({("a", "m"): 1.0}, {("a", "m"): None})
    assert not mismatch.ok and mismatch.absent_mismatch == [("a", "m")]
    assert not compare({("a", "m"): float("nan")}, {("a", "m"): 1.0}).ok


def test_one_by_one_forgets_models_and_references_each_time(videos, cases, monkeypatch):
    from kaleido_bench.metrics.context import ScoringContext
    from kaleido_bench.metrics.embedding_cache import EmbeddingCache

    calls = {"contexts": 0, "references": 0}
    create, clear = ScoringContext.create.__func__, EmbeddingCache.clear

    def count_contexts(cls, *args, **kwargs):
        calls["contexts"] += 1
        return create(cls, *args, **kwargs)

    def count_references(self) -> None:
        calls["references"] += 1
        clear(self)

    monkeypatch.setattr(ScoringContext, "create", classmethod(count_contexts))
    monkeypatch.setattr(EmbeddingCache, "clear", count_references)
    score_one_by_one(videos, cases, METRICS, "cpu", Clock("cpu"))
    assert calls["contexts"] >= len(METRICS)  # from scratch (no model kept) for every metric
    assert calls["references"] >= len(METRICS) * len(videos)  # references embedded again per video


def test_one_by_one_table(videos):
    result = profile_one_by_one(videos, suite="mini", metric_names=METRICS)
    table = result.table()
    assert list(table["stage"]) == [*METRICS, "decode (PyAV rgb24)", "total"]
    assert list(table["models"][:2]) == ["none (no learned weights)"] * 2
    total = table.set_index("stage").loc["total"]
    assert total["one_by_one_vs_ours"] == pytest.approx(result.naive.total / result.ours.total)
    assert total["max_abs_diff"] == 0.0
    summary = result.summary()
    assert summary[0].startswith("Ratio one-by-one / ours: ") and len(summary) == 3
    assert summary[2] == "Overlap in ours: none: decodes and metrics one after another."


def test_one_by_one_summary_says_when_values_differ(videos, monkeypatch):
    real = one_by_one.score_one_by_one

    def off_by_a_bit(*args, **kwargs):
        naive = real(*args, **kwargs)
        key = ("singleobj_cat", "motion_amplitude")
        naive.values[key] += 1e-3
        return naive

    monkeypatch.setattr("one_by_one.score_one_by_one", off_by_a_bit)
    result = profile_one_by_one(videos, suite="mini", metric_names=METRICS)
    assert not result.agreement.ok
    assert "VALUES DIFFER" in result.summary()[-1] and "0.001 > 1e-06" in result.summary()[-1]
    row = result.table().set_index("stage").loc["motion_amplitude"]
    assert row["max_abs_diff"] == pytest.approx(1e-3) and "max |difference|" in row["note"]
