"""Random weights in every real on-disk format, written where the weights resolver looks.

No pretrained model can be downloaded on the development machines, yet timings and loading
paths should be those of the real files. `write_random_weights(root, metric_names)` writes,
for the given metrics, every model file they declare at `root/<WeightFile.filename>` (the place
`metrics/weights.py` looks when `$KALEIDO_BENCH_WEIGHTS` is `root`), in the format the real
loaders read:

| file | format | full size |
|---|---|---|
| `open_clip/ViT-B-32-openai.safetensors`, `ViT-L-14-...` | open_clip `CLIP` state dict, safetensors | `open_clip.create_model(name, force_quick_gelu=True)` |
| `hf/openai--clip-vit-large-patch14/` | transformers `CLIPModel.save_pretrained` + the hub's `preprocessor_config.json`; full size: image tower = the open_clip ViT-L-14 file's tensors (as the real files) | openai/clip-vit-large-patch14's config, by hand |
| `opens2v/aesthetic-model.pth` | `torch.save` of OpenS2V's MLP state dict (`layers.{0,2,4,6,7}`) | 768-1024-128-64-16-1 |
| `timm/vit_base_patch14_dinov2.lvd142m.safetensors` | timm ViT state dict, safetensors, as the hub's file | ViT-B/14, 518 px position embedding |
| `dino/dino_vitbase16_pretrain.pth` | `torch.save` of `backbones.dino_vision_transformer()` | ViT-B/16 |
| `glint360k_curricular_face_r101_backbone.bin` | `torch.save` of TFace's IR state dict | IR-101 |
| `insightface_buffalo_l/models/buffalo_l/*.onnx` | ONNX, read by insightface's `FaceAnalysis` | SYNTHETIC and TINY, see below |
| `hf/q-future--one-align/` | one-align's folder: official config fields and key names, fp16 safetensors, a small sentencepiece tokenizer | mPLUG-Owl2 at the release's shapes (8B parameters) |

The buffalo_l pack is NOT full size: a real SCRFD-10G detector and ArcFace R50 cannot be built
here, so both sizes write the synthetic pack the face tests use (`synthetic_buffalo_l`: two
tiny ONNX graphs with buffalo_l's input and output layout), set to find one face in every
image. Face detection and ArcFace timings measured with it are therefore NOT representative
of the real pack; CurricularFace's IR-101 is full size and runs on every sampled frame.

`size="tiny"` writes small models of the same formats (for tests); metrics then need the
options of `metric_options(name, "tiny")` (architecture overrides) to load them. Values
computed with random weights mean nothing: these files are for timing and loading paths only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from kaleido_bench.metrics.weights import WeightFile

SIZES = ("full", "tiny")

TINY_OPEN_CLIP = {
    "ViT-B-32": {
        "embed_dim": 16,
        "vision_cfg": {
            "image_size": 224,
            "layers": 2,
            "width": 32,
            "patch_size": 32,
            "head_width": 16,
        },
        "text_cfg": {
            "context_length": 77,
            "vocab_size": 49408,
            "width": 32,
            "heads": 2,
            "layers": 1,
        },
    },
    "ViT-L-14": {
        "embed_dim": 16,
        "vision_cfg": {
            "image_size": 224,
            "layers": 2,
            "width": 32,
            "patch_size": 14,
            "head_width": 16,
        },
        "text_cfg": {
            "context_length": 77,
            "vocab_size": 49408,
            "width": 32,
            "heads": 2,
            "layers": 1,
        },
    },
}
TINY_DINOV2 = {"embed_dim": 32, "depth": 2, "num_heads": 2}
TINY_DINO = {"embed_dim": 32, "depth": 2, "num_heads": 2}
TINY_IR_STAGE_UNITS = (1, 1, 1, 1)

#: openai/clip-vit-large-patch14's config.json dimensions (vision and text towers).
HF_CLIP_L14_VISION = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "patch_size": 14,
    "image_size": 224,
    "projection_dim": 768,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
}
HF_CLIP_L14_TEXT = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "vocab_size": 49408,
    "projection_dim": 768,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    "bos_token_id": 0,
    "pad_token_id": 1,
    "eos_token_id": 2,
}
HF_CLIP_TINY_VISION = {
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "patch_size": 32,
    "image_size": 224,
    "projection_dim": 768,  # the aesthetic head reads 768-d embeddings whatever the tower
}
HF_CLIP_TINY_TEXT = {
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "vocab_size": 99,
    "max_position_embeddings": 77,
    "bos_token_id": 0,
    "eos_token_id": 1,
}
#: the hub's preprocessor_config.json of openai/clip-vit-large-patch14 (old feature-extractor ints)
HF_CLIP_PREPROCESSOR_CONFIG = {
    "crop_size": 224,
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "size": 224,
}

#: insightface's ArcFace 5-point template (112 px), doubled: the landmarks `norm_crop(..., 224)`
#: maps onto themselves.
TEMPLATE_224 = 2 * np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    np.float32,
)
#: the synthetic ArcFace's embedding width (the real w600k_r50 gives 512)
ARCFACE_DIM = 512


# ----------------------------------------------------------------------------- public API


def metric_options(metric_name: str, size: str = "full") -> dict[str, Any]:
    """Options a metric needs to load the files of `size` (architecture overrides for tiny; none for full)."""
    _check_size(size)
    if size == "full":
        return {}
    overrides = {
        "clip_i": {"model_overrides": TINY_OPEN_CLIP["ViT-B-32"]},
        "clip_t": {"model_overrides": TINY_OPEN_CLIP["ViT-B-32"]},
        "background_consistency": {"model_overrides": TINY_OPEN_CLIP["ViT-B-32"]},
        "clip_i_l14": {"model_overrides": TINY_OPEN_CLIP["ViT-L-14"]},
        "clip_t_l14": {"model_overrides": TINY_OPEN_CLIP["ViT-L-14"]},
        "dino_i": {"model_overrides": TINY_DINOV2},
        "decoupling": {"model_overrides": TINY_DINOV2},
        "subject_consistency": {"model_overrides": TINY_DINO},
        "face_sim_cur": {"stage_units": TINY_IR_STAGE_UNITS},
    }
    return dict(overrides.get(metric_name, {}))


def weight_files(metric_names: Iterable[str]) -> list[WeightFile]:
    """The distinct weight files the named metrics declare, in order (package-shipped ones left out)."""
    from kaleido_bench.metrics.base import load_builtin_metrics

    registry = load_builtin_metrics()
    seen: dict[str, WeightFile] = {}
    for name in metric_names:
        for weight in registry.get(name).weights:
            if weight.package is None and weight.filename not in seen:
                seen[weight.filename] = weight
    return list(seen.values())


def write_random_weights(
    root: str | Path, metric_names: Iterable[str], size: str = "full", seed: int = 0
) -> dict[str, Path]:
    """Write random weights for `metric_names` under `root`; {filename: path} of the files written.

    Files (or non-empty folders) already at their place are kept, so a second call is cheap.
    Raises KeyError for a declared weight file this module has no writer for.
    """
    _check_size(size)
    root = Path(root)
    writers = _writers()
    written: dict[str, Path] = {}
    for weight in weight_files(metric_names):
        target = root / weight.filename
        if _present(target):
            continue
        if weight.filename not in writers:
            raise KeyError(f"no random-weights writer for {weight.filename} ({weight.description})")
        target.parent.mkdir(parents=True, exist_ok=True)
        _seed(seed)
        writers[weight.filename](target, size, seed)
        written[weight.filename] = target
    return written


# ----------------------------------------------------------------------------- writers


def _writers() -> dict[str, Callable[[Path, str, int], None]]:
    """Writer per resolver file name (looked up here so this module imports without torch)."""
    from kaleido_bench.metrics import backbones
    from kaleido_bench.metrics.aesthetics import AESTHETIC_MLP
    from kaleido_bench.metrics.face_sim_arc import BUFFALO_L
    from kaleido_bench.metrics.face_sim_cur import CURRICULAR_FACE
    from kaleido_bench.metrics.qalign import ONE_ALIGN

    return {
        backbones.OPENCLIP_VIT_B32_OPENAI.filename: lambda p, s, _: write_open_clip(
            p, "ViT-B-32", s
        ),
        backbones.OPENCLIP_VIT_L14_OPENAI.filename: lambda p, s, _: write_open_clip(
            p, "ViT-L-14", s
        ),
        backbones.CLIP_VIT_L14_HF.filename: lambda p, s, _: write_hf_clip_l14(p, s),
        AESTHETIC_MLP.filename: lambda p, s, _: write_aesthetic_mlp(p),
        backbones.DINOV2_VITB14.filename: lambda p, s, _: write_dinov2(p, s),
        backbones.DINO_VITB16.filename: lambda p, s, _: write_dino_v1(p, s),
        CURRICULAR_FACE.filename: lambda p, s, _: write_curricular_face(p, s),
        BUFFALO_L.filename: lambda p, s, seed: write_buffalo_l(p, seed),
        ONE_ALIGN.filename: lambda p, s, seed: write_qalign(p, s, seed),
    }


#: a tiny mPLUG-Owl2 (vision 2 x 32 at 448/14, abstractor 2 x 32 with 8 queries, LLaMA 2 x 64)
TINY_QALIGN = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "visual_config": {
        "visual_model": {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
        },
        "visual_abstractor": {
            "hidden_size": 32,
            "intermediate_size": 48,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_learnable_queries": 8,
            "encoder_hidden_size": 32,
        },
    },
}
#: Q-Align's own preprocessor_config.json (Q-Future/Q-Align, repository root)
QALIGN_PREPROCESSOR_CONFIG = {
    "crop_size": 448,
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "size": 448,
}


def write_qalign(folder: Path, size: str = "full", seed: int = 0) -> None:
    """`q-future/one-align`'s folder: config.json, Q-Align's preprocessor config, a sentencepiece
    `tokenizer.model` (LLaMA's options, trained on a few sentences; the five rating words are single
    pieces) with a slow-tokenizer config, and `model.safetensors` in fp16 with the official key
    names (`qalign.official_state`). "full" has the release's shapes (about 8B parameters, 16 GB)."""
    import io

    import sentencepiece as spm
    import torch
    from safetensors.torch import save_file

    from kaleido_bench.metrics.qalign import (
        LABELS,
        QAlignConfig,
        build_modules,
        official_state,
        release_config,
    )

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    words = [
        "how",
        "would",
        "you",
        "rate",
        "the",
        "quality",
        "of",
        "this",
        "video",
        "is",
        *LABELS * 6,
    ]
    lines = [" ".join(rng.choice(words, size=10)) for _ in range(2000)]
    lines += [
        "USER: How would you rate the quality of this video?",
        "ASSISTANT: The quality of the video is",
    ] * 50
    model_file = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model_file, model_type="bpe", vocab_size=400,
        byte_fallback=True, split_digits=True, add_dummy_prefix=True, remove_extra_whitespaces=False,
        normalization_rule_name="identity", unk_id=0, bos_id=1, eos_id=2, pad_id=-1, character_coverage=1.0,
        minloglevel=2,
    )  # fmt: skip
    (folder / "tokenizer.model").write_bytes(model_file.getvalue())
    tokenizer_config = {"tokenizer_class": "LlamaTokenizer", "legacy": False, "add_bos_token": True}
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    (folder / "preprocessor_config.json").write_text(
        json.dumps(QALIGN_PREPROCESSOR_CONFIG, indent=2)
    )
    raw = dict(TINY_QALIGN) if size == "tiny" else {}
    config = QAlignConfig.from_dict(
        {**raw, "vocab_size": 400 if size == "tiny" else 32000, "rms_norm_eps": 1e-5}
    )
    network = build_modules(config, "sdpa")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in network.named_parameters():
            noise = torch.randn(tensor.shape, generator=generator)
            if "norm" in name or "ffn_ln" in name:
                tensor.copy_(1.0 + 0.1 * noise if name.endswith("weight") else 0.02 * noise)
            elif tensor.ndim >= 2:
                tensor.copy_(
                    noise / np.sqrt(np.prod(tensor.shape[1:]))
                    if "embed" not in name
                    else 0.5 * noise
                )
            else:
                tensor.copy_(0.02 * noise)
    state = {k: v.half() for k, v in official_state(network, config).items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(release_config(config), indent=2))


