"""Kaleido training (issue 17 part 5): objective, shards, overfitting, exact resume, CLI.

Everything runs on the CPU with the tiny Kaleido (random weights from fixed seeds) on a shard
written here from real packaged images (skimage astronaut / chelsea / coffee) and synthetic
clips. torch runs on one thread: on a shared 2-core machine that is many times faster, and the
resume test compares runs made under the same setting.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kaleido_bench.kaleido.train.config import TrainConfig, TrainConfigError
from kaleido_bench.kaleido.train.data import (
    COLUMNS,
    PositionSampler,
    SampleToWrite,
    ShardDataset,
    ShardError,
    read_shard,
    sample_order,
    write_shard,
)
from kaleido_bench.kaleido.train.objective import (
    drop_captions,
    flow_matching_loss,
    patches_per_frame,
    sample_sigmas,
    shift_mu,
)
from kaleido_bench.kaleido.train.trainer import (
    build_models,
    encode_sample,
    evaluation_loss,
    run,
    step_generator,
)

SIZE, FRAMES = 32, 5
CAPTIONS = ("an astronaut waves", "a cat turns its head", "a cup of coffee steams")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def synthetic_clip(seed: int, frames: int = FRAMES, size: int = SIZE) -> np.ndarray:
    """(T, H, W, 3) uint8: coloured gratings drifting at a per-channel speed."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None, None]
    y, x = np.mgrid[0:size, 0:size]
    base = rng.integers(0, 255, 3)
    clip = np.zeros((frames, size, size, 3), np.uint8)
    for c in range(3):
        wave = 60 * np.sin((x + 3 * t * (c + 1)) / 4.0) + 50 * np.cos(y / 3.0)
        clip[..., c] = (base[c] + wave).clip(0, 255)
    return clip


@pytest.fixture(scope="module")
def shard(tmp_path_factory) -> Path:
    from skimage import data

    images = [data.astronaut(), data.chelsea(), data.coffee()]
    samples = [
        SampleToWrite(f"s{i}", caption, synthetic_clip(i), [Image.fromarray(images[i]), Image.fromarray(images[(i + 1) % 3])],
                      ["cutout", "inpainted"])
        for i, caption in enumerate(CAPTIONS)
    ]  # fmt: skip
    return write_shard(tmp_path_factory.mktemp("shard") / "shard-00000", samples)


def tiny_config(shard: Path, output_dir: Path, **changes) -> TrainConfig:
    values = dict(
        data=(str(shard),), output_dir=str(output_dir), model="kaleido-tiny", height=SIZE, width=SIZE,
        num_frames=FRAMES, learning_rate=3e-3, grad_clip=1.0, max_steps=6, save_every=3, mixed_precision="no",
        gradient_checkpointing=False,
    )  # fmt: skip
    values.update(changes)
    return TrainConfig(**values)


# objective -------------------------------------------------------------------------------------


