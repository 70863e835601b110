"""`build`: clips in, a sharded cross-paired dataset out (layout: `shards.py`), as a Ray Data
pipeline.

Input: a folder of `.mp4` clips (searched recursively). A clip may come with a sidecar
`<clip>.json` holding `{"caption": str, "subjects": [str, ...]}`: those subjects are used and the
VLM is skipped for that clip (curated data, and the tests: a tiny random VLM writes no JSON).

Each model stage is an actor pool (`map_batches` with a callable class,
`ActorPoolStrategy(size=workers)`, `num_gpus` when on GPU) that loads its model once; the driver
writes the results as they stream back, a parquet part every `shard_size` samples, so a killed
run loses at most one part and a rerun redoes only what no funnel part records. Only the driver
reads the input clips' files and writes the output folder; the actors read the clips too, so on
a multi-node cluster the input must be on a filesystem every node sees.
"""

from __future__ import annotations

import json
import pickle
import time
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from kaleido_bench.kaleido.data.captioner import CaptionerConfig
from kaleido_bench.kaleido.data.detector import DetectorConfig
from kaleido_bench.kaleido.data.filters import FilterConfig
from kaleido_bench.kaleido.data.funnel import funnel_report, write_funnel
from kaleido_bench.kaleido.data.records import SampleState
from kaleido_bench.kaleido.data.segmenter import SegmenterConfig
from kaleido_bench.kaleido.data.shards import (
    finished_ids,
    write_manifest,
    write_part,
    write_sample,
)
from kaleido_bench.kaleido.data.synthesis import InpainterConfig, MixConfig, ReposerConfig


