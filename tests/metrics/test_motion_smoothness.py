"""MotionSmoothness: windows, padding, the 0.025 rule, and the official values on a cut clip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kaleido_bench.core.cases import Case
from kaleido_bench.core.errors import WeightsMissingError
from kaleido_bench.core.video import decode_video
from kaleido_bench.metrics.base import get_metric_class
from kaleido_bench.metrics.motion_smoothness import (
    CLIP_MEAN_COLOUR,
    MotionSmoothness,
    artifact_frames,
    expand2square,
    sliding_windows,
    smoothness_value,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "qalign"


def test_windows_clip_at_both_ends_as_the_official_loader():
    assert sliding_windows(5) == [(0, 0, 0), (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 3, 4)]
    assert sliding_windows(1) == [(0, 0, 0)]
    assert sliding_windows(2) == [(0, 0, 0), (0, 1, 1)]  # start == 0: padded at the back
    windows = sliding_windows(69)
    assert len(windows) == 69 and windows[-1] == (67, 67, 68) and windows[40] == (39, 40, 41)


def test_expand2square_pads_the_short_side_with_the_clip_mean_colour():
    assert CLIP_MEAN_COLOUR == (122, 116, 104)
    wide = np.full((3, 6, 3), 7, np.uint8)
    square = expand2square(wide)
    assert square.shape == (6, 6, 3)
    assert (square[1:4] == 7).all()  # pasted at (0, (6 - 3) // 2)
    assert (square[[0, 4, 5]] == CLIP_MEAN_COLOUR).all()
    tall = np.full((5, 2, 3), 9, np.uint8)
    assert (expand2square(tall)[:, 1:3] == 9).all() and (
        expand2square(tall)[:, [0, 3, 4]] == CLIP_MEAN_COLOUR
    ).all()


@pytest.mark.parametrize(
    ("scores", "flagged", "value"),
    [
        ([0.5, 0.5, 0.53, 0.53], [1, 2], 0.5),
        ([0.0, 0.025, 0.05], [], 1.0),  # exactly 0.025 is not a jump (strict >)
        ([0.0, 0.1, 0.2, 0.2, 0.2], [0, 1, 2], 0.4),  # overlapping steps count a frame once
        ([0.9, 0.8, 0.8, 0.8, 0.7, 0.7], [0, 1, 3, 4], 1 - 4 / 6),  # falls count as jumps
        ([0.7], [], 1.0),  # one window: nothing to compare (the official gives 1.0)
    ],
)
def test_the_0025_rule_flags_both_frames_of_a_step(scores, flagged, value):
    assert artifact_frames(scores).tolist() == flagged
    assert smoothness_value(scores) == value


def test_metric_reproduces_official_values_on_the_cut_clip(ctx):
    """The clip cuts between the shared videos every 6 frames: 10 of its 24 frames are flagged."""
    official = json.loads((FIXTURES / "official_outputs.json").read_text())["videos"]["cuts"]
    metric = get_metric_class("motion_smoothness")(qalign_path=str(FIXTURES / "one-align-tiny"))
    metric.setup(ctx)
    result = metric.score(decode_video(FIXTURES / "cuts.mp4"), Case("cuts", "", ()), ctx)
    np.testing.assert_allclose(
        result.details["window_scores"], official["window_scores"], rtol=0, atol=1e-3
    )
    assert (
        result.details["flagged_frames"] == official["flagged"] and len(official["flagged"]) == 10
    )
    assert result.value == official["motion_smoothness"]
    assert result.details["dtype"] == "float32" and result.details["frames"] == 24


def test_missing_weights_say_how_to_download_them(ctx):
    with pytest.raises(
        WeightsMissingError, match="kaleido-bench weights download motion_smoothness"
    ):
        MotionSmoothness().setup(ctx)


def test_random_one_align_folder_round_trips_the_key_map(ctx, tmp_path):
    """`random_weights.write_qalign`: the release's key names written by the inverse map load strictly."""
    import torch
    from support.random_weights import write_random_weights

    from kaleido_bench.metrics.qalign import load_qalign

    written = write_random_weights(tmp_path, ["motion_smoothness"], size="tiny")
    folder = written["hf/q-future--one-align"]
    model = load_qalign(folder)
    assert model.config.vision.num_hidden_layers == 2 and len(set(model.label_ids)) == 5
    from safetensors.torch import load_file

    from kaleido_bench.metrics.qalign import official_state

    on_disk = load_file(str(folder / "model.safetensors"))
    back = official_state(model.network, model.config)
    assert back.keys() == on_disk.keys()
    assert all(
        torch.equal(back[k].half(), on_disk[k]) for k in on_disk
    )  # fused q/k/v rows included
    frames = decode_video(FIXTURES / "cuts.mp4").frames[:4]
    metric = MotionSmoothness(qalign_path=str(folder))
    metric.setup(ctx)
    result = metric.score(type("Video", (), {"frames": frames})(), Case("cuts", "", ()), ctx)
    assert 0 <= result.value <= 1 and len(result.details["window_scores"]) == 4
    assert all(torch.isfinite(torch.tensor(result.details["window_scores"])))
