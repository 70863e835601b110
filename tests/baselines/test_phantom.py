"""`phantom-1.3b`, `phantom-14b`, `phantom-tiny`: mp4s on `mini`, the release's reference placement and
guidance, the strict Wan -> diffusers key map, reference fitting, options and weights."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support.wan_checks import check_valid_reproducible_mp4s

from kaleido_bench.baselines.base import get_model_class
from kaleido_bench.bench.suites import load_suite
from kaleido_bench.core.errors import ModelOptionError, WeightsMissingError
from kaleido_bench.kaleido.errors import CheckpointKeyError, CheckpointNotFoundError

SMALL = {"steps": 2, "height": 32, "width": 32, "num_frames": 5}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def mini_cases():
    cases = {case.id: case for case in load_suite("mini").cases}
    return cases["singleface_astronaut"], cases["faceobj_astronaut_rocket"]


@pytest.fixture(scope="module")
def tiny_adapter():
    adapter = get_model_class("phantom-tiny")(**SMALL)
    adapter.setup()
    return adapter


def test_tiny_writes_valid_mp4s_on_mini_reproducibly(tiny_adapter, mini_cases, tmp_path):
    check_valid_reproducible_mp4s(tiny_adapter, *mini_cases, tmp_path, (5, 32, 32))


class Recorder(torch.nn.Module):
    """The real tiny transformer, with every call's inputs and outputs kept."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, []

    @property
    def patch_embedding(self):
        return self.inner.patch_embedding

    def forward(self, x, t, states, return_dict=False):
        out = self.inner(x, t, states, return_dict=False)
        self.calls.append((x.clone(), states.clone(), out[0].float().clone()))
        return out


def test_references_go_after_the_video_and_are_zeroed_in_the_negative_branch(tiny_adapter):
    """subject2video.py lines 292-302: [video; refs] for pos_it and pos_i, [video; zeros] for neg."""
    pipe = tiny_adapter.pipeline
    images = [Image.new("RGB", (40, 24), (200, 30, 30)), Image.new("RGB", (24, 40), (30, 30, 200))]
    refs = pipe.encode_references(images, 32, 32)
    recorder = Recorder(pipe.transformer)
    pipe.transformer = recorder
    try:
        frames = pipe(
            "a red and a blue thing", images, height=32, width=32, num_frames=5, num_steps=2, seed=3
        )
    finally:
        pipe.transformer = recorder.inner
    assert frames.shape == (5, 32, 32, 3)
    assert len(recorder.calls) == 2 * 3  # three passes a step
    text = pipe.encode_prompts(["a red and a blue thing", pipe.config.sampling.negative_prompt])
    for step in range(2):
        (x_it, s_it, o_it), (x_i, s_i, o_i), (x_n, s_n, o_n) = recorder.calls[
            3 * step : 3 * step + 3
        ]
        assert x_it.shape[2] == 2 + 2  # 2 video latent frames + 2 references
        assert torch.equal(x_it[:, :, 2:], refs) and torch.equal(x_i, x_it)
        assert torch.equal(x_n[:, :, :2], x_it[:, :, :2]) and not x_n[:, :, 2:].any()
        assert (
            torch.equal(s_it, text[:1])
            and torch.equal(s_i, text[1:])
            and torch.equal(s_n, text[1:])
        )
    # and the combination neg + 5 (pos_i - neg) + 7.5 (pos_it - pos_i) is what the sampler stepped on
    from kaleido_bench.baselines.wan.scheduler import wan_release_scheduler

    scheduler = wan_release_scheduler(5.0)
    scheduler.set_timesteps(2)
    (x0, _, o_it), (_, _, o_i), (_, _, o_n) = recorder.calls[:3]
    stepped = scheduler.step(
        o_n + 5.0 * (o_i - o_n) + 7.5 * (o_it - o_i), scheduler.timesteps[0], x0.float()
    )[0]
    assert torch.allclose(recorder.calls[3][0][:, :, :2], stepped[:, :, :2])


