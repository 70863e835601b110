"""gme_score and the GME embedder against golden outputs of the OFFICIAL OpenS2V code.

`tests/fixtures/gme/` was made by `make_fixtures.py` there, in transformers 4.51.3 with
OpenS2V-Nexus `eval/utils/gme/gme_model.py` and `eval/get_gmescore.py` (210eb08), on a tiny random
Qwen2-VL saved in the real checkpoint format (legacy keys, shards, tokenizer, processor files).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kaleido_bench.core.cases import Case
from kaleido_bench.core.errors import WeightsMissingError
from kaleido_bench.core.video import DecodedVideo, decode_video
from kaleido_bench.metrics.base import get_metric_class
from kaleido_bench.metrics.gme import (
    GME_QWEN2_VL_7B,
    TEXT_TO_IMAGE_INSTRUCTION,
    fetch_image,
    load_gme,
)
from kaleido_bench.metrics.gme_score import GmeScore, frame_similarities

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gme"
TINY = FIXTURES / "tiny_gme"
TOL = 1e-4  # the parity bar for values; measured: <= 1.5e-8 (values), 3e-7 (embeddings)
TOL_EMBED = 1e-5


@pytest.fixture(scope="module")
def official() -> dict:
    return json.loads((FIXTURES / "official_fp32.json").read_text())


@pytest.fixture(scope="module")
def module_ctx():
    from kaleido_bench.metrics.context import ScoringContext

    with ScoringContext.create("cpu") as context:
        yield context


@pytest.fixture(scope="module")
def embedder(module_ctx):
    return load_gme(module_ctx, TINY)


def test_per_video_values_and_frame_sims_match_official(
    ready, ctx, shared_dir: Path, official: dict
) -> None:
    metric = ready(GmeScore(model_path=str(TINY)))
    assert set(official["videos"]) == {
        p.stem for p in (shared_dir / "opens2v" / "videos").glob("*.mp4")
    }
    for name, ref in official["videos"].items():
        video = decode_video(shared_dir / "opens2v" / "videos" / f"{name}.mp4")
        assert video.num_frames == ref["frame_count"]
        assert video.linspace_indices(32).tolist() == ref["frame_indices"]
        result = metric.score(video, Case(name, ref["prompt"], ()), ctx)
        assert result.value == pytest.approx(ref["gme_score"], abs=TOL)
        sims = np.array(result.details["frame_sims"])
        assert np.abs(sims - np.array(ref["frame_sims"])).max() < TOL
        # the tiny model tells frames apart: the comparison means something
        assert sims.std() > 1e-3
        text = metric.embedder.embed_text_cached(ref["prompt"], TEXT_TO_IMAGE_INSTRUCTION)
        assert np.abs(text[0].numpy() - np.array(ref["text_embedding"])).max() < TOL_EMBED


def test_template_tokens_match_official(embedder, official: dict) -> None:
    from kaleido_bench.metrics.gme import prompt_text

    for ref in official["videos"].values():
        ids = embedder.tokenizer(
            [prompt_text(ref["prompt"], TEXT_TO_IMAGE_INSTRUCTION, image=False)]
        )["input_ids"][0]
        assert ids == ref["text_input_ids"]


def test_crops_and_labels_match_official(embedder, official: dict) -> None:
    """nexus_score's use: crops of mixed sizes (below min_pixels, above max_pixels) in one padded
    batch, and short label texts with the instruction."""
    crops = official["crops"]
    images = [Image.open(FIXTURES / "crops" / name) for name in crops["names"]]
    grids = [embedder.pixel_inputs([image])["image_grid_thw"][0].tolist() for image in images]
    assert grids == crops["image_grid_thw"]
    assert [embedder.image_tokens(i) for i in images] == [t * h * w // 4 for t, h, w in grids]
    e_crops = embedder.embed_images(images, is_query=False)
    e_labels = embedder.embed_texts(crops["labels"], TEXT_TO_IMAGE_INSTRUCTION)
    assert np.abs(e_crops.numpy() - np.array(crops["crop_embeddings"])).max() < TOL_EMBED
    assert np.abs(e_labels.numpy() - np.array(crops["label_embeddings"])).max() < TOL_EMBED
    sims = (e_labels[:, None] * e_crops[None]).sum(-1).numpy()
    assert np.abs(sims - np.array(crops["label_crop_sims"])).max() < TOL


def test_pixels_equal_transformers_pil_processor(embedder) -> None:
    """Our vectorised preprocessing is bit-identical to `Qwen2VLImageProcessorPil` on fetch_image output."""
    rng = np.random.default_rng(0)
    images = [
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        for h, w in ((480, 832), (90, 150), (1100, 1500))
    ]
    ours = embedder.pixel_inputs(images)
    theirs = embedder.image_processor(images=[fetch_image(i) for i in images], return_tensors="pt")
    assert torch.equal(ours["image_grid_thw"], theirs["image_grid_thw"])
    assert torch.equal(ours["pixel_values"], theirs["pixel_values"])


def test_fp16_reduction_reproduces_official_stored_value() -> None:
    """The script's `(e_query * e_corpus).sum(-1).mean()` in fp16 on the CPU: our reduction on the
    official fp16 embeddings gives its stored value exactly."""
    official16 = json.loads((FIXTURES / "official_fp16.json").read_text())
    for ref in official16["videos"].values():
        text = torch.tensor([ref["text_embedding"]], dtype=torch.float16)
        frames = torch.tensor(ref["frame_embeddings"], dtype=torch.float16)
        sims = (text * frames).sum(-1)
        assert sims.mean().item() == ref["gme_score"]


def test_prompt_embedded_once_per_case(module_ctx, embedder) -> None:
    rng = np.random.default_rng(1)
    case = Case("singleobj_1", "a red kite over a beach, unique prompt for the cache test", ())
    metric = GmeScore(model_path=str(TINY))
    metric.setup(module_ctx)
    # one GME per folder, device and dtype (nexus_score shares it)
    assert metric.embedder is embedder
    before = dict(embedder.calls)
    for _ in range(2):
        frames = rng.integers(0, 256, (4, 56, 84, 3), dtype=np.uint8)
        metric.score(DecodedVideo(frames, fps=8.0), case, module_ctx)
    assert embedder.calls["texts"] - before["texts"] == 1
    assert embedder.calls["images"] - before["images"] == 64


def test_batch_size_does_not_change_values(embedder) -> None:
    """Chunking and the size-sorted grouping change neither the values nor the row order."""
    rng = np.random.default_rng(2)
    sizes = ((60, 90), (300, 200), (60, 90), (120, 500), (40, 40))
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    one_batch = frame_similarities(embedder, frames, "a cat", batch_size=32)
    small = frame_similarities(embedder, frames, "a cat", batch_size=2)
    assert torch.allclose(one_batch, small, atol=1e-6)
    singles = torch.cat([embedder.embed_images([f]) for f in frames])
    assert torch.allclose(embedder.embed_images(frames, batch_size=3), singles, atol=1e-6)
    texts = ["a", "a much longer text that pads the others", "b"]
    together = embedder.embed_texts(texts, batch_size=32)
    assert torch.allclose(
        together, torch.cat([embedder.embed_texts([t]) for t in texts]), atol=1e-6
    )


def test_missing_weights_name_the_download_command(ctx, tmp_path: Path) -> None:
    with pytest.raises(WeightsMissingError, match="weights download gme_score") as error:
        GmeScore().setup(ctx)
    assert GME_QWEN2_VL_7B.filename in str(error.value)
    partial = tmp_path / "gme"
    shutil.copytree(TINY, partial)
    (partial / "model-00002-of-00003.safetensors").unlink()
    with pytest.raises(
        WeightsMissingError, match="model-00002-of-00003.safetensors.*weights download gme_score"
    ):
        GmeScore(model_path=str(partial)).setup(ctx)


def test_registered_with_its_weight_file() -> None:
    cls = get_metric_class("gme_score")
    assert cls is GmeScore
    assert [w.repo_id for w in cls.weights] == ["Alibaba-NLP/gme-Qwen2-VL-7B-Instruct"]
    assert cls.weights[0].snapshot


def test_plain_1d_positions_are_the_official_ones(embedder, official: dict) -> None:
    """SPEC trap: GME runs the text decoder with `position_ids=None` (plain 1-D positions for the
    image tokens too). transformers' full `Qwen2VLModel.forward` uses M-RoPE positions instead:
    the same model then gives an embedding far from the official one."""
    from kaleido_bench.metrics.gme import DEFAULT_INSTRUCTION, prompt_text

    image = Image.open(FIXTURES / "crops" / official["crops"]["names"][0])
    inputs = embedder.model_inputs([prompt_text(None, DEFAULT_INSTRUCTION, image=True)], [image])
    with torch.inference_mode():
        image_tokens = inputs["input_ids"] == embedder.model.config.image_token_id
        hidden = embedder.model(
            **inputs, mm_token_type_ids=image_tokens.int(), use_cache=False
        ).last_hidden_state
    mrope = torch.nn.functional.normalize(hidden[:, -1], dim=1)
    reference = torch.tensor(official["crops"]["crop_embeddings"][0])
    assert (mrope[0] - reference).abs().max() > 1e-2
    assert (embedder.embed_images([image])[0] - reference).abs().max() < TOL_EMBED


def test_fp16_path_follows_official_fp16(ctx) -> None:
    """fp16 (the GPU precision) runs end to end here and stays near the official fp16 numbers
    (both on the CPU; kernels differ at the last fp16 bit)."""
    official16 = json.loads((FIXTURES / "official_fp16.json").read_text())["crops"]
    half = load_gme(ctx, TINY, precision="fp16")
    images = [Image.open(FIXTURES / "crops" / name) for name in official16["names"]]
    e_crops = half.embed_images(images)
    e_labels = half.embed_texts(official16["labels"], TEXT_TO_IMAGE_INSTRUCTION)
    assert e_crops.dtype == torch.float16
    assert np.abs(e_crops.float().numpy() - np.array(official16["crop_embeddings"])).max() < 2e-3
    assert np.abs(e_labels.float().numpy() - np.array(official16["label_embeddings"])).max() < 2e-3


def test_reference_files_embedded_once_by_content(embedder, tmp_path: Path) -> None:
    from kaleido_bench.metrics.embedding_cache import EmbeddingCache

    source = FIXTURES / "crops" / "singleface_3_f10_300_100.png"
    copy = tmp_path / "same_bytes.png"
    shutil.copy(source, copy)
    cache = EmbeddingCache()
    before = embedder.calls["images"]
    first = embedder.embed_image_files([source, copy], cache=cache)
    again = embedder.embed_image_files([copy], cache=cache)
    assert embedder.calls["images"] - before == 1  # two paths, one content, embedded once
    assert torch.equal(first[0], first[1]) and torch.equal(again[0], first[0])
    assert first.dtype == embedder.dtype
    direct = embedder.embed_images([Image.open(source).convert("RGB")])
    assert torch.allclose(first[:1], direct, atol=1e-6)
