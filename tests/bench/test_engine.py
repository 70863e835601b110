"""The scoring engine: the pre-engine path's recorded values bit for bit, group passes under a
memory budget, metric identity (a changed option rescores), unknown options refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kaleido_bench.bench.engine import Engine, Job
from kaleido_bench.bench.store import ResultStore
from kaleido_bench.bench.suites import load_suite
from kaleido_bench.core.errors import MetricOptionError
from kaleido_bench.core.video import write_video
from kaleido_bench.metrics.base import Metric, MetricResult, Needs

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "engine" / "values_before_engine.json"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The fixture's inputs, rebuilt from code: tiny random weights and 3 collage videos of `mini`."""
    pytest.importorskip("insightface")
    import os

    from support.random_weights import write_random_weights

    from kaleido_bench.baselines.base import get_model_class
    from kaleido_bench.bench.evaluate import run_model

    recorded = json.loads(FIXTURE.read_text())
    root = tmp_path_factory.mktemp("engine")
    names = sorted({key.split("/")[1] for key in recorded["values"]})
    write_random_weights(root / "weights", names, size="tiny", seed=0)
    old = os.environ.get("KALEIDO_BENCH_WEIGHTS")
    os.environ["KALEIDO_BENCH_WEIGHTS"] = str(root / "weights")
    suite = load_suite("mini", root / "mini").select(limit=3)
    store, _ = run_model(
        get_model_class("collage")(height=160, width=288, num_frames=12),
        suite,
        [],
        out_dir=root / "made",
    )
    yield suite, store.root / "videos", names, recorded, root
    if old is None:
        os.environ.pop("KALEIDO_BENCH_WEIGHTS", None)
    else:
        os.environ["KALEIDO_BENCH_WEIGHTS"] = old


def _score(made, out: str, memory_budget: int | None = None) -> dict[str, float | None]:
    from support.random_weights import metric_options

    from kaleido_bench.bench.evaluate import score_videos
    from kaleido_bench.metrics.base import get_metric_class

    suite, videos, names, _, root = made
    metrics = [get_metric_class(n)(**metric_options(n, "tiny")) for n in names]
    store, summary, _ = score_videos(
        videos, suite, metrics, out_dir=root / out, memory_budget=memory_budget
    )
    assert not summary.failures, summary.failures
    return {f"{r.case}/{r.metric}": r.value for r in ResultStore(store.root).records()}


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_engine_stores_the_pre_engine_values(made):
    """Bit for bit where the recording machine's CPU kernels are ours; else within 1e-6 (the same
    code on another CPU rounds matrix products differently: see the fixture's cpu_capability)."""
    import torch

    recorded = made[3]
    values = _score(made, "engine")
    assert set(values) == set(recorded["values"])
    same_machine = recorded["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    for key, old in recorded["values"].items():
        new = values[key]
        assert (old is None) == (new is None), key
        if old is not None:
            if same_machine:
                assert new == old, (key, new, old)
            else:
                assert new == pytest.approx(old, rel=1e-6, abs=1e-7), key


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_group_passes_under_a_budget_give_the_same_values(made):
    whole = _score(made, "whole")
    by_group = _score(
        made, "by_group", memory_budget=1
    )  # every group alone: released before the next
    assert by_group == whole


class Counted(Metric):
    """Counts its setups and scores; one model in the context's pool."""

    option_names = frozenset({"offset"})

    def setup(self, context) -> None:
        import torch

        self.model = context.models.get(("counted", self.name), lambda: torch.nn.Linear(64, 64))
        type(self).setups.append(self.name)

    def score(self, video, case, context) -> MetricResult:
        assert self.model is not None  # set up by the engine, never lazily
        return MetricResult(float(video.num_frames) + float(self.options.get("offset", 0)))


def _metric(name: str, group: str, size: int) -> Metric:
    cls = type(
        name,
        (Counted,),
        {"name": name, "needs": Needs(group=group, model_bytes=size), "setups": []},
    )
    return cls()


def _jobs(tmp_path, count: int = 3) -> list[Job]:
    from kaleido_bench.core.cases import Case

    jobs = []
    for i in range(count):
        path = write_video(tmp_path / f"v{i}.mp4", np.full((2 + i, 16, 16, 3), 9, np.uint8), 8.0)
        jobs.append(Job(Case(f"c{i}", "p", ()), path, ["a", "b", "c"]))
    return jobs


def test_groups_that_do_not_fit_together_are_scored_one_after_another(ctx, tmp_path):
    import dataclasses

    metrics = [_metric("a", "big1", 100), _metric("b", "big2", 100), _metric("c", "big2", 60)]
    budgeted = dataclasses.replace(ctx, memory_budget=150)
    engine = Engine(metrics, budgeted)
    order = [(o.metric.name, o.case.id) for o in engine.score(_jobs(tmp_path))]
    # group big1 on every video, released, then group big2 on every video
    assert order == [
        ("a", "c0"),
        ("a", "c1"),
        ("a", "c2"),
        ("b", "c0"),
        ("c", "c0"),
        ("b", "c1"),
        ("c", "c1"),
        ("b", "c2"),
        ("c", "c2"),
    ]
    assert engine.stats.passes == [["a"], ["b", "c"]] and engine.stats.decodes == 6
    assert getattr(metrics[0], "model", None) is None  # released: its model reference dropped
    roomy = Engine(
        [_metric("a", "big1", 100), _metric("b", "big2", 100)],
        dataclasses.replace(ctx, memory_budget=500),
    )
    list(roomy.score(_jobs(tmp_path / "x")))
    assert (
        len(roomy.stats.passes) == 1 and roomy.stats.decodes == 3
    )  # fits: each video decoded once


def test_unknown_metric_options_are_refused():
    with pytest.raises(
        MetricOptionError, match="has no option.*thresold.*it takes: batch_size, offset"
    ):
        _metric("a", "g", 0).__class__(thresold=0.3)


def test_a_changed_option_or_weight_file_rescores(tmp_path, monkeypatch):
    from kaleido_bench.bench.evaluate import score_videos
    from kaleido_bench.metrics.weights import WeightFile

    suite = load_suite("mini", tmp_path / "mini").select(limit=2)
    for case in suite.cases:
        write_video(
            tmp_path / "videos" / f"{case.id}.mp4", np.full((3, 16, 16, 3), 9, np.uint8), 8.0
        )
    weight = tmp_path / "w" / "counted.bin"
    weight.parent.mkdir()
    weight.write_bytes(b"one")
    monkeypatch.setenv("KALEIDO_BENCH_WEIGHTS", str(tmp_path / "w"))
    cls = type(
        "wm",
        (Counted,),
        {"name": "wm", "setups": [], "weights": (WeightFile("counted.bin", "test"),)},
    )

    def scored(**options) -> tuple[int, float]:
        _, summary, _ = score_videos(
            tmp_path / "videos", suite, [cls(**options)], out_dir=tmp_path / "run"
        )
        store = ResultStore(tmp_path / "run")
        return summary.scored, store.latest()[(suite.cases[0].id, "wm")].value

    assert scored() == (2, 3.0)
    assert scored() == (0, 3.0)  # same identity: reused
    assert scored(offset=1) == (2, 4.0)  # another option value: rescored
    weight.write_bytes(b"two!")
    assert scored(offset=1) == (2, 4.0)  # another weight file: rescored
    assert scored(offset=1, batch_size=7) == (0, 4.0)  # batch size changes no number: reused
