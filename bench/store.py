"""One folder a run: `manifest.json`, `videos/<case>.mp4`, and `scores.jsonl` (+ one file a worker).

Score files are append-only: one complete JSON line is written with a single `write` and
fsynced, so a crash can at worst leave a torn LAST line, which readers skip. A process scoring
alone writes `scores.jsonl`; a worker of a sharded or Ray run writes `scores-<worker>.jsonl`,
so no two processes ever append to one file, and readers merge every score file. The manifest
and videos are written to a temp file and renamed. The newest record (by its `time`) for a
(case, metric) wins; a record with an `error` is retried by the next run; a record with a value
(or an ABSENT value, `null` with `details.absent`) is reused only while the metric's identity
(`config`: options, weights, code version) is the one it was made with.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from kaleido_bench.core.atomic import write_json_atomic
from kaleido_bench.core.errors import ResultFileError, RunConflictError

MANIFEST = "manifest.json"
SCORES = "scores.jsonl"
VIDEOS = "videos"
SKIPPED = "skipped_metrics.json"
GENERATE = "generate"  # the pseudo-metric under which generation errors are recorded
STALE_TMP_SECONDS = (
    600.0  # a temp file this long untouched belongs to no live writer (see remove_leftovers)
)


@dataclass(frozen=True)
class ScoreRecord:
    """One metric on one case (or a generation failure when `metric == "generate"`)."""

    case: str
    metric: str
    value: float | None
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    config: str | None = None  # the metric's identity digest (`Metric.identity()`)
    time: float = field(
        default_factory=time.time
    )  # when it was made: orders records across score files

    @property
    def ok(self) -> bool:
        return self.error is None


_MANIFEST_REQUIRED = ("model", "suite", "seed")
_MANIFEST_TYPES: dict[str, Any] = {
    "model": dict,
    "suite": dict,
    "seed": int,
    "videos_dir": str,
    "label": str,
    "packages": dict,
}
_KIND_NAMES = {dict: "an object", int: "an integer", str: "text"}


@dataclass(frozen=True)
class RunManifest:
    """What produced a run folder. `identity()` must match for a folder to be resumed."""

    model: dict[str, Any]
    suite: dict[str, Any]
    seed: int
    videos_dir: str = VIDEOS
    label: str = ""
    packages: dict[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    python: str = field(default_factory=platform.python_version)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def identity(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "suite": self.suite,
            "seed": self.seed,
            "videos_dir": self.videos_dir,
        }

    def fingerprint(self) -> str:
        text = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | Path = MANIFEST) -> RunManifest:
        """Check the shape a resumed run and the leaderboard rely on; `ResultFileError` names `source`."""
        if not isinstance(data, dict):
            raise ResultFileError(f"{source} must hold a JSON object, not a {type(data).__name__}")
        for name, kind in _MANIFEST_TYPES.items():
            if (
                name in data
                and not isinstance(data[name], kind)
                or name in _MANIFEST_REQUIRED
                and name not in data
            ):
                raise ResultFileError(
                    f"{source}: field {name!r} must be {_KIND_NAMES[kind]}, got {data.get(name)!r}"
                )
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


class ResultStore:
    """Reads and writes one run folder; never overwrites a finished result silently."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._tails_checked: set[Path] = set()  # a torn line can only come from an earlier process

    # -- manifest -------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def manifest(self) -> RunManifest:
        try:
            with open(self.manifest_path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ResultFileError(f"{self.manifest_path} is not valid JSON: {exc}") from None
        return RunManifest.from_dict(data, self.manifest_path)

    def open(self, manifest: RunManifest) -> None:
        """Create the folder, or check that an existing one belongs to the same configuration."""
        if self.manifest_path.exists():
            existing = self.manifest()
            if json.dumps(existing.identity(), sort_keys=True, default=str) != json.dumps(
                manifest.identity(), sort_keys=True, default=str
            ):
                raise RunConflictError(
                    f"result folder {self.root} holds a run of a different configuration "
                    f"(model/suite/seed differ); choose another --out or delete it"
                )
            return
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / VIDEOS).mkdir(exist_ok=True)
        write_json_atomic(self.manifest_path, asdict(manifest))

    # -- videos ---------------------------------------------------------------------------
    @property
    def videos_dir(self) -> Path:
        if self.manifest_path.exists():
            return (self.root / self.manifest().videos_dir).resolve()
        return self.root / VIDEOS

    def video_path(self, case_id: str) -> Path:
        return self.videos_dir / f"{case_id}.mp4"

    def remove_leftovers(
        self, own_cases: Iterable[str] = (), older_than: float = STALE_TMP_SECONDS
    ) -> list[Path]:
        """Delete the temp files a killed run left in `videos/` (`.<case>.*.tmp`, `.<case>.generating.mp4`).
        Those of `own_cases` (cases this process holds under the run lock, `locks.py`) whatever their
        age; others only when untouched for `older_than` seconds: another shard working in the same
        folder right now is writing its own (a write refreshes the time), and those must stay."""
        folder = self.root / VIDEOS
        if not folder.is_dir():
            return []
        own = {f".{case}." for case in own_cases}
        now, removed = time.time(), []
        for path in [*folder.glob(".*.tmp"), *folder.glob(".*.generating.mp4")]:
            mine = any(path.name.startswith(prefix) for prefix in own)
            try:
                if path.is_file() and (mine or now - path.stat().st_mtime > older_than):
                    path.unlink()
                    removed.append(path)
            except FileNotFoundError:  # another run finished or removed it meanwhile
                continue
        return removed

    # -- metrics skipped for missing weights (`--metrics available`) ---------------------------
    def write_skipped(self, skipped: dict[str, str]) -> None:
        write_json_atomic(self.root / SKIPPED, skipped)

    def skipped(self) -> dict[str, str]:
        path = self.root / SKIPPED
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    # -- scores ---------------------------------------------------------------------------
    @property
    def scores_path(self) -> Path:
        return self.root / SCORES

    def score_files(self) -> list[Path]:
        """`scores.jsonl` first, then every worker's `scores-<worker>.jsonl`, by name."""
        workers = sorted(self.root.glob("scores-*.jsonl"))
        return ([self.scores_path] if self.scores_path.exists() else []) + workers

    def records(self) -> list[ScoreRecord]:
        """Every record of every score file, oldest first (stable: file order among equal times);
        a torn last line (crash mid-write) is skipped."""
        records = []
        for path in self.score_files():
            with open(path, encoding="utf-8", errors="replace") as handle:
                for number, line in enumerate(handle, start=1):
                    try:
                        data = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line torn by a crash is never valid JSON
                    records.append(_record(data, f"{path}:{number}"))
        records.sort(key=lambda record: record.time)
        return records

    def latest(self) -> dict[tuple[str, str], ScoreRecord]:
        """The newest record for each (case, metric)."""
        return {(r.case, r.metric): r for r in self.records()}

    def done(self, identities: dict[str, str] | None = None) -> set[tuple[str, str]]:
        """(case, metric) pairs with a finished result, errors excluded (they are retried). With
        `identities` (metric -> `Metric.identity()`), a result made by another configuration of
        its metric is not done: a changed option or weight file rescores."""
        done = set()
        for key, record in self.latest().items():
            if not record.ok or record.metric == GENERATE:
                continue
            if (
                identities is not None
                and record.metric in identities
                and record.config != identities[record.metric]
            ):
                continue
            done.add(key)
        return done

    def append(self, record: ScoreRecord, worker: str | None = None) -> None:
        """Append `record` to `scores.jsonl`, or to `scores-<worker>.jsonl` for a named worker."""
        path = self.scores_path if worker is None else self.root / f"scores-{worker}.jsonl"
        line = json.dumps(asdict(record), ensure_ascii=False, default=_json_default) + "\n"
        self.root.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            if (
                path not in self._tails_checked
                and handle.tell() > 0
                and not _ends_with_newline(path)
            ):
                handle.write("\n")  # isolate a torn line left by a crash
            self._tails_checked.add(path)
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())


