"""Training samples from the data pipeline's shards, and a writer for such shards.

A shard is a directory holding `manifest.json` and one or more parquet files (read with
pandas / pyarrow) whose rows have the columns
`sample_id` (str), `caption` (str), `video` (path of the target clip's mp4, relative to the
shard), `references` (list of image paths, relative to the shard) and `kind` (one of
cutout / inpainted / reposed per reference). The manifest's `parquet` list names the files
(all `*.parquet` of the folder when it has none).

The loader decodes the clip with PyAV at the configured fps (nearest source frame), crops the
centre to the target aspect ratio and resizes (PIL bicubic) to height x width, as pixels in
[-1, 1]; the reference images are returned as PIL images and fitted by
`kaleido.references` at encoding time (the inference path). Sample order is a seeded
permutation per epoch, addressed by the number of samples consumed so far, so a resumed run
continues from the exact position.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from kaleido_bench.kaleido.pipeline import write_mp4
from kaleido_bench.kaleido.references import load_reference_image

MANIFEST = "manifest.json"
SHARD_FORMAT = "kaleido-s2v-shard"
REFERENCE_KINDS = ("cutout", "inpainted", "reposed")
COLUMNS = ("sample_id", "caption", "video", "references", "kind")


class ShardError(ValueError):
    """A shard that does not follow the layout (missing manifest, column or file)."""


@dataclass(frozen=True)
class ShardRecord:
    """One row of a shard, paths made absolute."""

    sample_id: str
    caption: str
    video: Path
    references: tuple[Path, ...]
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class TrainingSample:
    """A decoded sample: the target clip as (3, T, H, W) float32 in [-1, 1] and its references."""

    sample_id: str
    caption: str
    pixels: torch.Tensor
    references: tuple[Image.Image, ...]
    kinds: tuple[str, ...]


@dataclass
class SampleToWrite:
    """Input of `write_shard`: frames (T, H, W, 3) uint8 or an existing mp4, caption, references."""

    sample_id: str
    caption: str
    video: np.ndarray | str | Path
    references: Sequence[Image.Image]
    kinds: Sequence[str] = field(default_factory=tuple)


# reading ---------------------------------------------------------------------------------------


def shard_directories(roots: Iterable[str | Path]) -> list[Path]:
    """Each root that holds a manifest, or its sorted subfolders that do."""
    found: list[Path] = []
    for root in map(Path, roots):
        if (root / MANIFEST).is_file():
            found.append(root)
            continue
        children = (
            sorted(p for p in root.glob("*") if (p / MANIFEST).is_file()) if root.is_dir() else []
        )
        if not children:
            raise ShardError(
                f"no shard at {root}: expected {root / MANIFEST} or subfolders holding one"
            )
        found.extend(children)
    return found


def read_shard(directory: str | Path) -> list[ShardRecord]:
    """The rows of one shard, checked: every column present, every file there, kinds known."""
    import pandas as pd

    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise ShardError(f"{manifest_path} is missing")
    manifest = json.loads(manifest_path.read_text())
    names = manifest.get("parquet") or sorted(p.name for p in directory.glob("*.parquet"))
    if not names:
        raise ShardError(f"{directory}: no parquet file")
    records: list[ShardRecord] = []
    for name in names:
        frame = pd.read_parquet(directory / name)
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise ShardError(f"{directory / name}: missing column(s) {', '.join(missing)}")
        for row in frame.itertuples(index=False):
            refs = tuple(directory / str(r) for r in list(row.references))
            kinds = tuple(str(k) for k in list(row.kind))
            if len(kinds) != len(refs):
                raise ShardError(f"{row.sample_id}: {len(refs)} references but {len(kinds)} kinds")
            bad = [k for k in kinds if k not in REFERENCE_KINDS]
            if bad:
                raise ShardError(
                    f"{row.sample_id}: unknown reference kind(s) {bad} (known: {REFERENCE_KINDS})"
                )
            video = directory / str(row.video)
            for path in (video, *refs):
                if not path.is_file():
                    raise ShardError(f"{row.sample_id}: {path} is missing")
            records.append(ShardRecord(str(row.sample_id), str(row.caption), video, refs, kinds))
    return records


def resize_frame(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre crop to height:width, then bicubic resize: (h, w, 3) uint8 -> (height, width, 3)."""
    h, w = frame.shape[:2]
    if w * height > h * width:  # too wide
        crop_w = max(1, round(h * width / height))
        left = (w - crop_w) // 2
        frame = frame[:, left : left + crop_w]
    else:
        crop_h = max(1, round(w * height / width))
        top = (h - crop_h) // 2
        frame = frame[top : top + crop_h]
    if frame.shape[:2] == (height, width):
        return np.ascontiguousarray(frame)
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.BICUBIC))


