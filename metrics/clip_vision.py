"""The OpenAI CLIP image tower, loaded once per distinct weights, whichever file format holds them.

Why: with the real files, `aesthetics` (the transformers folder `openai/clip-vit-large-patch14`)
and `clip_i_l14` / `clip_t_l14` (open_clip's `timm/vit_large_patch14_clip_224.openai` file)
hold the SAME OpenAI ViT-L/14 tensors in two formats, and all three embed the same 32 frames.
Loading each file into its own library's network would run ViT-L/14 twice per video.

So every CLIP image embedding here comes from ONE implementation, transformers'
`CLIPVisionModelWithProjection` (`image_embeds`), the network OpenS2V's Aesthetics runs. It is
built from the tensors of either file, renamed to transformers' names, and memoised under a
sha256 of the architecture and those tensors (`TowerWeights.digest`). Two files holding the same
weights give the same model object; `clip_i.frame_embeddings` keys frame embeddings by that
object and the exact pixel bytes, so equal pixels (the HF and open_clip OpenAI preprocessing
agree bit for bit on 480x832, 512x896, 720x1280 frames; tested) share one forward pass. Files
that differ in any tensor simply get their own model: sharing is never assumed.

open_clip -> transformers names (`visual.` prefix dropped):

| open_clip | transformers |
|---|---|
| `conv1.weight` | `vision_model.embeddings.patch_embedding.weight` |
| `class_embedding`, `positional_embedding` | `vision_model.embeddings.class_embedding`, `.position_embedding.weight` |
| `ln_pre`, `ln_post` | `vision_model.pre_layrnorm`, `vision_model.post_layernorm` |
| `transformer.resblocks.{i}.ln_1`, `.ln_2` | `vision_model.encoder.layers.{i}.layer_norm1`, `.layer_norm2` |
| `...attn.in_proj_weight` / `_bias` (q; k; v stacked) | `...self_attn.{q,k,v}_proj.weight` / `.bias` |
| `...attn.out_proj`, `...mlp.c_fc`, `...mlp.c_proj` | `...self_attn.out_proj`, `...mlp.fc1`, `...mlp.fc2` |
| `proj` (width x embed) | `visual_projection.weight` (its transpose) |

The two implementations agree to about 5e-7 relative on full-size ViT-L/14 embeddings (cosines to
2.4e-7); `clip_i*` / `clip_t*` have no published reference numbers, and `aesthetics` keeps the
exact network OpenS2V ran.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaleido_bench.metrics import backbones
from kaleido_bench.metrics.backbones import Backbone
from kaleido_bench.metrics.context import SERIAL, FramePool, ScoringContext
from kaleido_bench.metrics.weights import load_tensor_file, reading_weight_file

#: the transformers config fields that define the network (others only matter for training)
ARCHITECTURE_FIELDS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_channels",
    "image_size",
    "patch_size",
    "projection_dim",
    "hidden_act",
    "layer_norm_eps",
)
_TOWER_PREFIXES = ("vision_model.", "visual_projection.")
#: open_clip vision options that transformers' CLIP tower cannot express, with their OpenAI values
_OPEN_CLIP_OPENAI_VISION = {
    "attentional_pool": False,
    "no_ln_pre": False,
    "final_ln_after_pool": False,
    "pool_type": "tok",
    "output_tokens": False,
    "ls_init_value": None,
    "pos_embed_type": "learnable",
    "timm_model_name": None,
}


@dataclass(frozen=True)
class TowerWeights:
    """A CLIP image tower's architecture and tensors, in transformers' names."""

    architecture: dict[str, Any]
    tensors: dict[str, Any]
    source: str

    def digest(self) -> str:
        """sha256 of the architecture and of every tensor's name, dtype, shape and bytes."""
        import torch

        digest = hashlib.sha256(json.dumps(self.architecture, sort_keys=True).encode())
        for name in sorted(self.tensors):
            tensor = self.tensors[name].detach().cpu().contiguous()
            digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
            digest.update(tensor.view(torch.uint8).numpy().data if tensor.numel() else b"")
        return digest.hexdigest()


def load_hf_clip_vision(
    context: ScoringContext, folder: str | Path, precision: str = "fp32"
) -> Backbone:
    """The image tower of a transformers CLIP folder (`CLIPModel` or `CLIPVisionModelWithProjection`).

    The folder's `preprocessor_config.json`, when there is one, must be OpenAI's stock one.
    """
    folder = Path(folder)
    backbones.check_hf_clip_preprocessor(folder)
    return _load_tower(
        context,
        f"hf:{backbones.folder_identity(folder)}",
        lambda: hf_folder_tower(folder),
        precision,
    )


