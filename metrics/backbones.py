"""Image / text backbones the similarity metrics share, each loaded ONCE per scoring context.

Every loader takes the scoring context and a path the weights resolver found (`metrics/weights.py`), builds the model on
the context's device in the requested dtype, and keeps it in the context's model pool under (kind, name, file identity, device, dtype,
architecture overrides): a second metric asking for the same model gets the same object.
`model_overrides` replace parts of the architecture; tests use them to build tiny random
models that go through the very same loading code as the real checkpoints.

Backbones, their files and where they are used:

| backbone | file (resolver name) | loaded by | used by |
|---|---|---|---|
| OpenAI CLIP ViT-L/14, transformers | `openai/clip-vit-large-patch14` folder | `clip_vision.load_hf_clip_vision` (image tower) | aesthetics (OpenS2V) |
| OpenAI CLIP ViT-B/32, transformers | `openai/clip-vit-base-patch32` folder | `clip_vision.load_hf_clip_vision` (image tower) | nexus_score's detector prompts (OpenS2V) |
| OpenAI CLIP ViT-B/32, ViT-L/14 | `timm/vit_*_clip_224.openai` `open_clip_model.safetensors` | `open_clip.create_model_and_transforms(name, pretrained=<file>, force_quick_gelu=True)` | clip_t's text, background_consistency |
| the same files' image towers | either of the two above | `clip_vision.py`: transformers' tower, one per distinct weights | aesthetics, clip_i, clip_t |
| DINOv2 ViT-B/14 | `timm/vit_base_patch14_dinov2.lvd142m` `model.safetensors` | `timm.create_model(..., pretrained_cfg_overlay={"file": ...}, img_size=224)` | dino_i |
| DINO ViT-B/16 | `dino_vitbase16_pretrain.pth` (facebookresearch/dino) | `DinoVisionTransformer` below, strict state dict | subject_consistency |

OpenAI CLIP through open_clip: VBench loads these models with OpenAI's `clip` package
(`clip.load("ViT-B/32")`). open_clip's `openai` weights are the same tensors re-saved (its
`load_openai_model` reads OpenAI's own `.pt`), and its `CLIP` class is the same network:
conv1 without bias, class token + absolute position embedding, `ln_pre`, pre-norm residual
blocks with `nn.MultiheadAttention` and QuickGELU, `ln_post` on the class token, `@ proj`.
QuickGELU must be forced when loading from a file path (open_clip only infers it from the
`openai` tag): without it the features are silently wrong. In fp16 (`precision="fp16"`) open_clip
converts exactly the tensors `clip`'s `convert_weights` converts (conv / linear / attention weights,
`proj`, `text_projection`) and keeps LayerNorm in fp32, as `clip.model.LayerNorm` does. OpenAI's
original TorchScript `ViT-B-32.pt` (VBench's file) also loads here: open_clip reads its state dict.

Precision: everything runs in fp32 except where the published metric itself runs in half:
VBench's background_consistency runs CLIP in fp16 on CUDA (`clip.load` on a GPU returns an fp16
model) and fp32 on CPU; we do the same. OpenS2V's Aesthetics, VBench's DINO (subject_consistency)
are fp32. clip_i / dino_i / clip_t have no published numbers to match: fp32 by default, fp16 on
request (`precision="fp16"`).

DINO ViT-B/16 is our own small module with facebookresearch/dino's parameter names (its
checkpoint loads strictly) and DINO's own maths: explicit softmax attention, exact GELU,
LayerNorm eps 1e-6, CLS token after the final norm, and DINO's position-embedding interpolation
for non-square inputs (bicubic with `scale_factor=((h/16 + 0.1)/14, (w/16 + 0.1)/14)`, not a
target size: VBench feeds it 224x388 frames, and timm's `resample_abs_pos_embed` (size-based,
antialiased) would give different position embeddings).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kaleido_bench.metrics.context import SERIAL, FramePool, ScoringContext
from kaleido_bench.metrics.weights import WeightFile, load_tensor_file, reading_weight_file

# ----------------------------------------------------------------------------- weight files

CLIP_VIT_L14_HF = WeightFile(
    "hf/openai--clip-vit-large-patch14",
    "OpenAI CLIP ViT-L/14, transformers folder (config, preprocessor config, weights)",
    repo_id="openai/clip-vit-large-patch14",
    snapshot=True,
    allow_patterns=("config.json", "preprocessor_config.json", "model.safetensors"),
)
CLIP_VIT_B32_HF = WeightFile(
    "hf/openai--clip-vit-base-patch32",
    "OpenAI CLIP ViT-B/32, transformers folder (config, preprocessor config, weights)",
    repo_id="openai/clip-vit-base-patch32",
    snapshot=True,
    allow_patterns=("config.json", "preprocessor_config.json", "model.safetensors"),
)
OPENCLIP_VIT_B32_OPENAI = WeightFile(
    "open_clip/ViT-B-32-openai.safetensors",
    "OpenAI CLIP ViT-B/32 (open_clip format)",
    repo_id="timm/vit_base_patch32_clip_224.openai",
    repo_filename="open_clip_model.safetensors",
)
OPENCLIP_VIT_L14_OPENAI = WeightFile(
    "open_clip/ViT-L-14-openai.safetensors",
    "OpenAI CLIP ViT-L/14 (open_clip format)",
    repo_id="timm/vit_large_patch14_clip_224.openai",
    repo_filename="open_clip_model.safetensors",
)
DINOV2_VITB14 = WeightFile(
    "timm/vit_base_patch14_dinov2.lvd142m.safetensors",
    "DINOv2 ViT-B/14 (timm format)",
    repo_id="timm/vit_base_patch14_dinov2.lvd142m",
    repo_filename="model.safetensors",
)
DINO_VITB16 = WeightFile(
    "dino/dino_vitbase16_pretrain.pth",
    "DINO ViT-B/16 backbone (facebookresearch/dino, VBench subject_consistency)",
    url="https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth",
)

# ----------------------------------------------------------------------------- preprocessing

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

HF_CLIP_PREPROCESS_ID = "hf-clip-processor-pil:short224-bicubic-crop224-openai-norm"
IMAGENET_EVAL_PREPROCESS_ID = "imagenet-eval:short256-bicubic-crop224-imagenet-norm"


def hf_clip_preprocess(
    frames: np.ndarray, size: int = 224, crop: int = 224, pool: FramePool = SERIAL
) -> Any:
    """transformers' stock CLIP image processing (the PIL one OpenS2V's transformers 4.51 used), batched.

    Per image: PIL BICUBIC resize of the short side to `size`, long side `int(size * long /
    short)`; centre crop at `(new - crop) // 2`; `uint8 -> float64 * (1/255) -> float32`;
    `(x - mean) / std` in float32. Bit-identical to `CLIPImageProcessorPil` (transformers 5)
    and 4.x's `CLIPImageProcessor` (tested). transformers 5's default `CLIPImageProcessor` is a
    torchvision backend whose antialiased tensor resize differs by a few 1e-3.
    """
    import torch
    from PIL import Image

    def resize_crop(frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = size, int(size * long / short)
        new_h, new_w = (new_long, new_short) if width <= height else (new_short, new_long)
        resized = np.asarray(Image.fromarray(frame).resize((new_w, new_h), resample=Image.BICUBIC))
        if new_h < crop or new_w < crop:
            raise ValueError(
                f"image {width}x{height} resized to {new_w}x{new_h} is smaller than the {crop} crop"
            )
        top, left = (new_h - crop) // 2, (new_w - crop) // 2
        return resized[top : top + crop, left : left + crop]

    frames = _as_uint8_batch(frames)
    out = np.empty((len(frames), crop, crop, 3), dtype=np.uint8)
    for i, cropped in enumerate(pool.map(resize_crop, frames)):
        out[i] = cropped
    pixels = (out.astype(np.float64) * (1 / 255)).astype(np.float32)
    pixels = (pixels - np.array(OPENAI_CLIP_MEAN, np.float32)) / np.array(
        OPENAI_CLIP_STD, np.float32
    )
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(0, 3, 1, 2)))


def imagenet_eval_transform(resize: int = 256, crop: int = 224) -> Callable:
    """DINOv2's classification-eval transform: Resize(256, bicubic) + CenterCrop(224) + ImageNet norm."""
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.Resize(resize, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(crop),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def pil_transform_batch(transform: Callable, frames: np.ndarray, pool: FramePool = SERIAL) -> Any:
    """Apply a PIL-input transform (open_clip / torchvision) to each uint8 RGB frame, stacked (frames in parallel)."""
    import torch
    from PIL import Image

    return torch.stack(
        pool.map(lambda frame: transform(Image.fromarray(frame)), _as_uint8_batch(frames))
    )


def load_rgb(path: str | Path) -> np.ndarray:
    """A reference image as uint8 RGB, PIL `convert("RGB")` (alpha dropped, not composited, as OpenS2V;
    16-bit greyscale scaled, not clipped: `bench.images.rgb_image`)."""
    from PIL import Image

    from kaleido_bench.core.errors import MissingImageError
    from kaleido_bench.core.images import rgb_image

    try:
        with Image.open(path) as image:
            return np.asarray(rgb_image(image, path))
    except (OSError, ValueError) as exc:
        raise MissingImageError(f"reference image {path} cannot be read: {exc}") from None


def _as_uint8_batch(frames: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(frames, np.ndarray) and frames.ndim == 3:
        frames = frames[None]
    batch = [np.ascontiguousarray(f) for f in frames]
    for f in batch:
        if f.dtype != np.uint8 or f.ndim != 3 or f.shape[-1] != 3:
            raise ValueError(f"expected (H, W, 3) uint8 RGB images, got {f.shape} {f.dtype}")
    return batch


# ----------------------------------------------------------------------------- device / memo

_PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def torch_device(device: str | Any = "cpu") -> Any:
    """`"auto"` picks CUDA when there is one; anything else is passed to `torch.device`."""
    import torch

    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def torch_dtype(precision: str) -> Any:
    import torch

    try:
        return getattr(torch, _PRECISIONS[precision])
    except KeyError:
        raise ValueError(
            f"precision must be one of {sorted(_PRECISIONS)}, got {precision!r}"
        ) from None


def file_identity(path: str | Path) -> str:
    """Path plus size and mtime: a changed file is a different model."""
    path = Path(path).resolve()
    stat = path.stat()
    return f"{path}@{stat.st_size}:{stat.st_mtime_ns}"


def freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


# ----------------------------------------------------------------------------- backbone record


@dataclass(frozen=True)
class Backbone:
    """A loaded image (and maybe text) encoder with the preprocessing it is used with.

    `preprocess` maps a (N, H, W, 3) uint8 RGB batch to a float32 CPU pixel tensor; `forward`
    maps pixels on `device` in `dtype` to embeddings (no normalisation). `id` names the model
    file and architecture, `preprocess_id` the preprocessing: together they key shared caches.
    """

    id: str
    model: Any
    device: Any
    dtype: Any
    preprocess_id: str
    preprocess: Callable[[np.ndarray], Any] | None
    forward: Callable[[Any], Any]
    encode_text: Callable[[list[str]], Any] | None = None
    tokenizer: Any = None
    context_length: int | None = None
    source: str = ""  # the weight file read, where `id` names content rather than a file

    def embed_pixels(self, pixels: Any, batch_size: int = 32) -> Any:
        """Embeddings of a float pixel tensor, in batches, on `device` in `dtype` (no grad)."""
        import torch

        outputs = []
        with torch.inference_mode():
            for start in range(0, len(pixels), batch_size):
                chunk = pixels[start : start + batch_size].to(self.device, self.dtype)
                outputs.append(self.forward(chunk))
        return torch.cat(outputs)

    def embed_images(self, images: np.ndarray | Sequence[np.ndarray], batch_size: int = 32) -> Any:
        """Preprocess uint8 RGB images and embed them: float32 CPU tensor (N, D)."""
        if self.preprocess is None:
            raise TypeError(f"backbone {self.id} has no stock preprocessing; embed pixels directly")
        return self.embed_pixels(self.preprocess(images), batch_size).float().cpu()

    def embed_texts(self, texts: list[str]) -> Any:
        if self.encode_text is None:
            raise TypeError(f"backbone {self.id} has no text tower")
        import torch

        with torch.inference_mode():
            return self.encode_text(list(texts)).float().cpu()


# ----------------------------------------------------------------------------- loaders


def load_open_clip(
    context: ScoringContext,
    model_name: str,
    checkpoint: str | Path,
    precision: str = "fp32",
    model_overrides: dict | None = None,
) -> Backbone:
    """An OpenAI CLIP through open_clip from a local checkpoint (QuickGELU forced, see module doc)."""
    checkpoint = Path(checkpoint)
    dev, dtype = torch_device(context.device), torch_dtype(precision)
    overrides = dict(model_overrides or {})
    ident = f"open_clip:{model_name}:{file_identity(checkpoint)}:{freeze(overrides)}"

    def build() -> Backbone:
        import open_clip

        with reading_weight_file(checkpoint):
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name,
                pretrained=str(checkpoint),
                precision=precision,
                device=dev,
                force_quick_gelu=True,
                **overrides,
            )
        model.eval()
        return Backbone(
            id=ident,
            model=model,
            device=dev,
            dtype=dtype,
            preprocess_id=f"open_clip-val:{describe_transform(preprocess)}",
            preprocess=functools.partial(pil_transform_batch, preprocess, pool=context.frames),
            forward=model.encode_image,
            **_open_clip_text_encoder(model, model_name, dev),
        )

    return context.models.get(("open_clip", ident, str(dev), str(dtype)), build)


#: The image tower a text-only model is built with (open_clip's `CLIP` always builds one); it is
#: dropped once built, and none of the file's image tensors are read.
STUB_VISION_CFG = {"layers": 1, "width": 64, "head_width": 64, "patch_size": 32, "image_size": 32}


def load_open_clip_text(
    context: ScoringContext,
    model_name: str,
    checkpoint: str | Path,
    precision: str = "fp32",
    model_overrides: dict | None = None,
) -> Backbone:
    """Only the text tower of an OpenAI CLIP file, through open_clip (as `load_open_clip`, QuickGELU forced).

    clip_t embeds its frames with the shared image tower (`clip_vision.py`) and needs open_clip
    only for the prompt: building and reading the image half too cost ViT-L/14 about 1.2 GB and
    seconds of setup. open_clip builds the model with a stub image tower, which is then dropped
    (`model.visual` is None); every text tensor comes from the file and a missing one is an error
    naming the file. Same text embeddings as `load_open_clip`'s model, bit for bit (tested).
    """
    checkpoint = Path(checkpoint)
    dev, dtype = torch_device(context.device), torch_dtype(precision)
    overrides = {**(model_overrides or {}), "vision_cfg": STUB_VISION_CFG}
    ident = f"open_clip-text:{model_name}:{file_identity(checkpoint)}:{freeze(overrides)}"

    def build() -> Backbone:
        import open_clip

        model = open_clip.create_model(
            model_name,
            pretrained=None,
            precision=precision,
            device=dev,
            force_quick_gelu=True,
            **overrides,
        )
        model.visual = None
        missing, unexpected = model.load_state_dict(
            _open_clip_text_tensors(checkpoint), strict=False
        )
        if missing or unexpected:
            raise ValueError(
                f"{checkpoint} does not hold open_clip {model_name}'s text tower: "
                f"missing {sorted(missing)}, unexpected {sorted(unexpected)}"
            )
        model.eval()

        def no_image_tower(pixels: Any) -> Any:
            raise TypeError(f"{ident} is a text tower only")

        return Backbone(
            id=ident,
            model=model,
            device=dev,
            dtype=dtype,
            preprocess_id="none",
            preprocess=None,
            forward=no_image_tower,
            source=str(checkpoint),
            **_open_clip_text_encoder(model, model_name, dev),
        )

    return context.models.get(("open_clip-text", ident, str(dev), str(dtype)), build)


def _open_clip_text_tensors(checkpoint: Path) -> dict[str, Any]:
    """Every tensor of an open_clip CLIP file but the image tower's (`visual.*`), which is not read."""
    with reading_weight_file(checkpoint):
        if checkpoint.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(checkpoint), framework="pt") as handle:
                names = handle.keys()
                return {k: handle.get_tensor(k) for k in names if not k.startswith("visual.")}
        from open_clip.factory import load_state_dict  # .pt / .bin, OpenAI's TorchScript file too

        return {
            k: v for k, v in load_state_dict(str(checkpoint)).items() if not k.startswith("visual.")
        }