def _record(data: Any, where: str) -> ScoreRecord:
    """A `ScoreRecord` from one parsed line, its field types checked: a value "abc" (or `true`) would
    otherwise reach the leaderboard's means. NaN and infinities are numbers and pass."""
    if not isinstance(data, dict):
        raise ResultFileError(
            f"{where}: a score line must be a JSON object, got {type(data).__name__}"
        )
    unknown = set(data) - set(ScoreRecord.__dataclass_fields__)
    if unknown or not {"case", "metric", "value"} <= set(data):
        raise ResultFileError(
            f"{where}: a score line needs case, metric and value (and no {sorted(unknown)})"
        )
    value, seconds = data["value"], data.get("seconds", 0.0)
    problems = [
        not isinstance(data["case"], str) and "case must be text",
        not isinstance(data["metric"], str) and "metric must be text",
        value is not None
        and not _is_number(value)
        and f"value must be a number or null, got {value!r}",
        not isinstance(data.get("details", {}), dict) and "details must be an object",
        not _is_number(seconds) and f"seconds must be a number, got {seconds!r}",
        not _is_number(data.get("time", 0.0))
        and f"time must be a number, got {data.get('time')!r}",
        data.get("config") is not None
        and not isinstance(data["config"], str)
        and "config must be text or null",
        data.get("error") is not None
        and not isinstance(data["error"], str)
        and "error must be text or null",
    ]
    problems = [p for p in problems if p]
    if problems:
        raise ResultFileError(f"{where}: {'; '.join(problems)}")
    return ScoreRecord(**data)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def package_versions(
    names: tuple[str, ...] = (
        "kaleido-bench",
        "torch",
        "torchvision",
        "transformers",
        "diffusers",
        "open_clip_torch",
        "timm",
        "insightface",
        "onnxruntime",
        "dlib-bin",
        "opencv-python-headless",
        "av",
        "numpy",
    ),
) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the source tree this package runs from, when it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=path or Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
