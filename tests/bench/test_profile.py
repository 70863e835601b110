"""`kaleido-bench profile` on tiny synthetic videos: seconds per stage and the models each metric holds.

Only weight-free metrics: `motion_amplitude` and `decoupling_hist`. One video is named after a
`mini` case with an object reference, the other is no case at all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kaleido_bench.bench.profile import profile_videos
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


def test_profile_table_names_the_models(videos):
    table = profile_videos(videos, suite="mini", metric_names=METRICS)
    assert list(table["stage"]) == ["decode (PyAV rgb24)", *METRICS]
    assert list(table["models"]) == ["", "none (no learned weights)", "none (no learned weights)"]


def test_cli_profile_plain_has_models_column(videos, run_cli):
    code, out, err = run_cli(
        "profile",
        *map(str, videos),
        "--suite",
        "mini",
        "--metrics",
        "motion_amplitude",
        "--device",
        "cpu",
        "--format",
        "csv",
    )
    assert code == 0, err
    assert out.startswith("stage,models,setup_s,s_per_video") and "none (no learned weights)" in out


def test_cli_profile_names_the_missing_reference_and_how_to_give_it(videos, tmp_path, run_cli):
    """A video named after a case whose images are not under the data root: one clear error, exit 2."""
    import shutil

    named = shutil.copy(
        videos[0], tmp_path / "faceobj_14.mp4"
    )  # a case of OpenS2V-Eval's Open domain
    code, _, err = run_cli(
        "profile",
        str(named),
        "--suite",
        "opens2v",
        "--data-root",
        str(tmp_path),
        "--metrics",
        "decoupling_hist",
        "--device",
        "cpu",
    )
    assert code == 2
    assert "does not exist" in err and "--data-root" in err