def write_open_clip(path: Path, model_name: str, size: str = "full") -> None:
    """open_clip `CLIP` state dict as safetensors (the hub's `open_clip_model.safetensors` layout)."""
    import open_clip

    overrides = TINY_OPEN_CLIP[model_name] if size == "tiny" else {}
    model = open_clip.create_model(model_name, pretrained=None, force_quick_gelu=True, **overrides)
    _save_safetensors(model, path)


def write_hf_clip_l14(folder: Path, size: str = "full") -> None:
    """A transformers `CLIPModel` folder (both towers, safetensors) + the hub's preprocessor config.

    Full size: the image tower holds the same tensors as `write_open_clip(..., "ViT-L-14")` writes
    with the same seed (both are drawn from a fresh open_clip ViT-L-14), as the real
    openai/clip-vit-large-patch14 folder and open_clip file hold the same OpenAI weights.
    """
    import torch
    from transformers import CLIPConfig, CLIPModel

    vision, text = (
        (HF_CLIP_L14_VISION, HF_CLIP_L14_TEXT)
        if size == "full"
        else (HF_CLIP_TINY_VISION, HF_CLIP_TINY_TEXT)
    )
    tower = None
    if size == "full":
        import open_clip

        from kaleido_bench.metrics.clip_vision import open_clip_to_transformers

        state = open_clip.create_model(
            "ViT-L-14", pretrained=None, force_quick_gelu=True
        ).state_dict()
        tower = open_clip_to_transformers(state, vision["num_hidden_layers"])
    config = CLIPConfig(
        text_config=dict(text),
        vision_config=dict(vision),
        projection_dim=768,
        logit_scale_init_value=2.6592,
    )
    model = CLIPModel(config)
    if tower is not None:
        with torch.no_grad():
            own = model.state_dict()
            for name, tensor in tower.items():
                own[name].copy_(tensor)
    model.save_pretrained(folder, safe_serialization=True)
    (folder / "preprocessor_config.json").write_text(
        json.dumps(HF_CLIP_PREPROCESSOR_CONFIG, indent=2) + "\n"
    )


