"""GME (`Alibaba-NLP/gme-Qwen2-VL-7B-Instruct`) as OpenS2V uses it, on transformers' own Qwen2-VL.

Source: OpenS2V-Nexus `eval/utils/gme/gme_model.py` at 210eb08 (class `GmeQwen2VL`, written for
transformers 4.51.3). Every step below is that file's, checked against it on a tiny random
checkpoint (`tests/fixtures/gme`, made by the official code):

- Image sizing (`fetch_image`, lines 295-334): RGB, then `smart_resize` with the module constants
  factor 28, min 4*28*28, max 16384*28*28 (NOT the 256/1280 tokens of the processor) and a PIL
  resize (default filter: bicubic); aspect ratios over 200 are clamped (`MAX_RATIO`).
- Processor: `Qwen2VLImageProcessor` with min_pixels 256*28*28, max_pixels 1280*28*28 (lines
  38-44; 4.51.3 sets them as attributes over the saved config, and they do take effect: a
  160x250 crop becomes 392x560, tested). transformers 5's `Qwen2VLImageProcessorPil` is the same PIL/numpy code; its default
  torchvision backend is not.
- Template (`embed`, lines 107-135): `<|im_start|>system\\n{instruction}<|im_end|>\\n
  <|im_start|>user\\n{<|vision_start|><|image_pad|><|vision_end|>}{text}<|im_end|>\\n
  <|im_start|>assistant\\n<|endoftext|>`; the instruction is the caller's for text queries and
  "You are a helpful assistant." for images (`is_query=False`) or when none is given.
- Tokens: right padding (the non-flash branch, line 49), truncation at 1800 tokens.
- Forward (`forward`, lines 53-105): token embeddings, the vision tower's merged patch embeddings
  written over the `<|image_pad|>` positions, then the TEXT decoder alone with
  `position_ids=None`: plain 1-D positions for every token, image tokens included (calling the
  full `Qwen2VLModel.forward` would use M-RoPE and change every score).
- Pooling: the last non-padding token's final hidden state, L2-normalised in the model dtype.
- Batches of 32 (`get_fused_embeddings`, line 190); embeddings come back on the CPU in the model dtype,
  so the callers' reductions (OpenS2V's `(e_query * e_corpus).sum(-1).mean()`) run there.

Ours: transformers 5's `Qwen2VLModel` (its vision tower and text decoder, no `lm_head`), sdpa
attention (no flash-attn), fp16 on GPU as the official code and fp32 on CPU. The checkpoint's
legacy key names (`model.layers.*`, `visual.*`) are renamed by transformers' own conversion
mapping. The vision tower here attends image by image (4.51.3's sdpa branch built one dense
mask over the whole batch), which gives the same numbers with far less memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kaleido_bench.core.errors import WeightsMissingError
from kaleido_bench.metrics import backbones
from kaleido_bench.metrics.context import SERIAL, FramePool, ScoringContext
from kaleido_bench.metrics.weights import WeightFile, weights_dir

GME_QWEN2_VL_7B = WeightFile(
    "hf/Alibaba-NLP--gme-Qwen2-VL-7B-Instruct",
    "GME-Qwen2-VL-7B-Instruct, transformers folder (config, tokenizer, processor, 9 safetensors shards)",
    repo_id="Alibaba-NLP/gme-Qwen2-VL-7B-Instruct",
    snapshot=True,
    allow_patterns=("*.json", "*.safetensors", "merges.txt", "vocab.json"),
)

TEXT_TO_IMAGE_INSTRUCTION = "Find an image that matches the given text."  # get_gmescore.py line 95
DEFAULT_INSTRUCTION = "You are a helpful assistant."  # gme_model.py line 50
IMAGE_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"
MIN_PIXELS = 256 * 28 * 28  # min_image_tokens * 28 * 28 (gme_model.py lines 24, 40)
MAX_PIXELS = 1280 * 28 * 28
MAX_LENGTH = 1800
BATCH_SIZE = 32
# fetch_image's own smart_resize constants (gme_model.py lines 236-239)
FETCH_FACTOR = 28
FETCH_MIN_PIXELS = 4 * 28 * 28
FETCH_MAX_PIXELS = 16384 * 28 * 28
FETCH_MAX_RATIO = 200
PREPROCESS_ID = "gme-fetch_image-smart_resize28-bicubic|qwen2vl-pil-min200704-max1003520"


def prompt_text(text: str | None, instruction: str, image: bool) -> str:
    """GME's chat template for one input (gme_model.py lines 125-133)."""
    body = (IMAGE_PLACEHOLDER if image else "") + (text if text is not None else "")
    return (
        f"<|im_start|>system\n{instruction}<|im_end|>\n<|im_start|>user\n{body}<|im_end|>\n"
        "<|im_start|>assistant\n<|endoftext|>"
    )


