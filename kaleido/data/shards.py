"""The dataset on disk (the format the trainer reads; keep it exactly):

- `part-*.parquet`: kept samples, columns `sample_id` (str), `caption` (str), `video` (path of
  the target clip, relative to the dataset folder), `references` (list of relative image paths),
  `kind` (list of str, one per reference: cutout / inpainted / reposed);
- `media/<sample_id>/`: the clip (`video.mp4`) and its reference images (`ref<i>_<kind>.png`);
- `funnel/part-*.parquet`: every processed sample, kept or not, with its rejections, the model
  stages it went through and when it finished; a sample id found here is finished (resume);
- `manifest.json`, `funnel.json`, `funnel.md`: rewritten at the end of every run.

Every file is written to a temporary name and renamed, so a killed run leaves whole files."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from kaleido_bench.kaleido.data.records import SampleState

SHARD_COLUMNS = ("sample_id", "caption", "video", "references", "kind")
FUNNEL_COLUMNS = (
    "sample_id",
    "kept",
    "reason",
    "rejections",
    "rejected_subjects",
    "stages",
    "stage_seconds",
    "finished_at",
)
FORMAT = "kaleido-s2v-shards/1"


def write_sample(state: SampleState, out: Path) -> dict[str, Any]:
    """A processed sample's record; a kept one's clip and chosen references are written first."""
    from PIL import Image

    record: dict[str, Any] = {
        "sample_id": state.sample_id,
        "kept": not state.rejected,
        "reason": state.rejections[-1].reason if state.rejected else "",
        "rejections": [f"{r.stage}: {r.reason}" for r in state.rejections],
        "rejected_subjects": [r.subject or "" for r in state.rejections],  # "" = the whole sample
        "stages": list(state.stages),
        "stage_seconds": list(state.stage_seconds),
    }
    if not state.rejected:
        folder = Path("media") / state.sample_id
        (out / folder).mkdir(parents=True, exist_ok=True)
        video = folder / "video.mp4"
        _atomic_copy(Path(state.video_path), out / video)
        by_label = {s.label: s for s in state.live_subjects()}
        references, kinds = [], []
        for i, (label, kind) in enumerate(state.chosen):
            path = folder / f"ref{i}_{kind}.png"
            tmp = out / path.with_suffix(".tmp.png")
            Image.fromarray(by_label[label].variants[kind]).save(tmp)
            os.replace(tmp, out / path)
            references.append(path.as_posix())
            kinds.append(kind)
        record.update(
            caption=state.caption, video=video.as_posix(), references=references, kind=kinds
        )
    record["finished_at"] = time.time()
    return record


def write_part(out: Path, records: list[dict[str, Any]]) -> None:
    """Kept rows to `part-X.parquet`, then every row to `funnel/part-X.parquet`: the funnel part
    is the commit mark (a shard without one is removed by `finished_ids`)."""
    import pyarrow as pa

    name = f"part-{uuid.uuid4().hex[:12]}.parquet"
    kept = [r for r in records if r["kept"]]
    strings = pa.list_(pa.string())
    if kept:
        schema = pa.schema([("sample_id", pa.string()), ("caption", pa.string()), ("video", pa.string()),
                            ("references", strings), ("kind", strings)])  # fmt: skip
        _atomic_parquet(
            pa.Table.from_pylist([{c: r[c] for c in SHARD_COLUMNS} for r in kept], schema=schema),
            out / name,
        )
    schema = pa.schema([("sample_id", pa.string()), ("kept", pa.bool_()), ("reason", pa.string()),
                        ("rejections", strings), ("rejected_subjects", strings), ("stages", strings),
                        ("stage_seconds", pa.list_(pa.float64())),
                        ("finished_at", pa.float64())])  # fmt: skip
    table = pa.Table.from_pylist(
        [{c: r[c] for c in FUNNEL_COLUMNS} for r in records], schema=schema
    )
    _atomic_parquet(table, out / "funnel" / name)


def finished_ids(out: Path) -> set[str]:
    """Sample ids of every funnel part (kept or rejected): a rerun skips them. A kept shard
    without its funnel part (a run killed between the two writes) is removed first."""
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


def write_manifest(out: Path, config: dict[str, Any], kept: int) -> None:
    manifest = {
        "format": FORMAT,
        "columns": list(SHARD_COLUMNS),
        "shards": sorted(p.name for p in out.glob("part-*.parquet")),
        "num_samples": kept,
        "funnel": "funnel.json",
        "config": config,
    }
    _atomic_text(out / "manifest.json", json.dumps(manifest, indent=2))


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _atomic_copy(source: Path, target: Path) -> None:
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _atomic_parquet(table: Any, path: Path) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