def test_sigma_shift_matches_hand_computed_values():
    # 512x896 -> 64x112 latents -> 32x56 patches: L = 1792, mu = 0.5 + 1536 * 0.65 / 3840 = 0.76
    assert patches_per_frame(64, 112, (1, 2, 2)) == 1792
    assert shift_mu(1792) == pytest.approx(0.76)
    assert shift_mu(256) == pytest.approx(0.5)
    from kaleido_bench.kaleido.scheduler import training_sigma_shift

    # sigma' = e^0.76 / (e^0.76 + 1/sigma - 1): e^0.76 = 2.1382762204968; sigma 0.5 -> 0.6813537,
    # sigma 0.25 -> 2.1382762 / 5.1382762 = 0.4161466
    assert float(
        training_sigma_shift(torch.tensor(0.5, dtype=torch.float64), 1792)
    ) == pytest.approx(0.6813537, abs=1e-7)
    assert float(
        training_sigma_shift(torch.tensor(0.25, dtype=torch.float64), 1792)
    ) == pytest.approx(0.4161466, abs=1e-7)
    # sampled sigmas are exactly shift(sigmoid(u)) of the generator's normals
    u = torch.randn(1000, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = math.exp(0.76) / (math.exp(0.76) + 1 / torch.sigmoid(u) - 1)
    sigmas = sample_sigmas(1000, 1792, torch.Generator().manual_seed(3))
    torch.testing.assert_close(sigmas, expected.float())
    assert float(sigmas.min()) > 0.0 and float(sigmas.max()) < 1.0
    assert float(sigmas.median()) == pytest.approx(
        0.6813537, abs=0.03
    )  # median of sigmoid(N) is 0.5


def test_caption_dropout_is_seeded_and_hits_ten_percent():
    captions = [f"caption {i}" for i in range(20000)]
    dropped = drop_captions(captions, 0.1, torch.Generator().manual_seed(0))
    rate = sum(c == "" for c in dropped) / len(captions)
    assert 0.093 < rate < 0.107  # binomial sd 0.0021
    assert dropped == drop_captions(captions, 0.1, torch.Generator().manual_seed(0))
    assert dropped != drop_captions(captions, 0.1, torch.Generator().manual_seed(1))
    assert all(d in ("", c) for d, c in zip(dropped, captions))
    # as the trainer draws them: one generator per (seed, step)
    steps = [drop_captions(["x"], 0.1, step_generator(0, step))[0] for step in range(4000)]
    assert 0.085 < steps.count("") / len(steps) < 0.115


def _loss_inputs(tiny_config_obj, num_refs: int = 2):
    from kaleido_bench.kaleido.transformer import build_transformer

    transformer = build_transformer(tiny_config_obj.transformer, seed=5)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, 4, 2, 4, 4, generator=g)
    noise = torch.randn(1, 4, 2, 4, 4, generator=g)
    refs = torch.randn(1, 4, num_refs, 4, 4, generator=g)
    text = torch.randn(1, 8, tiny_config_obj.transformer.text_dim, generator=g)
    return transformer, x0, noise, torch.tensor([0.4]), text, refs


def test_loss_ignores_reference_tokens(tiny_config):
    """Perturbing the last block's outputs at the reference tokens leaves the loss bit-identical;
    the same perturbation on video tokens, or of references before the last block, changes it."""
    transformer, x0, noise, sigma, text, refs = _loss_inputs(tiny_config)
    base = flow_matching_loss(transformer, x0, noise, sigma, text, refs)
    ref_tokens = refs.shape[2] * 2 * 2  # 2 references x (4/2) x (4/2) patches

    def perturbed(block, tokens):
        calls = []

        def hook(module, args, output):
            calls.append(1)
            output = output.clone()
            output[:, tokens] += 1000.0 * torch.randn_like(output[:, tokens])
            return output

        handle = block.register_forward_hook(hook)
        try:
            return flow_matching_loss(transformer, x0, noise, sigma, text, refs), calls
        finally:
            handle.remove()

    loss, calls = perturbed(transformer.blocks[-1], slice(0, ref_tokens))
    assert calls and torch.equal(loss, base)
    loss, _ = perturbed(transformer.blocks[-1], slice(ref_tokens, ref_tokens + 4))
    assert abs(float((loss - base).detach())) > 0.01  # video tokens do reach the loss (0.22 here)
    loss, _ = perturbed(transformer.blocks[0], slice(0, ref_tokens))
    assert not torch.equal(loss, base)  # references condition the video through attention


def test_loss_refuses_output_with_reference_frames(tiny_config):
    """A transformer whose output still carried the reference frames could not be scored silently."""
    from diffusers.models.modeling_outputs import Transformer2DModelOutput

    transformer, x0, noise, sigma, text, refs = _loss_inputs(tiny_config)
    handle = transformer.register_forward_hook(
        lambda module, args, output: Transformer2DModelOutput(
            sample=torch.cat([refs, output.sample], dim=2)
        )
    )
    try:
        with pytest.raises(RuntimeError, match="video tokens only"):
            flow_matching_loss(transformer, x0, noise, sigma, text, refs)
    finally:
        handle.remove()