def test_references_are_fitted_and_padded_white_like_the_release():
    """generate.py load_ref_images: fit keeping aspect (int() sizes), pad white, left/top = delta // 2."""
    from kaleido_bench.kaleido.references import fit_reference

    wide = fit_reference(
        Image.new("RGB", (100, 30), (0, 0, 0)), 32, 64
    )  # 64 x int(64 / (100/30)) = 64 x 19
    array = np.asarray(wide)
    dark_rows = np.flatnonzero(array.min(axis=(1, 2)) < 128)
    assert (dark_rows.min(), dark_rows.max()) == ((32 - 19) // 2, (32 - 19) // 2 + 18)
    assert array[0].min() == 255 and array[-1].min() == 255


def test_zero_references_is_plain_text_to_video(tiny_adapter):
    frames = tiny_adapter.pipeline(
        "a quiet street", [], height=32, width=32, num_frames=5, num_steps=1, seed=0
    )
    assert frames.shape == (5, 32, 32, 3) and frames.dtype == np.uint8


# checkpoint ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_state():
    from kaleido_bench.baselines.wan.phantom import (
        PHANTOM_TINY,
        build_wan_transformer,
        diffusers_to_wan_state,
    )

    model = build_wan_transformer(PHANTOM_TINY.transformer, seed=5)
    return model, diffusers_to_wan_state(model.state_dict(), PHANTOM_TINY.transformer.num_layers)


def test_key_map_is_diffusers_converter_and_covers_the_real_models():
    from diffusers import WanTransformer3DModel

    from kaleido_bench.baselines.wan.phantom import PHANTOM_1_3B, PHANTOM_14B, wan_t2v_key_map

    for config in (PHANTOM_1_3B, PHANTOM_14B):
        table = wan_t2v_key_map(config.transformer.num_layers)
        with torch.device("meta"):
            model = WanTransformer3DModel(**config.transformer.diffusers_kwargs())
        assert sorted(table.values()) == sorted(model.state_dict())  # one-to-one, nothing left over
        assert (
            table["blocks.0.norm3.weight"] == "blocks.0.norm2.weight"
        )  # Wan's norm3 is diffusers' norm2
        assert table["head.modulation"] == "scale_shift_table"
    assert len(wan_t2v_key_map(30)) == 30 * 27 + 15


def test_pth_checkpoint_loads_strictly_and_exactly(tiny_state, tmp_path):
    from kaleido_bench.baselines.wan.phantom import PHANTOM_TINY, load_phantom_transformer

    model, wan_state = tiny_state
    path = tmp_path / "Phantom-Wan-1.3B.pth"
    torch.save(wan_state, path)
    loaded = load_phantom_transformer(path, PHANTOM_TINY.transformer, dtype=torch.float32)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    x, t, text = torch.randn(1, 4, 3, 4, 4), torch.tensor([500]), torch.randn(1, 8, 32)
    assert torch.equal(loaded(x, t, text).sample, model(x, t, text).sample)


def test_missing_and_extra_keys_fail_naming_key_and_file(tiny_state, tmp_path):
    from kaleido_bench.baselines.wan.phantom import PHANTOM_TINY, load_phantom_transformer

    _, wan_state = tiny_state
    missing = {k: v for k, v in wan_state.items() if k != "blocks.1.cross_attn.norm_k.weight"}
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(
        CheckpointKeyError,
        match=r"(?s)missing\.pth does not match.*1 missing key\(s\): blocks\.1\.cross_attn\.norm_k\.weight",
    ):
        load_phantom_transformer(tmp_path / "missing.pth", PHANTOM_TINY.transformer)
    extra = {**wan_state, "img_emb.proj.0.weight": torch.zeros(3)}
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(
        CheckpointKeyError,
        match=r"(?s)extra\.pth does not match.*1 unexpected key\(s\): img_emb\.proj\.0\.weight",
    ):
        load_phantom_transformer(tmp_path / "extra.pth", PHANTOM_TINY.transformer)
    wrong = {**wan_state, "head.head.bias": torch.zeros(5)}
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointKeyError, match=r"(?s)wrong shape.*proj_out\.bias \(5,\)"):
        load_phantom_transformer(tmp_path / "wrong.pth", PHANTOM_TINY.transformer)