def load_open_clip_image_tower(
    context: ScoringContext,
    model_name: str,
    checkpoint: str | Path,
    precision: str = "fp32",
    model_overrides: dict | None = None,
) -> Backbone:
    """The image tower of an open_clip OpenAI CLIP file, run by transformers (see module doc).

    Preprocessing stays open_clip's own (`preprocess_id` says so); `encode_text` is not here:
    text goes through `backbones.load_open_clip`.
    """
    checkpoint = Path(checkpoint)
    overrides = dict(model_overrides or {})
    identity = f"open_clip:{model_name}:{backbones.file_identity(checkpoint)}:{backbones.freeze(overrides)}"
    backbone = _load_tower(
        context,
        identity,
        lambda: open_clip_tower(context, model_name, checkpoint, overrides),
        precision,
    )
    preprocess, preprocess_id = open_clip_preprocess(model_name, overrides, context.frames)
    return dataclasses.replace(backbone, preprocess_id=preprocess_id, preprocess=preprocess)


def _load_tower(
    context: ScoringContext, identity: str, read: Callable[[], TowerWeights], precision: str
) -> Backbone:
    """Read a file's tower once per file, build it once per distinct weights."""
    dev, dtype = backbones.torch_device(context.device), backbones.torch_dtype(precision)

    def of_file() -> Backbone:
        weights = read()
        digest = weights.digest()
        shared = context.models.get(
            ("clip-tower", digest, str(dev), str(dtype)),
            lambda: _build(weights, digest, dev, dtype, context.frames),
        )
        return dataclasses.replace(shared, source=identity)

    return context.models.get(("clip-tower-file", identity, str(dev), str(dtype)), of_file)


def _build(weights: TowerWeights, digest: str, dev: Any, dtype: Any, pool: FramePool) -> Backbone:
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    from transformers.utils import logging as hf_logging

    config = CLIPVisionConfig(**weights.architecture)
    with torch.device("meta"):
        expected = {
            k: tuple(v.shape) for k, v in CLIPVisionModelWithProjection(config).state_dict().items()
        }
    expected.pop("vision_model.embeddings.position_ids", None)
    given = {k: tuple(v.shape) for k, v in weights.tensors.items()}
    if given != expected:
        missing = sorted(set(expected) - set(given))[:5]
        unexpected = sorted(set(given) - set(expected))[:5]
        wrong = sorted(k for k in set(given) & set(expected) if given[k] != expected[k])[:5]
        raise ValueError(
            f"{weights.source} is not a CLIP image tower of {weights.architecture}: "
            f"missing {missing}, unexpected {unexpected}, wrong shapes {wrong}"
        )
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        # fresh copies: the torch allocator's alignment whatever the file's tensor offsets (safetensors
        # slices can sit at any byte), so a tower gives the same bits whichever file it was read from
        state = {name: tensor.clone() for name, tensor in weights.tensors.items()}
        model = CLIPVisionModelWithProjection.from_pretrained(
            None, config=config, state_dict=state, dtype=dtype
        )
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    model = model.to(dev).eval()
    return Backbone(
        id=f"clip-tower:{digest[:16]}",
        model=model,
        device=dev,
        dtype=dtype,
        preprocess_id=backbones.HF_CLIP_PREPROCESS_ID,
        preprocess=functools.partial(backbones.hf_clip_preprocess, pool=pool),
        forward=lambda pixels: model(pixel_values=pixels).image_embeds,
    )


# ----------------------------------------------------------------------------- reading files


def hf_folder_tower(folder: Path) -> TowerWeights:
    """Architecture from `config.json` (a CLIPConfig's vision part too), tensors from the weights file."""
    from transformers import CLIPVisionConfig

    config = CLIPVisionConfig.from_pretrained(str(folder))
    architecture = {name: getattr(config, name) for name in ARCHITECTURE_FIELDS}
    full = json.loads((folder / "config.json").read_text())
    if full.get("model_type") == "clip" and "projection_dim" in full:  # CLIPModel: its projection
        architecture["projection_dim"] = full["projection_dim"]
    weights_file = folder / "model.safetensors"
    if weights_file.is_file():
        from safetensors import safe_open

        with (
            reading_weight_file(weights_file),
            safe_open(str(weights_file), framework="pt") as handle,
        ):
            names = handle.keys()
            tensors = {k: handle.get_tensor(k) for k in names if k.startswith(_TOWER_PREFIXES)}
    elif (folder / "pytorch_model.bin").is_file():
        weights_file = folder / "pytorch_model.bin"
        state = load_tensor_file(weights_file)
        tensors = {k: v for k, v in state.items() if k.startswith(_TOWER_PREFIXES)}
    else:
        raise FileNotFoundError(f"{folder} has neither model.safetensors nor pytorch_model.bin")
    tensors = {
        k: v for k, v in tensors.items() if not k.endswith("position_ids")
    }  # old files saved the buffer
    return TowerWeights(architecture, tensors, str(weights_file))