def test_gradient_checkpointing_recomputes_blocks_with_identical_gradients(tiny_config):
    transformer, x0, noise, sigma, text, refs = _loss_inputs(tiny_config)
    transformer.train()

    def loss_and_grads():
        transformer.zero_grad()
        loss = flow_matching_loss(transformer, x0, noise, sigma, text, refs)
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in transformer.named_parameters()}

    calls = []
    transformer.blocks[0].register_forward_pre_hook(lambda *a: calls.append(1))
    plain_loss, plain_grads = loss_and_grads()
    assert len(calls) == 1
    transformer.enable_gradient_checkpointing()
    calls.clear()
    loss, grads = loss_and_grads()
    assert len(calls) == 2  # forward + recomputation in backward
    torch.testing.assert_close(loss, plain_loss, rtol=0, atol=0)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, plain_grads[name], rtol=1e-6, atol=1e-7, msg=name)


# shards ----------------------------------------------------------------------------------------


def test_shard_round_trip(shard):
    import pandas as pd

    manifest = json.loads((shard / "manifest.json").read_text())
    frame = pd.read_parquet(shard / manifest["parquet"][0])
    assert list(frame.columns) == list(COLUMNS)
    records = read_shard(shard)
    assert [r.sample_id for r in records] == ["s0", "s1", "s2"]
    assert records[0].kinds == ("cutout", "inpainted")
    dataset = ShardDataset([shard.parent], height=SIZE, width=SIZE, num_frames=FRAMES, fps=16.0)
    sample = dataset[1]
    assert sample.caption == CAPTIONS[1] and len(sample.references) == 2
    assert sample.pixels.shape == (3, FRAMES, SIZE, SIZE)
    decoded = ((sample.pixels.permute(1, 2, 3, 0) + 1) * 127.5).numpy()
    assert np.abs(decoded - synthetic_clip(1)).mean() < 8.0  # H.264 at crf 10
    # a 16x16 crop of frames 0, 2 at 8 fps: every other source frame, resized
    half = ShardDataset([shard], height=16, width=16, num_frames=2, fps=8.0)[1].pixels
    assert half.shape == (3, 2, 16, 16)