def _open_clip_text_encoder(model: Any, model_name: str, dev: Any) -> dict[str, Any]:
    """The Backbone fields that encode text with an open_clip model and its own tokenizer."""
    import open_clip

    context_length = int(getattr(model, "context_length", 77))
    tokenizer = open_clip.get_tokenizer(model_name, context_length=context_length)

    def encode_text(texts: list[str]):
        return model.encode_text(tokenizer(texts).to(dev))

    return {"encode_text": encode_text, "tokenizer": tokenizer, "context_length": context_length}


def load_timm_vit(
    context: ScoringContext,
    arch: str,
    checkpoint: str | Path,
    precision: str = "fp32",
    img_size: int = 224,
    model_overrides: dict | None = None,
) -> Backbone:
    """A timm ViT (CLS token after the final norm, `num_classes=0`) from a local weight file.

    timm's own pretrained path loads the file (`pretrained_cfg_overlay={"file": ...}`), so its
    checkpoint filter runs: original facebookresearch DINOv2 `.pth` files load too, and the
    518-pixel position embedding is resampled once to `img_size`. Preprocessing: DINOv2's
    evaluation transform (`imagenet_eval_transform`).
    """
    checkpoint = Path(checkpoint)
    dev, dtype = torch_device(context.device), torch_dtype(precision)
    overrides = dict(model_overrides or {})
    ident = f"timm:{arch}:{img_size}:{file_identity(checkpoint)}:{freeze(overrides)}"

    def build() -> Backbone:
        import timm

        with reading_weight_file(checkpoint):
            model = timm.create_model(
                arch,
                pretrained=True,
                pretrained_cfg_overlay={"file": str(checkpoint)},
                num_classes=0,
                img_size=img_size,
                **overrides,
            )
        model = model.to(dev, dtype).eval()
        crop = img_size
        resize = int(round(img_size * 256 / 224))
        return Backbone(
            id=ident,
            model=model,
            device=dev,
            dtype=dtype,
            preprocess_id=IMAGENET_EVAL_PREPROCESS_ID
            if crop == 224
            else f"imagenet-eval:short{resize}-bicubic-crop{crop}",
            preprocess=functools.partial(
                pil_transform_batch, imagenet_eval_transform(resize, crop), pool=context.frames
            ),
            forward=model,
        )

    return context.models.get(("timm", ident, str(dev), str(dtype)), build)


