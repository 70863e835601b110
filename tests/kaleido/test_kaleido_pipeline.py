"""The tiny pipeline end to end: valid mp4 of the requested frames, size and fps, seeded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kaleido_bench.core.video import decode_video
from kaleido_bench.kaleido.pipeline import KaleidoPipeline, write_mp4
from kaleido_bench.kaleido.references import load_reference_image


def test_same_seed_same_frames_other_seed_other_frames(tiny_pipeline, astronaut_png):
    image = load_reference_image(astronaut_png)
    a = tiny_pipeline("an astronaut waves", [image], seed=7, num_steps=2)
    b = KaleidoPipeline.tiny()("an astronaut waves", [image], seed=7, num_steps=2)  # a fresh build
    c = tiny_pipeline("an astronaut waves", [image], seed=8, num_steps=2)
    assert a.shape == (9, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_mp4_has_requested_frames_size_and_fps(tiny_pipeline, astronaut_png, tmp_path):
    frames = tiny_pipeline("a cat", [load_reference_image(astronaut_png)] * 2, height=48, width=80,
                           num_frames=5, num_steps=2, seed=0)  # fmt: skip
    assert frames.shape == (5, 48, 80, 3)
    video = decode_video(write_mp4(tmp_path / "out.mp4", frames, 16))
    assert video.frames.shape == (5, 48, 80, 3)
    assert video.fps == 16


def test_batched_cfg_equals_two_forwards(astronaut_png):
    image = load_reference_image(astronaut_png)
    batched = KaleidoPipeline.tiny()
    batched.batch_cfg = True
    sequential = KaleidoPipeline.tiny()
    sequential.batch_cfg = False
    a = batched("a dog runs", [image], num_steps=2, seed=3)
    b = sequential("a dog runs", [image], num_steps=2, seed=3)
    assert np.abs(a.astype(int) - b).max() <= 1


def test_unconditional_branch_keeps_the_references(tiny_pipeline, astronaut_png, monkeypatch):
    """Text-only CFG: both branches get the same reference latents, only the text differs."""
    seen = []
    forward = tiny_pipeline.transformer.forward

    def spy(hidden_states, timestep, encoder_hidden_states, reference_latents=None, **kwargs):
        seen.append((hidden_states.shape[0], encoder_hidden_states.shape[0], reference_latents))
        return forward(hidden_states, timestep, encoder_hidden_states, reference_latents, **kwargs)

    monkeypatch.setattr(tiny_pipeline.transformer, "forward", spy)
    tiny_pipeline("a dog", [load_reference_image(astronaut_png)], num_steps=1, seed=0)
    ((batch, text_batch, refs),) = seen
    assert batch == text_batch == 2 and refs.shape[2] == 1
    text = tiny_pipeline.encode_prompts(["a dog", tiny_pipeline.config.sampling.negative_prompt])
    assert not torch.equal(text[0], text[1])


def test_zero_references_is_plain_text_to_video(tiny_pipeline):
    frames = tiny_pipeline("a beach at sunset", [], num_steps=1, seed=0)
    assert frames.shape == (9, 64, 64, 3)


def test_bad_sizes_are_refused(tiny_pipeline):
    with pytest.raises(ValueError, match="4k \\+ 1"):
        tiny_pipeline("x", [], num_frames=8, num_steps=1)
    with pytest.raises(ValueError, match="multiples of 16"):
        tiny_pipeline("x", [], height=40, num_steps=1)


def test_negative_prompt_is_the_release_one(tiny_config):
    negative = tiny_config.sampling.negative_prompt
    assert negative.startswith("色调艳丽，过曝") and negative.endswith("倒着走")
    assert "画得不好的脸部" not in negative and "画得不好的手部" in negative


def _write_tokenizer(folder):
    """A tiny word-level tokenizer in HF files (the release ships umT5's in `umt5-xxl/`)."""
    import json

    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    words = ["<pad>", "</s>", "<unk>", "a", "cat", "dog", "runs", "on", "the", "grass"]
    tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "pad_token": "<pad>",
                "eos_token": "</s>",
                "unk_token": "<unk>",
            }
        )
    )


def test_from_pretrained_reads_the_release_layout(
    tmp_path, astronaut_png, wan_shaped_vae_config, wan_vae_name
):
    """model/ (SAT), Wan2.1_VAE.pth, umt5-xxl/ (Wan .pth + tokenizer): loaded, converted once, run."""
    from dataclasses import replace

    from kaleido_bench.kaleido import checkpoint as ck
    from kaleido_bench.kaleido import text_encoder as te
    from kaleido_bench.kaleido import vae as vae_ops
    from kaleido_bench.kaleido.config import KALEIDO_TINY
    from kaleido_bench.kaleido.transformer import build_transformer

    config = replace(KALEIDO_TINY, vae=wan_shaped_vae_config)
    transformer = build_transformer(config.transformer, seed=1)
    ck.write_sat_checkpoint(
        transformer.state_dict(), tmp_path / "model", config.transformer.num_layers
    )
    vae = vae_ops.build_vae(config.vae, seed=2)
    torch.save(
        {wan_vae_name(k): v for k, v in vae.state_dict().items()}, tmp_path / vae_ops.WAN_VAE_FILE
    )
    (tmp_path / "umt5-xxl").mkdir()
    umt5 = te.build_umt5(config.text_encoder, seed=3)
    torch.save(
        te.hf_to_wan_t5(umt5.state_dict(), config.text_encoder.num_layers),
        tmp_path / "umt5-xxl" / te.WAN_T5_FILE,
    )
    _write_tokenizer(tmp_path / "umt5-xxl")

    pipe = KaleidoPipeline.from_pretrained(
        tmp_path, config=config, dtype=torch.float32, vae_dtype=torch.float32, device="cpu"
    )
    assert (tmp_path / "model-diffusers" / ck.INDEX_FILE).is_file()
    image = load_reference_image(astronaut_png)
    frames = pipe(
        "a cat runs on the grass", [image], height=32, width=32, num_frames=5, num_steps=2, seed=0
    )
    assert frames.shape == (5, 32, 32, 3)
    reference = KaleidoPipeline(
        transformer, vae, te.UMT5TextEncoder(umt5, pipe.text_encoder.tokenizer, 32), config
    )
    assert np.array_equal(frames, reference("a cat runs on the grass", [image], height=32, width=32, num_frames=5,
                                            num_steps=2, seed=0))  # fmt: skip