def write_aesthetic_mlp(path: Path) -> None:
    """OpenS2V's head (the same small MLP at both sizes), official key names."""
    import torch

    from kaleido_bench.metrics.aesthetics import aesthetic_mlp

    torch.save(aesthetic_mlp().state_dict(), path)


def write_dinov2(path: Path, size: str = "full") -> None:
    """timm DINOv2 ViT-B/14 as the hub's file: no head, 518 px (37x37 + 1) position embedding."""
    import timm

    overrides = TINY_DINOV2 if size == "tiny" else {}
    model = timm.create_model(
        "vit_base_patch14_dinov2", pretrained=False, num_classes=0, img_size=518, **overrides
    )
    _save_safetensors(model, path)


def write_dino_v1(path: Path, size: str = "full") -> None:
    """facebookresearch/dino `dino_vitbase16_pretrain.pth`: the backbone's bare state dict."""
    import torch

    from kaleido_bench.metrics.backbones import dino_vision_transformer

    torch.save(dino_vision_transformer(**(TINY_DINO if size == "tiny" else {})).state_dict(), path)


def write_curricular_face(path: Path, size: str = "full") -> None:
    """TFace IR-101 (or a 1-1-1-1 IR for tiny) state dict, as the released `.bin`."""
    import torch

    from kaleido_bench.metrics.curricular_face import IR101_STAGE_UNITS, build_ir_backbone

    torch.save(
        build_ir_backbone(
            TINY_IR_STAGE_UNITS if size == "tiny" else IR101_STAGE_UNITS
        ).state_dict(),
        path,
    )