def load_dino_v1(
    context: ScoringContext,
    checkpoint: str | Path,
    precision: str = "fp32",
    model_overrides: dict | None = None,
) -> Backbone:
    """facebookresearch/dino `dino_vitb16` from its state dict (strict); forward = CLS after norm.

    No stock preprocessing: VBench's subject_consistency resizes float frames itself (see
    `metrics/vbench_consistency.py`).
    """

    checkpoint = Path(checkpoint)
    dev, dtype = torch_device(context.device), torch_dtype(precision)
    config = {
        "patch_size": 16,
        "embed_dim": 768,
        "depth": 12,
        "num_heads": 12,
        "mlp_ratio": 4.0,
        "img_size": 224,
    }
    config.update(model_overrides or {})
    ident = f"dino-v1:{file_identity(checkpoint)}:{freeze(config)}"

    def build() -> Backbone:
        model = dino_vision_transformer(**config)
        state = load_tensor_file(checkpoint)
        if isinstance(state, dict) and "state_dict" not in state and "teacher" in state:
            raise ValueError(
                f"{checkpoint} is a DINO training checkpoint; give the backbone-only *_pretrain.pth file"
            )
        model.load_state_dict(state, strict=True)
        model = model.to(dev, dtype).eval()
        return Backbone(
            id=ident,
            model=model,
            device=dev,
            dtype=dtype,
            preprocess_id="",
            preprocess=None,
            forward=model,
        )

    return context.models.get(("dino-v1", ident, str(dev), str(dtype)), build)