class EmptyImageError(ValueError):
    """An image with no pixels that `fetch_image` cannot size: the official code divides by its
    area there (ZeroDivisionError), and nexus_score's script then leaves the video out."""


def fetch_size(height: int, width: int) -> tuple[int, int]:
    """`fetch_image`'s `smart_resize` (gme_model.py lines 257-292): multiples of 28 nearest the size.

    An image of zero height or width is sized like any other (the official code then resizes it
    to a black image) unless the formula divides by its area, where this raises EmptyImageError.
    """
    h_bar = max(FETCH_FACTOR, round(height / FETCH_FACTOR) * FETCH_FACTOR)
    w_bar = max(FETCH_FACTOR, round(width / FETCH_FACTOR) * FETCH_FACTOR)
    try:
        if h_bar * w_bar > FETCH_MAX_PIXELS:
            beta = math.sqrt((height * width) / FETCH_MAX_PIXELS)
            h_bar = math.floor(height / beta / FETCH_FACTOR) * FETCH_FACTOR
            w_bar = math.floor(width / beta / FETCH_FACTOR) * FETCH_FACTOR
        elif h_bar * w_bar < FETCH_MIN_PIXELS:
            beta = math.sqrt(FETCH_MIN_PIXELS / (height * width))
            h_bar = math.ceil(height * beta / FETCH_FACTOR) * FETCH_FACTOR
            w_bar = math.ceil(width * beta / FETCH_FACTOR) * FETCH_FACTOR
    except ZeroDivisionError:
        raise EmptyImageError(
            f"a {width}x{height} image: GME's fetch_image divides by its area (gme_model.py "
            "smart_resize) and so does the official code, which fails on it"
        ) from None
    if max(h_bar, w_bar) / min(h_bar, w_bar) > FETCH_MAX_RATIO:
        if h_bar > w_bar:
            h_bar = w_bar * FETCH_MAX_RATIO
        else:
            w_bar = h_bar * FETCH_MAX_RATIO
    return h_bar, w_bar


def fetch_image(image: Any) -> Any:
    """A PIL image (or HxWx3 uint8 array) as `fetch_image` returns it: RGB, resized to multiples of 28."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    image = image.convert("RGB")
    width, height = image.size
    new_h, new_w = fetch_size(height, width)
    return image.resize((new_w, new_h), resample=Image.BICUBIC)


def processor_size(
    height: int, width: int, factor: int, min_pixels: int, max_pixels: int
) -> tuple[int, int]:
    """The image processor's own `smart_resize` (transformers 4.51.3 `image_processing_qwen2_vl.py`)."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError(
            f"absolute aspect ratio must be smaller than 200, got {max(height, width) / min(height, width)}"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def processor_input(image: Any, factor: int, min_pixels: int, max_pixels: int) -> Any:
    """The processor's resize: PIL bicubic on the uint8 image, skipped when the size already fits
    (PIL returns an exact copy then)."""
    from PIL import Image

    width, height = image.size
    new_h, new_w = processor_size(height, width, factor, min_pixels, max_pixels)
    if (new_h, new_w) == (height, width):
        return image
    return image.resize((new_w, new_h), resample=Image.BICUBIC)