@dataclass(frozen=True)
class PipelineConfig:
    captioner: CaptionerConfig = field(default_factory=CaptionerConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    inpainter: InpainterConfig = field(default_factory=InpainterConfig)
    reposer: ReposerConfig = field(default_factory=ReposerConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    mix: MixConfig = field(default_factory=MixConfig)
    caption_frames: int = 3  # frames the VLM sees
    workers: int = 1  # actors per model stage
    actor_num_cpus: float = 0.25  # CPUs reserved per actor (five pools share the node)
    actor_num_gpus: float = 1.0  # GPUs per actor, used when the stages run on cuda
    shard_size: int = 64  # samples per parquet part (a killed run loses at most one part)

    def on(self, device: str, dtype: str | None = None) -> PipelineConfig:
        """Every model stage on `device` (and `dtype`, e.g. "bfloat16")."""
        extra = {"dtype": dtype} if dtype else {}
        return replace(
            self,
            captioner=replace(self.captioner, device=device, **extra),
            detector=replace(self.detector, device=device),
            segmenter=replace(self.segmenter, device=device),
            inpainter=replace(self.inpainter, device=device, **extra),
            reposer=replace(self.reposer, device=device, **extra),
        )


def load_config(path: str | Path) -> PipelineConfig:
    """A `PipelineConfig` from JSON (or YAML) with the dataclasses' field names, nested by stage."""
    text = Path(path).read_text()
    if str(path).endswith((".yaml", ".yml")):
        import yaml

        raw = yaml.safe_load(text)
    else:
        raw = json.loads(text)
    return _from_dict(PipelineConfig, raw or {})


def _from_dict(cls: type, raw: dict[str, Any]) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(raw) - set(known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} option(s): {', '.join(sorted(unknown))}")
    values = {}
    for name, value in raw.items():
        default = getattr(cls(), name)
        values[name] = _from_dict(type(default), value) if is_dataclass(default) else value
    return cls(**values)


@dataclass(frozen=True)
class Clip:
    sample_id: str
    path: Path
    caption: str = ""
    subjects: tuple[str, ...] | None = None


@dataclass(frozen=True)
class BuildReport:
    total: int  # clips in the input
    skipped: int  # already finished before this run
    processed: int  # run through the stages now
    kept: int  # kept over the whole dataset
    seconds: float


def list_clips(folder: str | Path) -> list[Clip]:
    """Every `.mp4` under `folder`, sorted; the id is the relative path without suffix ('/' -> '--')."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"input folder {folder} does not exist")
    clips = []
    for path in sorted(folder.rglob("*.mp4")):
        sample_id = path.relative_to(folder).with_suffix("").as_posix().replace("/", "--")
        sidecar = path.with_suffix(".json")
        if sidecar.exists():
            meta = json.loads(sidecar.read_text())
            subjects = meta.get("subjects") if isinstance(meta, dict) else None
            if not isinstance(subjects, list) or not all(
                isinstance(s, str) and s for s in subjects
            ):
                raise ValueError(f"{sidecar}: 'subjects' must be a list of non-empty strings")
            clips.append(Clip(sample_id, path, str(meta.get("caption", "")), tuple(subjects)))
        else:
            clips.append(Clip(sample_id, path))
    return clips


def _start_ray(address: str | None, num_cpus: int | None) -> None:
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)


def _dataset(clips: list[Clip], config: PipelineConfig):
    import ray.data

    from kaleido_bench.kaleido.data import stages

    ray.data.DataContext.get_current().enable_progress_bars = False
    rows = [
        {"sample_id": c.sample_id, "state": pickle.dumps(SampleState(
            c.sample_id, str(c.path.resolve()), caption=c.caption,
            injected_subjects=list(c.subjects) if c.subjects is not None else None))}
        for c in clips
    ]  # fmt: skip
    ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))

    def pool(stage: type, device: str, **kwargs: Any):
        gpus = config.actor_num_gpus if device.startswith("cuda") else 0
        return ds.map_batches(
            stage, fn_constructor_kwargs=kwargs, batch_size=1, compute=ray.data.ActorPoolStrategy(size=config.workers),
            num_cpus=config.actor_num_cpus, num_gpus=gpus,
        )  # fmt: skip

    ds = pool(
        stages.CaptionStage,
        config.captioner.device,
        config=config.captioner,
        caption_frames=config.caption_frames,
    )
    ds = pool(
        stages.DetectStage, config.detector.device, config=config.detector, filters=config.filters
    )
    ds = pool(
        stages.CutoutStage, config.segmenter.device, config=config.segmenter, filters=config.filters
    )
    ds = pool(
        stages.InpaintStage,
        config.inpainter.device,
        config=config.inpainter,
        filters=config.filters,
        seed=config.mix.seed,
    )
    ds = pool(
        stages.ReposeStage,
        config.reposer.device,
        config=config.reposer,
        filters=config.filters,
        mix=config.mix,
    )
    return ds


def check_models(config: PipelineConfig) -> None:
    """Every stage's model is on disk (folder or HF cache), checked before Ray starts: a missing
    one is one `DataModelNotFoundError` here, not an actor dying inside the cluster."""
    from kaleido_bench.kaleido.data.models import resolve_model

    for stage, ref in (
        ("captioner", config.captioner.model),
        ("subject detector", config.detector.model),
        ("segmenter", config.segmenter.model),
        ("CLIP filter", config.filters.clip_model),
        ("inpainter", config.inpainter.model),
        ("re-poser", config.reposer.model),
        ("re-poser (Redux)", config.reposer.redux_model),
    ):
        resolve_model(ref, stage)


def build(
    input: str | Path,
    out: str | Path,
    config: PipelineConfig | None = None,
    *,
    ray_address: str | None = None,
    num_cpus: int | None = None,
    limit: int | None = None,
) -> BuildReport:
    """Run the pipeline over the clips of `input` not yet finished in `out` (at most `limit` of
    them), then rewrite `out`'s manifest and funnel report. Local Ray unless `ray_address`."""
    config = config or PipelineConfig()
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clips = list_clips(input)
    done = finished_ids(out)
    todo = [c for c in clips if c.sample_id not in done]
    if limit is not None:
        todo = todo[:limit]
    if todo:
        from kaleido_bench.kaleido.data import stages

        if ray_address is None:  # a remote cluster's nodes hold their own model caches
            check_models(config)
        _start_ray(ray_address, num_cpus)
        pending: list[dict[str, Any]] = []
        for batch in _dataset(todo, config).iter_batches(batch_size=None, batch_format="numpy"):
            pending.extend(write_sample(state, out) for state in stages.unpack(batch))
            if len(pending) >= config.shard_size:
                write_part(out, pending)
                pending = []
        if pending:
            write_part(out, pending)
    report = funnel_report(out)
    write_funnel(out, report)
    write_manifest(out, asdict(config), report["kept"])
    return BuildReport(len(clips), len(clips) - len([c for c in clips if c.sample_id not in done]),
                       len(todo), report["kept"], time.perf_counter() - start)  # fmt: skip