def write_buffalo_l(root: Path, seed: int = 0) -> None:
    """The SYNTHETIC buffalo_l pack at `root/models/buffalo_l` (tiny graphs at every size).

    Its detector finds one face in EVERY image, so the face metrics do their per-face work
    (alignment, CurricularFace's IR-101 on every sampled frame) as on a real face video.
    """
    weight = np.random.default_rng(seed).standard_normal((3, ARCFACE_DIM)).astype(np.float32)
    synthetic_buffalo_l(root / "models" / "buffalo_l", weight, always_face=True)


def synthetic_buffalo_l(folder: Path, weight: np.ndarray, always_face: bool = False) -> None:
    """Two tiny ONNX graphs with buffalo_l's file names and input / output layouts.

    det_10g.onnx: SCRFD's 9-output layout (strides 8/16/32, 2 anchors, keypoints) that reports
    one 128 px face at stride-32 cell (5, 5) of the 320x320 input when that cell is bright (or
    always, with `always_face`); w600k_r50.onnx: (N, 3, 112, 112) -> channel means @ `weight`
    (3, D). Not a face model: detection and recognition cost next to nothing.
    """
    import onnx
    from onnx import TensorProto, helper

    folder.mkdir(parents=True, exist_ok=True)
    image = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "height", "width"])
    nodes, outputs = _scrfd_like_nodes(threshold=-1e3 if always_face else 0.1)
    graphs = {
        "det_10g.onnx": helper.make_graph(nodes, "scrfd_like", [image], outputs),
        "w600k_r50.onnx": _arcface_like_graph(weight),
    }
    for name, graph in graphs.items():
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, folder / name)