def normalize_table(
    rescale_factor: float, mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    """(3, 256) float32: every uint8 value through the PIL backend's arithmetic (`uint8 -> float64
    * scale -> float32`, then `(x - mean) / std` in float32), so a lookup replaces the maths."""
    values = (np.arange(256, dtype=np.float64) * rescale_factor).astype(np.float32)
    return (values[None, :] - np.asarray(mean, np.float32)[:, None]) / np.asarray(std, np.float32)[
        :, None
    ]


def patchify(
    image: np.ndarray, table: np.ndarray, patch: int, merge: int, temporal: int
) -> tuple[np.ndarray, list[int]]:
    """(H, W, 3) uint8 -> (grid_h * grid_w, 3 * temporal * patch * patch) float32 patches and the
    [1, grid_h, grid_w] grid, in `Qwen2VLImageProcessorPil.patchify`'s order (one image repeated
    `temporal` times); pixels normalised by table lookup (`np.take`, exact and fast)."""
    channels = image.shape[2]
    x = np.stack([np.take(table[c], image[..., c]) for c in range(channels)])
    height, width = x.shape[1:]
    grid_h, grid_w = height // patch, width // patch
    x = x.reshape(channels, grid_h // merge, merge, patch, grid_w // merge, merge, patch)
    x = x.transpose(1, 4, 2, 5, 0, 3, 6)
    x = np.broadcast_to(x[:, :, :, :, :, None], (*x.shape[:5], temporal, *x.shape[5:]))
    return x.reshape(grid_h * grid_w, channels * temporal * patch * patch), [1, grid_h, grid_w]


@dataclass
class GmeEmbedder:
    """One loaded GME: text and image embeddings exactly as `GmeQwen2VL` computes them.

    Shared by `gme_score` and `nexus_score` (one instance per weights folder, device and dtype in
    the run's model pool, `ScoringContext.models`). Embeddings are L2-normalised, returned on the CPU in the model
    dtype (fp16 on GPU, like the official code; fp32 on CPU).
    """

    model: Any  # transformers.Qwen2VLModel
    tokenizer: Any
    image_processor: Any  # Qwen2VLImageProcessorPil
    device: Any
    dtype: Any
    id: str
    batch_size: int = BATCH_SIZE
    preprocess_id: str = PREPROCESS_ID
    calls: dict = field(default_factory=lambda: {"texts": 0, "images": 0})  # rows embedded
    text_cache: dict = field(default_factory=dict, repr=False)
    pool: FramePool = SERIAL  # the run's frame threads, for image preprocessing

    def embed_texts(
        self, texts: Sequence[str], instruction: str | None = None, batch_size: int | None = None
    ) -> Any:
        """(N, D) embeddings of text queries (`get_text_embeddings`): with `instruction` as the
        system prompt when one is given, else "You are a helpful assistant."."""
        instruction = instruction if instruction is not None else DEFAULT_INSTRUCTION
        self.calls["texts"] += len(texts)
        prompts = [prompt_text(t, instruction, image=False) for t in texts]
        return self._batched(prompts, None, batch_size)

    def embed_text_cached(self, text: str, instruction: str | None = None) -> Any:
        """(1, D) embedding of one text query, computed once per (instruction, text) for the life
        of this embedder (a case's prompt, nexus_score's class labels)."""
        key = (instruction, text)
        if key not in self.text_cache:
            self.text_cache[key] = self.embed_texts([text], instruction)
        return self.text_cache[key]

    def embed_images(
        self,
        images: Sequence[Any],
        is_query: bool = False,
        instruction: str | None = None,
        batch_size: int | None = None,
    ) -> Any:
        """(N, D) embeddings of images (PIL or HxWx3 uint8 arrays), `get_image_embeddings`: the
        system prompt is "You are a helpful assistant." unless `is_query` and an instruction."""
        if not is_query or instruction is None:
            instruction = DEFAULT_INSTRUCTION
        self.calls["images"] += len(images)
        prompts = [prompt_text(None, instruction, image=True) for _ in images]
        return self._batched(prompts, list(images), batch_size)

    def embed_image_files(self, paths: Sequence[str | Path], cache: Any) -> Any:
        """(N, D) embeddings (`is_query=False`) of image FILES read with PIL `convert("RGB")`,
        each file embedded once per run by content (`embedding_cache`: reference images shared
        by cases and videos). Returned in the model dtype (the cache keeps float32 rows, which
        hold fp16 values exactly)."""
        import torch

        rows = cache.embeddings(
            list(paths),
            self.id,
            self.preprocess_id,
            lambda missing: self.embed_images([backbones.load_rgb(p) for p in missing]),
        )
        if not rows:
            return torch.empty(0, self.model.config.text_config.hidden_size, dtype=self.dtype)
        return torch.stack(rows).to(self.dtype)

    def _batched(self, prompts: list[str], images: list[Any] | None, batch_size: int | None) -> Any:
        """Chunks of `batch_size` (32 as the official), each padded to its longest row. Rows do not
        see each other (causal attention, right padding, the vision tower image by image), so
        images are grouped by their token count first (nexus_score's crops differ in size: less
        padding) and the rows are put back in the caller's order."""
        import torch

        size = batch_size or self.batch_size
        order = list(range(len(prompts)))
        if images is not None:
            order.sort(key=lambda i: self.image_tokens(images[i]))
        out = []
        for start in range(0, len(order), size):
            rows = order[start : start + size]
            chunk = [images[i] for i in rows] if images is not None else None
            out.append(self._embed([prompts[i] for i in rows], chunk))
        if not out:
            return torch.empty(0, self.model.config.text_config.hidden_size, dtype=self.dtype)
        embeddings = torch.cat(out, dim=0)
        restore = torch.empty(len(order), dtype=torch.long)
        restore[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
        return embeddings[restore]

    def image_tokens(self, image: Any) -> int:
        """How many merged-patch tokens `image` becomes (from its size alone)."""
        width, height = (
            (image.shape[1], image.shape[0]) if isinstance(image, np.ndarray) else image.size
        )
        processor = self.image_processor
        fetched = fetch_size(height, width)
        factor = processor.patch_size * processor.merge_size
        h, w = processor_size(
            *fetched, factor, processor.size["shortest_edge"], processor.size["longest_edge"]
        )
        return (h // factor) * (w // factor)

    def check_images(self, images: Sequence[Any]) -> None:
        """Raise where `fetch_image` would fail on one of `images`, without embedding them."""
        for image in images:
            self.image_tokens(image)

    def pixel_inputs(self, images: Sequence[Any]) -> dict[str, Any]:
        """`pixel_values` (float32, CPU) and `image_grid_thw` for a batch of images, equal bit for
        bit to `Qwen2VLImageProcessorPil` on the `fetch_image` outputs (tested) and several
        times faster: the PIL resizes run on the thread pool, the float maths in torch."""
        import torch

        processor = self.image_processor
        factor = processor.patch_size * processor.merge_size
        size = (processor.size["shortest_edge"], processor.size["longest_edge"])
        table = normalize_table(processor.rescale_factor, processor.image_mean, processor.image_std)

        def prepare(image: Any) -> tuple[np.ndarray, list[int]]:
            sized = processor_input(fetch_image(image), factor, *size)
            return patchify(
                np.asarray(sized),
                table,
                processor.patch_size,
                processor.merge_size,
                processor.temporal_patch_size,
            )

        prepared = self.pool.map(prepare, images)
        patches = [torch.from_numpy(values) for values, _ in prepared]
        grids = [grid for _, grid in prepared]
        return {
            "pixel_values": torch.cat(patches),
            "image_grid_thw": torch.tensor(grids, dtype=torch.int64),
        }

    def model_inputs(self, prompts: list[str], images: list[Any] | None) -> dict[str, Any]:
        """Token ids (image placeholders expanded to one token per merged patch, as
        `Qwen2VLProcessor` does), right-padded attention mask and pixel inputs, on the device."""
        pixels = self.pixel_inputs(images) if images is not None else None
        if pixels is not None:
            merge = self.image_processor.merge_size**2
            counts = (pixels["image_grid_thw"].prod(-1) // merge).tolist()
            prompts = [
                p.replace("<|image_pad|>", "<|image_pad|>" * n, 1) for p, n in zip(prompts, counts)
            ]
        tokens = self.tokenizer(
            prompts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt"
        )
        inputs = {
            "input_ids": tokens["input_ids"].to(self.device),
            "attention_mask": tokens["attention_mask"].to(self.device),
        }
        if pixels is not None:
            inputs["pixel_values"] = pixels["pixel_values"].to(self.device, self.dtype)
            inputs["image_grid_thw"] = pixels["image_grid_thw"].to(self.device)
        return inputs

    def _embed(self, prompts: list[str], images: list[Any] | None) -> Any:
        import torch

        inputs = self.model_inputs(prompts, images)
        input_ids, attention_mask = inputs["input_ids"], inputs["attention_mask"]
        with torch.inference_mode():
            embeds = self.model.language_model.embed_tokens(input_ids)
            if "pixel_values" in inputs:
                vision = self.model.visual(
                    inputs["pixel_values"], grid_thw=inputs["image_grid_thw"]
                )
                image_embeds = vision.pooler_output.to(embeds.dtype)
                image_mask = input_ids == self.model.config.image_token_id
                embeds[image_mask] = image_embeds
            hidden = self.model.language_model(
                inputs_embeds=embeds,
                attention_mask=attention_mask,
                position_ids=None,
                use_cache=False,
            ).last_hidden_state
            last = attention_mask.sum(dim=1) - 1  # right padding: the last real token of each row
            pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.cpu()


REQUIRED_FILES = ("config.json", "tokenizer_config.json")


def check_folder(path: Path, metric: str) -> None:
    """A found folder must hold the config, the tokenizer and every shard the index names."""
    import json

    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    index = path / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        missing += [s for s in shards if not (path / s).is_file()]
    elif not (path / "model.safetensors").is_file():
        missing.append("model.safetensors.index.json (or model.safetensors)")
    if missing:
        raise WeightsMissingError(
            f"incomplete weights folder {path} for metric {metric}: missing {', '.join(missing)}. "
            f"Get it with `kaleido-bench weights download {metric}` on a connected machine "
            f"(source: {GME_QWEN2_VL_7B.repo_id}), or put it at {weights_dir() / GME_QWEN2_VL_7B.filename}"
        )


def load_gme(
    context: ScoringContext,
    path: str | Path,
    precision: str | None = None,
    metric: str = "gme_score",
) -> GmeEmbedder:
    """The GME embedder for the folder `path`, built once per (folder identity, device, dtype).

    `precision` None means the official fp16 on CUDA and fp32 on CPU.
    """

    path = Path(path)
    check_folder(path, metric)
    dev = backbones.torch_device(context.device)
    if precision is None:
        precision = "fp16" if dev.type == "cuda" else "fp32"
    dtype = backbones.torch_dtype(precision)
    key = ("gme-qwen2-vl", backbones.folder_identity(path), str(dev), str(dtype))

    def build() -> GmeEmbedder:
        from transformers import AutoTokenizer, Qwen2VLModel
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
            Qwen2VLImageProcessorPil,
        )
        from transformers.utils import logging as hf_logging

        # the checkpoint's `lm_head.weight` is not needed (pooling reads hidden states): it is
        # the one key allowed to stay unused; every model weight must come from the file. The
        # load report that would list it is silenced; the check below is ours.
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            model, info = Qwen2VLModel.from_pretrained(
                path, dtype=dtype, attn_implementation="sdpa", output_loading_info=True
            )
        finally:
            hf_logging.set_verbosity(verbosity)
        unused = set(info["unexpected_keys"]) - {"lm_head.weight"}
        if info["missing_keys"] or unused or info["mismatched_keys"]:
            raise WeightsMissingError(f"GME checkpoint {path} does not match Qwen2-VL: {info}")
        model = model.to(dev).eval()
        tokenizer = AutoTokenizer.from_pretrained(path)
        tokenizer.padding_side = "right"
        # as the official `AutoProcessor.from_pretrained(..., min_pixels=, max_pixels=)`
        processor = Qwen2VLImageProcessorPil.from_pretrained(
            path, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS
        )
        if (processor.size["shortest_edge"], processor.size["longest_edge"]) != (
            MIN_PIXELS,
            MAX_PIXELS,
        ):
            raise RuntimeError(f"GME image processor did not take min/max pixels: {processor.size}")
        return GmeEmbedder(
            model,
            tokenizer,
            processor,
            dev,
            dtype,
            id=f"gme-qwen2-vl|{key[1]}|{dtype}",
            pool=context.frames,
        )

    return context.models.get(key, build)