def test_sharded_14b_layout_loads_and_a_missing_shard_is_named(tiny_state, tmp_path):
    from safetensors.torch import save_file

    from kaleido_bench.baselines.wan.phantom import (
        PHANTOM_14B_INDEX,
        PHANTOM_TINY,
        load_phantom_transformer,
    )

    model, wan_state = tiny_state
    keys = sorted(wan_state)
    shards = {
        "Phantom_Wan_14B-00001-of-00002.safetensors": keys[::2],
        "Phantom_Wan_14B-00002-of-00002.safetensors": keys[1::2],
    }
    for name, names in shards.items():
        save_file({k: wan_state[k].contiguous() for k in names}, str(tmp_path / name))
    weight_map = {k: name for name, names in shards.items() for k in names}
    (tmp_path / PHANTOM_14B_INDEX).write_text(json.dumps({"weight_map": weight_map}))
    loaded = load_phantom_transformer(tmp_path, PHANTOM_TINY.transformer, dtype=torch.float32)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    (tmp_path / "Phantom_Wan_14B-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointNotFoundError, match="Phantom_Wan_14B-00002-of-00002.safetensors"):
        load_phantom_transformer(tmp_path, PHANTOM_TINY.transformer)


def _kaleido_wan_vae_helpers():
    """`to_wan_name` and `WAN_SHAPED` of the Kaleido tests (tests/kaleido/conftest.py): Wan-format VAE files."""
    spec = importlib.util.spec_from_file_location(
        "kaleido_test_helpers", Path(__file__).parents[1] / "kaleido" / "conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pipeline_loads_the_release_layout(tiny_state, tmp_path):
    """Wan2.1-T2V-1.3B's files (Wan2.1_VAE.pth, umT5 .pth, google/umt5-xxl/) + Phantom-Wan-1.3B.pth -> a video."""
    from kaleido_bench.baselines.wan.phantom import PHANTOM_TINY, PhantomConfig, PhantomPipeline
    from kaleido_bench.baselines.wan.vace import tiny_tokenizer
    from kaleido_bench.kaleido.text_encoder import WAN_T5_FILE, build_umt5, hf_to_wan_t5
    from kaleido_bench.kaleido.vae import build_vae

    helpers = _kaleido_wan_vae_helpers()
    wan = tmp_path / "Wan2.1-T2V-1.3B"
    vae = build_vae(helpers.WAN_SHAPED, seed=11)
    umt5 = build_umt5(PHANTOM_TINY.text_encoder, seed=12)
    (wan / "google").mkdir(parents=True)
    torch.save(
        {helpers.to_wan_name(k): v for k, v in vae.state_dict().items()}, wan / "Wan2.1_VAE.pth"
    )
    torch.save(
        hf_to_wan_t5(umt5.state_dict(), PHANTOM_TINY.text_encoder.num_layers), wan / WAN_T5_FILE
    )
    tiny_tokenizer().save_pretrained(wan / "google" / "umt5-xxl")
    model, wan_state = tiny_state
    torch.save(wan_state, tmp_path / "Phantom-Wan-1.3B.pth")
    config = PhantomConfig("phantom-files", PHANTOM_TINY.transformer, helpers.WAN_SHAPED, PHANTOM_TINY.text_encoder,
                           PHANTOM_TINY.sampling)  # fmt: skip
    pipe = PhantomPipeline.from_pretrained(
        wan, tmp_path / "Phantom-Wan-1.3B.pth", config=config, dtype=torch.float32, device="cpu"
    )
    assert all(
        torch.equal(pipe.transformer.state_dict()[k], v) for k, v in model.state_dict().items()
    )
    assert all(torch.equal(pipe.vae.state_dict()[k], v) for k, v in vae.state_dict().items())
    frames = pipe(
        "a cat",
        [Image.new("RGB", (40, 30), (90, 160, 40))],
        height=32,
        width=32,
        num_frames=5,
        num_steps=1,
    )
    assert frames.shape == (5, 32, 32, 3) and frames.std() > 0


# adapters --------------------------------------------------------------------------------------


def test_options_capabilities_and_card():
    cls = get_model_class("phantom-tiny")
    adapter = cls(cfg_image="4", cfg_text="6.5")
    assert (
        adapter.config()["options"]["cfg_image"] == 4.0
        and adapter.config()["options"]["cfg_text"] == 6.5
    )
    assert adapter.capabilities.max_references == 4 and cls.label == "random weights"
    with pytest.raises(ModelOptionError, match="no option"):
        cls(phantom_ckpt="x")
    with pytest.raises(ModelOptionError, match="multiple of 16"):
        cls(width=50)
    small, big = get_model_class("phantom-1.3b"), get_model_class("phantom-14b")
    assert (small.parameters, big.parameters) == ("1.3B", "14B")
    assert (
        big.defaults["num_frames"] == 121 and big.defaults["fps"] == 24.0
    )  # the README's 14B command
    assert all(
        "bytedance-research/Phantom" in c.weights_source and c.licence.startswith("Apache-2.0")
        for c in (small, big)
    )


def test_real_models_without_weights_name_files_and_the_download_command(tmp_path):
    with pytest.raises(
        WeightsMissingError,
        match=r"Wan-AI/Wan2\.1-T2V-1\.3B.*kaleido-bench weights download phantom-1\.3b",
    ):
        get_model_class("phantom-1.3b")()
    for name in ("Wan2.1_VAE.pth", "models_t5_umt5-xxl-enc-bf16.pth"):
        (tmp_path / name).write_text("x")
    (tmp_path / "google" / "umt5-xxl").mkdir(parents=True)
    with pytest.raises(
        WeightsMissingError,
        match=r"Phantom-Wan-1\.3B\.pth.*weights download phantom-1\.3b.*-o phantom_ckpt=PATH",
    ):
        get_model_class("phantom-1.3b")(weights=str(tmp_path))
    (tmp_path / "ckpt14").mkdir()
    with pytest.raises(
        WeightsMissingError, match=r"Phantom_Wan_14B\.safetensors\.index\.json.*phantom-14b"
    ):
        get_model_class("phantom-14b")(weights=str(tmp_path), phantom_ckpt=str(tmp_path / "ckpt14"))


def test_negative_prompt_is_wans_and_kaleidos_drops_one_phrase():
    """VACE's and Phantom's `shared_config.py` copy Wan's `sample_neg_prompt`; Kaleido's omits 画得不好的脸部."""
    from kaleido_bench.baselines.wan.phantom import PHANTOM_1_3B
    from kaleido_bench.kaleido.config import NEGATIVE_PROMPT, WAN_NEGATIVE_PROMPT

    assert PHANTOM_1_3B.sampling.negative_prompt == WAN_NEGATIVE_PROMPT
    assert "画得不好的脸部" in WAN_NEGATIVE_PROMPT
    assert WAN_NEGATIVE_PROMPT.replace("画得不好的脸部，", "") == NEGATIVE_PROMPT