def check_hf_clip_preprocessor(folder: Path) -> None:
    """Refuse a folder whose `preprocessor_config.json` asks for other than `hf_clip_preprocess` does."""
    import json

    config_path = folder / "preprocessor_config.json"
    if not config_path.is_file():
        return
    config = json.loads(config_path.read_text())
    expected = {
        "size": {"shortest_edge": 224},
        "crop_size": {"height": 224, "width": 224},
        "image_mean": list(OPENAI_CLIP_MEAN),
        "image_std": list(OPENAI_CLIP_STD),
        "resample": 3,
        "do_center_crop": True,
        "do_normalize": True,
        "do_resize": True,
    }
    if config.get("size") == 224:  # the hub's openai folders use the old feature-extractor ints
        config["size"] = {"shortest_edge": 224}
    if config.get("crop_size") == 224:
        config["crop_size"] = {"height": 224, "width": 224}
    wrong = {
        key: config[key]
        for key, value in expected.items()
        if key in config and config[key] != value
    }
    if wrong:
        raise ValueError(f"{config_path} differs from OpenAI CLIP's stock preprocessing: {wrong}")


def folder_identity(folder: str | Path) -> str:
    """A model folder's path plus every file's name, size and mtime (configs and all weight
    shards): a changed folder is a different model."""
    import hashlib

    folder = Path(folder).resolve()
    digest = hashlib.sha256()
    for item in sorted(folder.iterdir()):
        if item.is_file():
            stat = item.stat()
            digest.update(f"{item.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return f"{folder}@{digest.hexdigest()[:16]}"


def describe_transform(transform: Any) -> str:
    """A stable text of a torchvision Compose (its repr lists sizes, interpolation, mean, std)."""
    return " ".join(str(transform).split())


# ----------------------------------------------------------------------------- DINO v1 ViT


def dino_vision_transformer(
    patch_size: int = 16,
    embed_dim: int = 768,
    depth: int = 12,
    num_heads: int = 12,
    mlp_ratio: float = 4.0,
    img_size: int = 224,
) -> Any:
    """A randomly initialised DINO ViT (`vit_base(patch_size=16)` shape by default)."""
    return _dino_module_class()(patch_size, embed_dim, depth, num_heads, mlp_ratio, img_size)


@functools.cache
def _dino_module_class() -> type:
    """Define the DINO ViT classes on first use so importing this module does not import torch."""
    import math

    import torch
    from torch import nn

    class Attention(nn.Module):
        def __init__(self, dim: int, num_heads: int) -> None:
            super().__init__()
            self.num_heads = num_heads
            self.scale = (dim // num_heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3, bias=True)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            batch, tokens, channels = x.shape
            qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, channels // self.num_heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
            weights = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
            return self.proj((weights @ v).transpose(1, 2).reshape(batch, tokens, channels))

    class Mlp(nn.Module):
        def __init__(self, dim: int, hidden: int) -> None:
            super().__init__()
            self.fc1 = nn.Linear(dim, hidden)
            self.act = nn.GELU()
            self.fc2 = nn.Linear(hidden, dim)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc2(self.act(self.fc1(x)))

    class Block(nn.Module):
        def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
            super().__init__()
            self.norm1 = nn.LayerNorm(dim, eps=1e-6)
            self.attn = Attention(dim, num_heads)
            self.norm2 = nn.LayerNorm(dim, eps=1e-6)
            self.mlp = Mlp(dim, int(dim * mlp_ratio))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    class PatchEmbed(nn.Module):
        def __init__(self, patch_size: int, embed_dim: int) -> None:
            super().__init__()
            self.patch_size = patch_size
            self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.proj(x).flatten(2).transpose(1, 2)

    class DinoVisionTransformer(nn.Module):
        """DINO's ViT: parameter names of facebookresearch/dino `vision_transformer.py`."""

        def __init__(self, patch_size, embed_dim, depth, num_heads, mlp_ratio, img_size) -> None:
            super().__init__()
            grid = img_size // patch_size
            self.patch_embed = PatchEmbed(patch_size, embed_dim)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
            self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, embed_dim))
            self.blocks = nn.ModuleList(
                Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth)
            )
            self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
            nn.init.trunc_normal_(self.cls_token, std=0.02)

        def interpolate_pos_encoding(self, tokens: int, height: int, width: int) -> torch.Tensor:
            """DINO's rule: bicubic by scale factor (grid + 0.1) / sqrt(N), only when the grid differs."""
            patches = tokens - 1
            stored = self.pos_embed.shape[1] - 1
            if patches == stored and height == width:
                return self.pos_embed
            side = math.sqrt(stored)
            dim = self.pos_embed.shape[-1]
            rows = height // self.patch_embed.patch_size + 0.1
            cols = width // self.patch_embed.patch_size + 0.1
            grid = self.pos_embed[:, 1:].reshape(1, int(side), int(side), dim).permute(0, 3, 1, 2)
            grid = nn.functional.interpolate(
                grid, scale_factor=(rows / side, cols / side), mode="bicubic"
            )
            if grid.shape[-2:] != (int(rows), int(cols)):
                raise ValueError(
                    f"position grid {tuple(grid.shape[-2:])} != patch grid {(int(rows), int(cols))}"
                )
            grid = grid.permute(0, 2, 3, 1).view(1, -1, dim)
            return torch.cat((self.pos_embed[:, :1], grid), dim=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            height, width = x.shape[-2:]
            x = self.patch_embed(x)
            x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
            x = x + self.interpolate_pos_encoding(x.shape[1], height, width)
            for block in self.blocks:
                x = block(x)
            return self.norm(x)[:, 0]

    return DinoVisionTransformer