def decode_clip(
    path: str | Path, num_frames: int, height: int, width: int, fps: float
) -> np.ndarray:
    """(num_frames, height, width, 3) uint8: frame k is the source frame nearest to time k / fps."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        source_fps = float(stream.average_rate or stream.guessed_rate or fps)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    wanted = [round(k * source_fps / fps) for k in range(num_frames)]
    if not frames or wanted[-1] >= len(frames):
        raise ShardError(
            f"{path}: {len(frames)} frames at {source_fps:g} fps, {num_frames} at {fps:g} fps need "
            f"{wanted[-1] + 1 if wanted else 0}"
        )
    return np.stack([resize_frame(frames[i], height, width) for i in wanted])


class ShardDataset(torch.utils.data.Dataset):
    """Decoded training samples of one or more shards (map-style, index = row)."""

    def __init__(
        self, roots: Iterable[str | Path], *, height: int, width: int, num_frames: int, fps: float
    ) -> None:
        self.records = [r for d in shard_directories(roots) for r in read_shard(d)]
        if not self.records:
            raise ShardError(f"no samples in {list(roots)}")
        self.height, self.width, self.num_frames, self.fps = height, width, num_frames, fps

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> TrainingSample:
        record = self.records[index]
        frames = decode_clip(record.video, self.num_frames, self.height, self.width, self.fps)
        pixels = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1.0
        references = tuple(load_reference_image(p) for p in record.references)
        return TrainingSample(record.sample_id, record.caption, pixels, references, record.kinds)


def sample_order(
    num_samples: int, seed: int, start: int = 0, shuffle: bool = True
) -> Iterator[int]:
    """Endless dataset indices from position `start`: epoch e is randperm(seed + e), or 0..n-1."""
    position = start
    while True:
        epoch, offset = divmod(position, num_samples)
        if shuffle:
            order = torch.randperm(
                num_samples, generator=torch.Generator().manual_seed(seed + epoch)
            ).tolist()
        else:
            order = list(range(num_samples))
        for index in order[offset:]:
            yield index
            position += 1


class PositionSampler(torch.utils.data.Sampler[int]):
    """`sample_order` cut into steps: from optimiser step `start_step` on, this process's share.

    Step s uses global positions [s W B, (s + 1) W B) of the order (W processes, B samples
    each); process r takes the r-th run of B. Never ends; the trainer stops it.
    """

    def __init__(
        self, num_samples: int, seed: int, *, start_step: int = 0, batch_size: int = 1,
        rank: int = 0, world_size: int = 1, shuffle: bool = True,
    ) -> None:  # fmt: skip
        self.num_samples, self.seed, self.shuffle = num_samples, seed, shuffle
        self.start_step, self.batch_size, self.rank, self.world_size = (
            start_step,
            batch_size,
            rank,
            world_size,
        )

    def __iter__(self) -> Iterator[int]:
        per_step = self.batch_size * self.world_size
        order = sample_order(self.num_samples, self.seed, self.start_step * per_step, self.shuffle)
        mine = range(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        while True:
            chunk = [next(order) for _ in range(per_step)]
            yield from (chunk[i] for i in mine)


def collate_samples(samples: list[TrainingSample]) -> list[TrainingSample]:
    """Keep samples apart: each has its own number of references."""
    return samples


def sample_loader(
    dataset: ShardDataset, *, batch_size: int, seed: int, start_step: int = 0, shuffle: bool = True,
    num_workers: int = 0, rank: int = 0, world_size: int = 1,
) -> torch.utils.data.DataLoader:  # fmt: skip
    """Batches (lists of samples) of this process from optimiser step `start_step` on."""
    sampler = PositionSampler(
        len(dataset),
        seed,
        start_step=start_step,
        batch_size=batch_size,
        rank=rank,
        world_size=world_size,
        shuffle=shuffle,
    )
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate_samples,
        num_workers=num_workers,
    )


# writing ---------------------------------------------------------------------------------------


def write_shard(
    directory: str | Path, samples: Iterable[SampleToWrite], *, fps: float = 16.0
) -> Path:
    """Write samples as a shard: `videos/ID.mp4`, `references/ID_K.png`, `part-00000.parquet`, manifest."""
    import pandas as pd

    directory = Path(directory)
    (directory / "videos").mkdir(parents=True, exist_ok=True)
    (directory / "references").mkdir(exist_ok=True)
    rows = []
    for sample in samples:
        if isinstance(sample.video, (str, Path)):
            video = Path(sample.video)
            target = directory / "videos" / f"{sample.sample_id}{video.suffix}"
            target.write_bytes(video.read_bytes())
        else:
            target = directory / "videos" / f"{sample.sample_id}.mp4"
            write_mp4(target, np.ascontiguousarray(sample.video, dtype=np.uint8), fps, crf=10)
        kinds = list(sample.kinds) or ["cutout"] * len(sample.references)
        refs = []
        for k, image in enumerate(sample.references):
            ref = directory / "references" / f"{sample.sample_id}_{k}.png"
            image.convert("RGB").save(ref)
            refs.append(ref.relative_to(directory).as_posix())
        rows.append(
            {"sample_id": sample.sample_id, "caption": sample.caption,
             "video": target.relative_to(directory).as_posix(), "references": refs, "kind": kinds}
        )  # fmt: skip
    name = "part-00000.parquet"
    pd.DataFrame(rows, columns=list(COLUMNS)).to_parquet(directory / name, index=False)
    manifest = {
        "format": SHARD_FORMAT,
        "version": 1,
        "num_samples": len(rows),
        "parquet": [name],
        "columns": list(COLUMNS),
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    read_shard(directory)  # the shard we wrote must read back
    return directory
