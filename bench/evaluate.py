"""The library calls behind `kaleido-bench run` and `kaleido-bench score`.

`run_model` makes and scores videos for a suite; `score_videos` scores a folder of existing
`<case_id>.mp4` files. Both pick the run folder from the configuration (model config, suite,
seed) so that repeating a command resumes the same folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from kaleido_bench.baselines.base import ModelAdapter
from kaleido_bench.bench.concurrency import SEQUENTIAL, Overlap
from kaleido_bench.bench.executors import Executor, LocalExecutor, RunRequest
from kaleido_bench.bench.protocols import protocol_for
from kaleido_bench.bench.runner import RunSummary
from kaleido_bench.bench.store import ResultStore, RunManifest, git_commit, package_versions
from kaleido_bench.core.cases import Suite
from kaleido_bench.core.errors import VideoError
from kaleido_bench.metrics.base import Metric


def suite_record(suite: Suite) -> dict:
    return {
        "name": suite.name,
        "version": suite.version,
        "domain": suite.domain,
        "data_root": str(suite.data_root),
    }


def default_run_dir(
    runs_dir: Path, model: str, suite: Suite, seed: int, manifest: RunManifest
) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{model}_{suite.name}_seed{seed}")
    return runs_dir / f"{slug}_{manifest.fingerprint()}"


def run_model(
    model: ModelAdapter,
    suite: Suite,
    metrics: list[Metric],
    *,
    seed: int = 0,
    out_dir: Path | None = None,
    runs_dir: Path = Path("runs"),
    progress=None,
    skipped: dict[str, str] | None = None,
    overlap: Overlap = SEQUENTIAL,
    device: str = "cpu",
    memory_budget: int | None = None,
    executor: Executor | None = None,
) -> tuple[ResultStore, RunSummary]:
    """Generate (resuming) and score every case of `suite` with `model`."""
    suite.check_images(protocol_for(suite.name).missing_images_note())  # all missing images at once
    manifest = RunManifest(
        model=model.config(),
        suite=suite_record(suite),
        seed=seed,
        label=model.label,
        packages=package_versions(),
        git_commit=git_commit(),
    )
    store = ResultStore(out_dir or default_run_dir(runs_dir, model.name, suite, seed, manifest))
    request = RunRequest(
        store.root, suite, metrics, model, seed, device, overlap, memory_budget, progress
    )
    return store, execute(store, manifest, request, executor, skipped)


def score_videos(
    videos_dir: Path,
    suite: Suite,
    metrics: list[Metric],
    *,
    model_name: str | None = None,
    out_dir: Path | None = None,
    runs_dir: Path = Path("runs"),
    progress=None,
    skipped: dict[str, str] | None = None,
    overlap: Overlap = SEQUENTIAL,
    device: str = "cpu",
    memory_budget: int | None = None,
    executor: Executor | None = None,
) -> tuple[ResultStore, RunSummary, list[str]]:
    """Score `<case_id>.mp4` files made elsewhere; returns the file stems that match no case."""
    videos_dir = videos_dir.resolve()
    if not videos_dir.is_dir():
        raise VideoError(f"videos folder {videos_dir} does not exist")
    stems = sorted(p.stem for p in videos_dir.glob("*.mp4"))
    known = {case.id for case in suite.cases}
    unmatched = [stem for stem in stems if stem not in known]
    if not set(stems) & known:
        example = suite.cases[0].id if suite.cases else "<case_id>"
        raise VideoError(
            f"no video in {videos_dir} is named after a case of suite {suite.name!r} "
            f"(expected files like {example}.mp4; found {len(stems)} mp4 file(s))"
        )
    present = suite.select([case.id for case in suite.cases if case.id in set(stems)])
    name = model_name or videos_dir.name
    manifest = RunManifest(
        model={"model": name, "options": {"videos": str(videos_dir)}},
        suite=suite_record(suite),
        seed=0,
        videos_dir=str(videos_dir),
        packages=package_versions(),
        git_commit=git_commit(),
    )
    store = ResultStore(out_dir or default_run_dir(runs_dir, f"videos-{name}", suite, 0, manifest))
    request = RunRequest(
        store.root, present, metrics, None, 0, device, overlap, memory_budget, progress
    )
    return store, execute(store, manifest, request, executor, skipped), unmatched


def execute(
    store: ResultStore,
    manifest: RunManifest,
    request: RunRequest,
    executor: Executor | None,
    skipped: dict[str, str] | None,
) -> RunSummary:
    """Open (or resume) the run folder, run the request on the executor, record the skipped metrics."""
    store.open(manifest)
    summary = (executor or LocalExecutor()).run(request)
    summary.skipped_metrics.update(skipped or {})
    store.write_skipped(summary.skipped_metrics)
    return summary
