"""`build`: clips in, a sharded cross-paired dataset out, as a Ray Data pipeline.

Input: a folder of `.mp4` clips (searched recursively). A clip may come with a sidecar
`<clip>.json` holding `{"caption": str, "subjects": [str, ...]}`: those subjects are used and the
VLM is skipped for that clip (curated data, and the tests: a tiny random VLM writes no JSON).

Output (the shard format the trainer reads; keep it exactly):
- `part-*.parquet`: kept samples, columns `sample_id` (str), `caption` (str), `video` (path of the
  target clip, relative to the dataset folder), `references` (list of relative image paths),
  `kind` (list of str, one per reference: cutout / inpainted / reposed);
- `media/<sample_id>/`: the clip (`video.mp4`) and its reference images;
- `funnel/part-*.parquet`: every processed sample, kept or not, with its rejection reasons;
  a sample id found here is finished, and a rerun skips it (resume);
- `manifest.json`, `funnel.json`, `funnel.md`: rewritten at the end of every run.

Each model stage is an actor pool (`map_batches` with a callable class, `concurrency=workers`,
`num_gpus` when on GPU). Media files are written by the workers: on a multi-node cluster the
output folder must be on a filesystem every node sees.
"""

from __future__ import annotations

import json
import os
import pickle
import time
import uuid
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from kaleido_bench.kaleido.data.captioner import CaptionerConfig
from kaleido_bench.kaleido.data.detector import DetectorConfig
from kaleido_bench.kaleido.data.filters import FilterConfig
from kaleido_bench.kaleido.data.funnel import funnel_report, write_funnel
from kaleido_bench.kaleido.data.records import SampleState
from kaleido_bench.kaleido.data.segmenter import SegmenterConfig
from kaleido_bench.kaleido.data.synthesis import InpainterConfig, MixConfig, ReposerConfig

SHARD_COLUMNS = ("sample_id", "caption", "video", "references", "kind")
FORMAT = "kaleido-s2v-shards/1"


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
            clips.append(
                Clip(sample_id, path, str(meta.get("caption", "")), tuple(meta["subjects"]))
            )
        else:
            clips.append(Clip(sample_id, path))
    return clips


def finished_ids(out: Path) -> set[str]:
    """Sample ids of every funnel part written (kept or rejected): a rerun skips them. A kept
    shard without its funnel part (a run killed between the two writes) is removed first."""
    import pyarrow.parquet as pq

    funnel = out / "funnel"
    parts = {p.name for p in funnel.glob("part-*.parquet")} if funnel.is_dir() else set()
    for shard in out.glob("part-*.parquet"):
        if shard.name not in parts:
            shard.unlink()
    ids: set[str] = set()
    for name in parts:
        ids.update(
            pq.read_table(funnel / name, columns=["sample_id"]).column("sample_id").to_pylist()
        )
    return ids


def _write_part(out: Path, records: list[dict[str, Any]]) -> None:
    """Kept rows to `part-X.parquet`, then every row to `funnel/part-X.parquet` (the commit mark)."""
    import pyarrow as pa

    name = f"part-{uuid.uuid4().hex[:12]}.parquet"
    kept = [r for r in records if r["kept"]]
    if kept:
        schema = pa.schema(
            [("sample_id", pa.string()), ("caption", pa.string()), ("video", pa.string()),
             ("references", pa.list_(pa.string())), ("kind", pa.list_(pa.string()))]
        )  # fmt: skip
        table = pa.Table.from_pylist(
            [{c: r[c] for c in SHARD_COLUMNS} for r in kept], schema=schema
        )
        _atomic_parquet(table, out / name)
    funnel = pa.Table.from_pylist(
        [{k: r[k] for k in ("sample_id", "kept", "reason", "rejections", "stages")} for r in records],
        schema=pa.schema([("sample_id", pa.string()), ("kept", pa.bool_()), ("reason", pa.string()),
                          ("rejections", pa.list_(pa.string())), ("stages", pa.list_(pa.string()))]),
    )  # fmt: skip
    _atomic_parquet(funnel, out / "funnel" / name)


def _atomic_parquet(table: Any, path: Path) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _start_ray(address: str | None, num_cpus: int | None) -> None:
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)


def _dataset(clips: list[Clip], config: PipelineConfig, out: Path):
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
            stage, fn_constructor_kwargs=kwargs, batch_size=1, concurrency=config.workers,
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
    return ds.map_batches(stages.WriteStage, fn_constructor_kwargs={"out_dir": str(out)}, batch_size=8,
                          concurrency=1, num_cpus=config.actor_num_cpus)  # fmt: skip


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
        _start_ray(ray_address, num_cpus)
        pending: list[dict[str, Any]] = []
        for batch in _dataset(todo, config, out).iter_batches(
            batch_size=None, batch_format="numpy"
        ):
            pending.extend(json.loads(r) for r in batch["record"])
            if len(pending) >= config.shard_size:
                _write_part(out, pending)
                pending = []
        if pending:
            _write_part(out, pending)
    report = funnel_report(out)
    write_funnel(out, report)
    _write_manifest(out, config, report)
    return BuildReport(len(clips), len(clips) - len([c for c in clips if c.sample_id not in done]),
                       len(todo), report["kept"], time.perf_counter() - start)  # fmt: skip


def _write_manifest(out: Path, config: PipelineConfig, report: dict[str, Any]) -> None:
    manifest = {
        "format": FORMAT,
        "columns": list(SHARD_COLUMNS),
        "shards": sorted(p.name for p in out.glob("part-*.parquet")),
        "num_samples": report["kept"],
        "funnel": "funnel.json",
        "config": asdict(config),
    }
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, out / "manifest.json")
