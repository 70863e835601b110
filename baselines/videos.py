"""`videos`: a folder of videos made elsewhere (closed models such as Kling, or OpenS2V downloads).

`-o dir=PATH` names one flat folder holding `<case_id>.mp4` for each case, the layout OpenS2V-Eval
uses for generated videos (SPEC section 2: key = file stem). `generate` links (or, across file
systems, copies) the case's file into the run, atomically, so metrics score it like any other
model's output. Files in the folder that name no case of the suite are never read; a case
without its file fails with a `VideoError` naming the path that was expected.

The folder's absolute path is part of `config()`, so two folders are two runs. Replacing the
files inside one folder does NOT start a new run: give the new results their own folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from kaleido_bench.baselines.base import ModelAdapter, ModelCapabilities, register_model
from kaleido_bench.core.cases import Case
from kaleido_bench.core.errors import ModelOptionError, VideoError


@register_model("videos")
class VideosAdapter(ModelAdapter):
    description = "existing videos read from a folder of <case_id>.mp4 files (-o dir=PATH)"
    label = "external"
    licence = "that of the videos' maker"
    weights_source = "none (a folder of made videos, -o dir)"
    parameters = "that of the videos' maker"
    #: 0 = not fixed: size, length and rate are whatever the files hold
    default_capabilities = ModelCapabilities(None, 0, 0, 0, 0.0)

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - {"dir"})
        if unknown:
            raise ModelOptionError(
                f"model 'videos' has no option(s) {', '.join(unknown)} (known: dir)"
            )
        if not str(options.get("dir") or "").strip():
            raise ModelOptionError(
                "model 'videos' needs the folder of <case_id>.mp4 files: -o dir=PATH"
            )
        folder = Path(str(options["dir"])).expanduser().resolve()
        if not folder.is_dir():
            raise VideoError(
                f"video folder {folder} (model 'videos', -o dir) does not exist or is not a folder"
            )
        self.folder = folder
        super().__init__(dir=str(folder))

    @property
    def capabilities(self) -> ModelCapabilities:
        # size and length are whatever the folder holds; any number of references
        return ModelCapabilities(max_references=None)

    def video_path(self, case: Case) -> Path:
        """Where the case's video must be: `<dir>/<case id>.mp4`."""
        path = self.folder / f"{case.id}.mp4"
        if path.parent != self.folder:  # a case id with a path separator
            raise VideoError(
                f"case id {case.id!r} cannot name a file in the video folder {self.folder}"
            )
        return path

    def generate(self, case: Case, seed: int, out_path: Path) -> None:
        """Place the folder's video for `case` at `out_path`; the seed is ignored (one video a case)."""
        source = self.video_path(case)
        if not source.is_file():
            raise VideoError(f"no video for case {case.id!r}: expected {source}")
        link_or_copy_atomic(source, Path(out_path))


def link_or_copy_atomic(source: Path, target: Path) -> None:
    """Hard-link `source` to `target` (a copy where links fail); `target` appears only when complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".mp4.tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        tmp_path.unlink()
        try:
            os.link(source, tmp_path)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(source, tmp_path)
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
