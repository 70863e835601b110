"""Q-Align (mPLUG-Owl2) port against the OFFICIAL code's outputs on a tiny random one-align.

The fixtures (`tests/fixtures/qalign/`) were written by `make_fixtures.py` running OpenS2V-Nexus
210eb08's `QAlignVideoScorer` under transformers 4.36.1 (fp32, CPU); nothing in them comes
from this package.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from kaleido_bench.core.errors import CheckpointMismatchError
from kaleido_bench.core.video import decode_video
from kaleido_bench.metrics.motion_smoothness import qalign_pixels, sliding_windows
from kaleido_bench.metrics.qalign import (
    LABELS,
    OFFICIAL_VISION_ATTENTION,
    SlowLlamaTokenizer,
    frame_tokens,
    label_token_ids,
    load_qalign,
    prompt_input_ids,
    quality_scores,
    window_label_logits,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "qalign"
TINY = FIXTURES / "one-align-tiny"


@pytest.fixture(scope="module")
def official() -> dict:
    return json.loads((FIXTURES / "official_outputs.json").read_text())


@pytest.fixture(scope="module")
def official_fp16() -> dict:
    return json.loads((FIXTURES / "official_outputs_tiny_float16.json").read_text())


@pytest.fixture(scope="module")
def model():
    return load_qalign(TINY)


@pytest.mark.parametrize("legacy", [True, False])
def test_slow_tokenizer_matches_transformers_436_slow_llama_tokenizer(official, legacy):
    tokenizer = SlowLlamaTokenizer(TINY / "tokenizer.model", legacy=legacy)
    for text, ids in official["tokenizer_probes"][f"legacy_{legacy}"].items():
        assert tokenizer(text) == ids, text


def test_prompt_and_label_ids_are_the_official_ones(official, model):
    tokenizer = SlowLlamaTokenizer.from_folder(TINY)
    assert prompt_input_ids(tokenizer) == official["prompt_input_ids"] == model.input_ids
    assert label_token_ids(tokenizer) == official["label_ids"] == model.label_ids
    assert len(set(model.label_ids)) == len(LABELS)  # id_[1]: the label piece, not the BOS


@pytest.mark.parametrize("case_id", ["faceobj_14", "singleface_3"])
def test_window_scores_match_official_on_real_videos_at_both_ends(
    shared_dir, official, model, case_id
):
    """Windows 0-4 and the last two (frames 0-5 and T-3..T-1): the end rules on real frames."""
    frames = decode_video(shared_dir / f"opens2v/videos/{case_id}.mp4").frames
    expected = official["videos"][case_id]
    count = len(frames)
    assert count == expected["frames"] == 69
    chosen = [0, 1, 2, 3, 4, count - 2, count - 1]
    windows = [sliding_windows(count)[i] for i in chosen]
    used = sorted({i for window in windows for i in window})
    tokens = frame_tokens(model, qalign_pixels(frames[used]))
    local = [tuple(used.index(i) for i in window) for window in windows]
    logits = window_label_logits(model, tokens, local)
    np.testing.assert_allclose(
        logits.numpy(), np.array(expected["window_logits"])[chosen], atol=1e-4
    )
    np.testing.assert_allclose(
        quality_scores(logits).numpy(),
        np.array(expected["window_scores"])[chosen],
        rtol=0,
        atol=1e-3,
    )


def test_every_frame_is_encoded_once(model):
    """T frames through the vision tower, not 3T as the official loop."""
    calls: list[int] = []
    hook = model.network.vision_model.register_forward_hook(
        lambda m, args, kw, out: calls.append(kw["pixel_values"].shape[0]), with_kwargs=True
    )
    try:
        tokens = frame_tokens(model, torch.zeros(5, 3, 448, 448), batch_size=2)
    finally:
        hook.remove()
    assert sum(calls) == 5 and tokens.shape == (
        5,
        model.config.tokens_per_frame,
        model.config.language.hidden_size,
    )


def _copy_with_state(tmp_path: Path, edit) -> Path:
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "one-align"
    shutil.copytree(TINY, folder)
    state = load_file(str(folder / "model.safetensors"))
    edit(state)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def test_missing_key_is_an_error_naming_key_and_file(tmp_path):
    key = "model.layers.1.self_attn.v_proj.multiway.1.weight"
    folder = _copy_with_state(tmp_path, lambda state: state.pop(key))
    with pytest.raises(
        CheckpointMismatchError,
        match=r"language_model\.layers\.1\.self_attn\.v_proj\.multiway\.1\.weight",
    ) as error:
        load_qalign(folder)
    assert "model.safetensors" in str(error.value)


def test_extra_key_is_an_error_naming_key_and_file(tmp_path):
    key = "model.visual_abstractor.encoder.layers.0.crossattention.attention.extra.weight"
    folder = _copy_with_state(tmp_path, lambda state: state.__setitem__(key, torch.zeros(2)))
    with pytest.raises(
        CheckpointMismatchError, match=f"unexpected key {key} in .*model.safetensors"
    ):
        load_qalign(folder)


def test_vision_key_with_wrong_shape_is_an_error(tmp_path):
    key = "model.vision_model.encoder.layers.0.self_attn.query_key_value.weight"
    folder = _copy_with_state(tmp_path, lambda state: state.__setitem__(key, state[key][:-3]))
    with pytest.raises(CheckpointMismatchError, match="query_key_value"):
        load_qalign(folder)


def test_fp16_follows_the_official_fp16_run(shared_dir, official, official_fp16):
    """The official loop in fp16 (run on a CPU) against ours in fp16 with the official's vision
    attention maths: the same cast points give the same fp16 numbers. fp16 itself moves the
    scores by a few 1e-3 from fp32 (which is why the details keep the per-window scores)."""
    model16 = load_qalign(TINY, dtype="float16", attn_implementation=OFFICIAL_VISION_ATTENTION)
    frames = decode_video(shared_dir / "opens2v/videos/faceobj_14.mp4").frames
    chosen = [0, 1, 2, 3, 4, 5]  # windows over frames 0-6
    tokens = frame_tokens(model16, qalign_pixels(frames[:7]))
    logits = window_label_logits(model16, tokens, sliding_windows(69)[:6])
    scores = quality_scores(logits)
    assert scores.dtype == torch.float16
    expected16 = np.array(official_fp16["videos"]["faceobj_14"]["window_scores"])[chosen]
    expected32 = np.array(official["videos"]["faceobj_14"]["window_scores"])[chosen]
    assert official_fp16["dtype"] == "float16" and np.abs(expected16 - expected32).max() > 1e-3
    np.testing.assert_allclose(
        logits.float().numpy(),
        np.array(official_fp16["videos"]["faceobj_14"]["window_logits"])[chosen],
        atol=1e-2,
    )
    np.testing.assert_allclose(scores.float().numpy(), expected16, rtol=0, atol=1e-3)


@pytest.mark.parametrize("layout", ["bin", "sharded-safetensors", "sharded-bin"])
def test_every_release_layout_loads_the_same_tensors(tmp_path, model, layout):
    """one-align's exact file layout is not checked here: .bin, sharded files and an index all load."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path / layout
    shutil.copytree(TINY, folder)
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    keys = sorted(state)
    if layout == "bin":
        torch.save(state, folder / "pytorch_model.bin")
    else:
        half = len(keys) // 2
        suffix = "safetensors" if layout == "sharded-safetensors" else "bin"
        stem = "model" if suffix == "safetensors" else "pytorch_model"
        weight_map = {}
        for index, part in enumerate((keys[:half], keys[half:]), start=1):
            name = f"{stem}-0000{index}-of-00002.{suffix}"
            shard = {k: state[k] for k in part}
            if suffix == "safetensors":
                save_file(shard, str(folder / name))
            else:
                torch.save(shard, folder / name)
            weight_map.update(dict.fromkeys(part, name))
        index_name = (
            "model.safetensors.index.json"
            if suffix == "safetensors"
            else "pytorch_model.bin.index.json"
        )
        (folder / index_name).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    loaded = load_qalign(folder).network.state_dict()
    reference = model.network.state_dict()
    assert loaded.keys() == reference.keys()
    assert all(torch.equal(loaded[k], reference[k]) for k in reference)


def test_config_defaults_are_the_release_shapes():
    from kaleido_bench.metrics.qalign import QAlignConfig

    config = QAlignConfig.from_dict({})
    assert (
        config.vision.hidden_size,
        config.vision.num_hidden_layers,
        config.vision.image_size,
    ) == (1024, 24, 448)
    assert (config.abstractor.num_learnable_queries, config.abstractor.num_hidden_layers) == (64, 6)
    assert (config.language.hidden_size, config.language.num_hidden_layers) == (4096, 32)
    assert config.tokens_per_frame == 65
    tiny = QAlignConfig.from_dict(json.loads((TINY / "config.json").read_text()))
    assert (
        tiny.language.rms_norm_eps == 1e-5
        and tiny.vision.patch_size == 14
        and tiny.abstractor.grid_size == 32
    )