def open_clip_tower(
    context: ScoringContext, model_name: str, checkpoint: Path, overrides: dict | None = None
) -> TowerWeights:
    """An open_clip CLIP file's `visual.*` tensors in transformers' names, with the matching architecture."""
    architecture = open_clip_architecture(model_name, overrides)
    if checkpoint.suffix == ".safetensors":
        from safetensors import safe_open

        with reading_weight_file(checkpoint), safe_open(str(checkpoint), framework="pt") as handle:
            names = handle.keys()
            state = {k: handle.get_tensor(k) for k in names if k.startswith("visual.")}
    else:  # .pt / .bin (OpenAI's TorchScript file too): open_clip's own reader
        model = backbones.load_open_clip(
            context, model_name, checkpoint, model_overrides=overrides
        ).model
        state = {f"visual.{k}": v for k, v in model.visual.state_dict().items()}
    try:
        tensors = open_clip_to_transformers(state, architecture["num_hidden_layers"])
    except KeyError as exc:
        raise ValueError(f"{checkpoint} lacks the open_clip image-tower tensor {exc}") from None
    return TowerWeights(architecture, tensors, str(checkpoint))


def open_clip_architecture(model_name: str, overrides: dict | None = None) -> dict[str, Any]:
    """transformers `CLIPVisionConfig` fields of an open_clip model config (QuickGELU, as OpenAI's)."""
    import open_clip

    config = open_clip.get_model_config(model_name)
    if config is None:
        raise ValueError(f"open_clip knows no model {model_name!r}")
    vision = {**config["vision_cfg"], **(overrides or {}).get("vision_cfg", {})}
    embed_dim = (overrides or {}).get("embed_dim", config["embed_dim"])
    unsupported = {
        k: vision[k]
        for k, default in _OPEN_CLIP_OPENAI_VISION.items()
        if k in vision and vision[k] != default
    }
    if unsupported or isinstance(vision.get("patch_size"), (list, tuple)):
        raise ValueError(
            f"open_clip {model_name} is not an OpenAI-style CLIP tower: {unsupported or vision}"
        )
    width = vision["width"]
    return {
        "hidden_size": width,
        "intermediate_size": int(width * vision.get("mlp_ratio", 4.0)),
        "num_hidden_layers": vision["layers"],
        "num_attention_heads": width // vision.get("head_width", 64),
        "num_channels": 3,
        "image_size": vision["image_size"],
        "patch_size": vision["patch_size"],
        "projection_dim": embed_dim,
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5,
    }


def open_clip_to_transformers(state: dict[str, Any], layers: int) -> dict[str, Any]:
    """Rename (and split q/k/v of) open_clip `visual.*` tensors to transformers' vision-tower keys."""
    used: set[str] = set()

    def take(key: str) -> Any:
        used.add(key)
        return state[key]

    v = "vision_model."
    out = {
        f"{v}embeddings.patch_embedding.weight": take("visual.conv1.weight"),
        f"{v}embeddings.class_embedding": take("visual.class_embedding"),
        f"{v}embeddings.position_embedding.weight": take("visual.positional_embedding"),
        f"{v}pre_layrnorm.weight": take("visual.ln_pre.weight"),
        f"{v}pre_layrnorm.bias": take("visual.ln_pre.bias"),
        f"{v}post_layernorm.weight": take("visual.ln_post.weight"),
        f"{v}post_layernorm.bias": take("visual.ln_post.bias"),
        "visual_projection.weight": take("visual.proj").T.contiguous(),
    }
    for i in range(layers):
        src, dst = f"visual.transformer.resblocks.{i}.", f"{v}encoder.layers.{i}."
        for part, tensor in zip("qkv", take(f"{src}attn.in_proj_weight").chunk(3)):
            out[f"{dst}self_attn.{part}_proj.weight"] = tensor.contiguous()
        for part, tensor in zip("qkv", take(f"{src}attn.in_proj_bias").chunk(3)):
            out[f"{dst}self_attn.{part}_proj.bias"] = tensor.contiguous()
        for ours, theirs in (
            ("self_attn.out_proj", "attn.out_proj"),
            ("layer_norm1", "ln_1"),
            ("layer_norm2", "ln_2"),
            ("mlp.fc1", "mlp.c_fc"),
            ("mlp.fc2", "mlp.c_proj"),
        ):
            out[f"{dst}{ours}.weight"] = take(f"{src}{theirs}.weight")
            out[f"{dst}{ours}.bias"] = take(f"{src}{theirs}.bias")
    extra = {k for k in state if k.startswith("visual.transformer.resblocks.")} - used
    if extra:
        raise ValueError(f"open_clip tensors with no transformers counterpart: {sorted(extra)[:5]}")
    return out


def open_clip_preprocess(
    model_name: str, overrides: dict | None = None, pool: FramePool = SERIAL
) -> tuple[Callable, str]:
    """open_clip's OpenAI eval transform for `model_name` (no model built) and its stable id."""
    import open_clip
    from open_clip.transform import PreprocessCfg, image_transform_v2

    config = open_clip.get_model_config(model_name)
    image_size = {**config["vision_cfg"], **(overrides or {}).get("vision_cfg", {})}["image_size"]
    transform = image_transform_v2(
        PreprocessCfg(
            size=image_size, mean=backbones.OPENAI_CLIP_MEAN, std=backbones.OPENAI_CLIP_STD
        ),
        is_train=False,
    )
    return functools.partial(
        backbones.pil_transform_batch, transform, pool=pool
    ), f"open_clip-val:{backbones.describe_transform(transform)}"