def _scrfd_like_nodes(threshold: float = 0.1) -> tuple[list, list]:
    """The fake detector: cell (5, 5)'s score = sigmoid(20 (brightness - threshold)), constants elsewhere."""
    from onnx import TensorProto, helper

    cells = 10
    mask = np.zeros((1, 1, cells, cells), np.float32)
    mask[0, 0, 5, 5] = 1.0
    nodes = [
        helper.make_node(
            "AveragePool", ["input.1"], ["pool"], kernel_shape=[32, 32], strides=[32, 32]
        ),
        helper.make_node("ReduceMean", ["pool"], ["lum"], axes=[1], keepdims=1),
        _onnx_constant("threshold", threshold),
        _onnx_constant("gain", 20.0),
        _onnx_constant("mask", mask),
        _onnx_constant("second_anchor", np.zeros((1, 1, cells, cells))),
        helper.make_node("Sub", ["lum", "threshold"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["probability"]),
        helper.make_node("Mul", ["probability", "mask"], ["one_cell"]),
        helper.make_node("Concat", ["one_cell", "second_anchor"], ["anchors"], axis=1),
        helper.make_node("Transpose", ["anchors"], ["nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node(
            "Constant",
            [],
            ["column"],
            value=helper.make_tensor("column", TensorProto.INT64, [2], [-1, 1]),
        ),
        helper.make_node("Reshape", ["nhwc", "column"], ["score_32"]),
    ]
    keypoints = (
        (TEMPLATE_224 / 2 - 56.0) * (128 / 112) / 32
    )  # around the cell centre, in stride units
    rows = {stride: (320 // stride) ** 2 * 2 for stride in (8, 16, 32)}
    for stride, count in rows.items():
        if stride != 32:
            nodes.append(_onnx_constant(f"score_{stride}", np.zeros((count, 1))))
        nodes.append(
            _onnx_constant(f"bbox_{stride}", np.full((count, 4), 2.0 if stride == 32 else 0.0))
        )
        kps = (
            np.tile(keypoints.reshape(1, 10), (count, 1)) if stride == 32 else np.zeros((count, 10))
        )
        nodes.append(_onnx_constant(f"kps_{stride}", kps))
    outputs = [
        helper.make_tensor_value_info(f"{kind}_{stride}", TensorProto.FLOAT, [rows[stride], width])
        for kind, width in (("score", 1), ("bbox", 4), ("kps", 10))
        for stride in (8, 16, 32)
    ]
    return nodes, outputs


def _arcface_like_graph(weight: np.ndarray) -> Any:
    """(N, 3, 112, 112) -> global average pool -> @ weight: an 'embedding' of the crop's mean colour."""
    from onnx import TensorProto, helper

    return helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input.1"], ["gap"]),
            helper.make_node("Flatten", ["gap"], ["flat"]),
            _onnx_constant("projection", weight),
            helper.make_node("MatMul", ["flat", "projection"], ["embedding"]),
        ],
        "arcface_like",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["batch", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", weight.shape[1]])],
    )


# ----------------------------------------------------------------------------- helpers


def _onnx_constant(name: str, array: Any) -> Any:
    from onnx import helper, numpy_helper

    return helper.make_node(
        "Constant", [], [name], value=numpy_helper.from_array(np.asarray(array, np.float32), name)
    )


def _save_safetensors(model: Any, path: Path) -> None:
    """A module's state dict as safetensors (contiguous copies: safetensors refuses views)."""
    from safetensors.torch import save_file

    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, str(path))


def _present(target: Path) -> bool:
    """A file, or a non-empty folder (the resolver's rule for snapshot weights)."""
    return target.is_file() or (target.is_dir() and any(target.iterdir()))


def _seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def _check_size(size: str) -> None:
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