def test_shard_errors_name_the_problem(shard, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(shard, broken)
    (broken / "videos" / "s2.mp4").unlink()
    with pytest.raises(ShardError, match="s2.mp4 is missing"):
        read_shard(broken)
    with pytest.raises(ShardError, match="manifest.json"):
        ShardDataset([tmp_path / "nothing"], height=SIZE, width=SIZE, num_frames=FRAMES, fps=16.0)
    with pytest.raises(ShardError, match="frames"):
        ShardDataset([shard], height=SIZE, width=SIZE, num_frames=FRAMES + 4, fps=16.0)[0]


def test_sample_order_resumes_and_splits_between_processes():
    full = sample_order(5, seed=7)
    first = [next(full) for _ in range(23)]
    assert sorted(first[:5]) == list(range(5)) and first[:5] != first[5:10]  # epochs reshuffled
    tail = sample_order(5, seed=7, start=9)
    assert [next(tail) for _ in range(14)] == first[9:]
    # step 2 onwards, 2 processes x 2 samples: rank 0 takes positions 8,9; rank 1 takes 10,11
    ranks = [
        iter(PositionSampler(5, 7, start_step=2, batch_size=2, rank=r, world_size=2))
        for r in (0, 1)
    ]
    assert [next(ranks[0]) for _ in range(4)] == [first[8], first[9], first[12], first[13]]
    assert [next(ranks[1]) for _ in range(4)] == [first[10], first[11], first[14], first[15]]


def test_config_from_yaml_refuses_unknown_keys(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("data: [a]\noutput_dir: out\nmodel: kaleido-tiny\nbetas: [0.9, 0.99]\n")
    config = TrainConfig.from_yaml(path)
    assert config.data == ("a",) and config.betas == (0.9, 0.99)
    assert (
        config.learning_rate,
        config.weight_decay,
        config.grad_clip,
        config.caption_dropout,
    ) == (5e-6, 1e-4, 0.1, 0.1)
    path.write_text("data: [a]\noutput_dir: out\nlearning_rat: 1e-4\n")
    with pytest.raises(TrainConfigError, match="learning_rat"):
        TrainConfig.from_yaml(path)
    with pytest.raises(TrainConfigError, match="mixed_precision"):
        TrainConfig(data=("a",), output_dir="o", mixed_precision="fp8")


# training --------------------------------------------------------------------------------------


def test_tiny_kaleido_overfits_a_shard(shard, tmp_path):
    """Measured (1 thread, CPU): 150 steps at lr 3e-3 take the fixed-noise loss 1.322 -> 0.136 (x9.7)
    and the mean step loss 0.949 (steps 1-30) -> 0.097 (121-150); asserted: x4 and x3."""
    config = tiny_config(
        shard, tmp_path / "run", max_steps=150, save_every=1000, cache_latents=True
    )
    dataset = ShardDataset(config.data, height=SIZE, width=SIZE, num_frames=FRAMES, fps=16.0)
    samples = [dataset[i] for i in range(len(dataset))]
    models = build_models(config, frozen_dtype=torch.float32, device=torch.device("cpu"))
    sigmas = (0.2, 0.5, 0.8)
    before = evaluation_loss(models, samples, sigmas)
    result = run(config)
    models.transformer = result.transformer
    after = evaluation_loss(models, samples, sigmas)
    assert after < before / 4, (before, after)
    losses = result.losses
    assert np.mean(losses[-30:]) < np.mean(losses[:30]) / 3
    lines = (tmp_path / "run" / "losses.jsonl").read_text().splitlines()
    assert len(lines) == 150 and json.loads(lines[-1])["step"] == 150


def test_resume_continues_the_exact_loss_curve(shard, tmp_path):
    """6 steps straight vs 3 steps, checkpoint, 3 more from it in a new run: identical to the bit.

    Batches of 2 over 3 samples cross epoch boundaries; caption dropout 0.5 makes the step
    generator matter; the VAE encodes in every step (no cache) and blocks are checkpointed."""
    common = dict(batch_size=2, caption_dropout=0.5, gradient_checkpointing=True)
    straight = run(tiny_config(shard, tmp_path / "a", **common))
    assert [c.name for c in straight.checkpoints] == ["step-00000003", "step-00000006"]
    resumed = run(
        tiny_config(shard, tmp_path / "b", resume_from=str(straight.checkpoints[0]), **common)
    )
    assert [r.step for r in resumed.records] == [4, 5, 6]
    assert resumed.losses == straight.losses[3:]
    assert [r.sigmas for r in resumed.records] == [r.sigmas for r in straight.records[3:]]
    for (name, a), b in zip(
        straight.transformer.state_dict().items(), resumed.transformer.state_dict().values()
    ):
        assert torch.equal(a, b), name


def test_training_encodes_references_one_frame_each(shard):
    config = TrainConfig(data=(str(shard),), output_dir="unused", model="kaleido-tiny")
    models = build_models(config, frozen_dtype=torch.float32, device=torch.device("cpu"))
    sample = ShardDataset([shard], height=SIZE, width=SIZE, num_frames=FRAMES, fps=16.0)[0]
    encoded = encode_sample(models, sample, sample.caption)
    assert encoded.latents.shape == (1, 4, 2, SIZE // 8, SIZE // 8)
    assert encoded.reference_latents.shape == (1, 4, 2, SIZE // 8, SIZE // 8)
    # the second reference is not lost (the release's training path keeps only the first)
    from kaleido_bench.kaleido.pipeline import KaleidoPipeline

    pipeline = KaleidoPipeline(models.transformer, models.vae, models.text_encoder, models.config)
    torch.testing.assert_close(
        encoded.reference_latents, pipeline.encode_references(list(sample.references), SIZE, SIZE)
    )


def test_cli_train_command(shard, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from kaleido_bench.bench.cli import app

    config = tiny_config(shard, tmp_path / "cli", max_steps=1, save_every=1).to_dict()
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(app, ["train", "--config", str(path)])
    assert result.exit_code == 0, result.output
    checkpoint = tmp_path / "cli" / "checkpoints" / "step-00000001"
    saved = {p.name for p in checkpoint.iterdir()}
    assert {
        "model.safetensors",
        "optimizer.bin",
        "random_states_0.pkl",
    } <= saved  # + scheduler, step
    # `resume_from: latest` picks that checkpoint up and goes on to step 2
    path.write_text(yaml.safe_dump({**config, "max_steps": 2, "resume_from": "latest"}))
    assert CliRunner().invoke(app, ["train", "--config", str(path)]).exit_code == 0
    steps = [
        json.loads(line)["step"]
        for line in (tmp_path / "cli" / "losses.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2]
    path.write_text(yaml.safe_dump({**config, "epochs": 3}))
    result = CliRunner().invoke(app, ["train", "--config", str(path)])
    assert result.exit_code != 0 and "epochs" in str(result.exception)


@pytest.mark.parametrize("param_dtype", ["fp32", "bf16"])
def test_train_step_benchmark_runs_at_the_tiny_size(param_dtype):
    """benchmarks/train_step_14b.py at --size tiny (its 14B run needs a GPU)."""
    import importlib.util

    path = Path(__file__).parents[2] / "benchmarks" / "train_step_14b.py"
    spec = importlib.util.spec_from_file_location("train_step_14b", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(
        ["--size", "tiny", "--device", "cpu", "--steps", "2", "--param-dtype", param_dtype]
    )
    assert results["tokens"] == (2 + 3) * 2 * 2 and results["gradient_checkpointing"]
    assert results["param_dtype"] == {"fp32": "float32", "bf16": "bfloat16"}[param_dtype]
    assert all(math.isfinite(x) for x in results["losses"]) and len(results["step_seconds"]) == 1


def test_module_entry_refuses_bad_configs(tmp_path, capsys):
    from kaleido_bench.kaleido.train.__main__ import main

    assert main([]) == 2
    path = tmp_path / "bad.yaml"
    path.write_text("data: [a]\noutput_dir: out\nlr: 1\n")
    assert main([str(path)]) == 2
    assert "unknown training config key(s): lr" in capsys.readouterr().err


def test_bf16_autocast_keeps_float32_master_weights(shard, tmp_path):
    """The GPU precision setting on the CPU: bf16 compute and frozen encoders, fp32 weights."""
    common = dict(max_steps=2, save_every=100)
    fp32 = run(tiny_config(shard, tmp_path / "fp32", **common))
    bf16 = run(
        tiny_config(
            shard, tmp_path / "bf16", mixed_precision="bf16", frozen_dtype="bfloat16", **common
        )
    )
    assert all(p.dtype == torch.float32 for p in bf16.transformer.parameters())
    assert all(math.isfinite(x) for x in bf16.losses)
    assert bf16.losses != fp32.losses  # bf16 really computed
    assert bf16.losses == pytest.approx(fp32.losses, rel=0.05)


@pytest.mark.slow
def test_two_cpu_processes_train_and_save_both_rng_states(shard, tmp_path):
    """DDP over gloo through accelerate (torchrun, ACCELERATE_USE_CPU): the multi-process path
    that runs on a CPU. FSDP2 itself needs GPUs (accelerate enables it for GPU back-ends only)."""
    import os
    import subprocess
    import sys

    import yaml

    config = tiny_config(shard, tmp_path / "ddp", max_steps=2, save_every=2).to_dict()
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "ACCELERATE_USE_CPU": "true",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "kaleido_bench.kaleido.train", str(path)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    checkpoint = tmp_path / "ddp" / "checkpoints" / "step-00000002"
    assert {"random_states_0.pkl", "random_states_1.pkl"} <= {p.name for p in checkpoint.iterdir()}
    lines = (tmp_path / "ddp" / "losses.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2]  # the main process alone writes
