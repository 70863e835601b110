"""Q-Align (`q-future/one-align`, mPLUG-Owl2) in torch on transformers 5 building blocks.

OpenS2V's MotionSmoothness (`eval/get_motion_smoothness.py` at 210eb08) runs Q-Align's
`QAlignVideoScorer` on one 3-frame window per frame. Its model, read from
`eval/utils/Q-Align/q_align/model/` there:

- vision tower (`visual_encoder.py` `MplugOwlVisionModel`): a CLIP ViT (L/14 at 448: 1025 tokens)
  with the CLIP layer order and QuickGELU, but a FUSED `query_key_value` whose rows are
  interleaved per head (`reshape(b, s, heads, 3, head_dim)`, line ~150) and `post_layernorm`
  applied to EVERY token (line ~425), not only the class token. Here: transformers'
  `CLIPVisionModel` (with the official's attention maths registered as an attention function
  on a GPU, sdpa on a CPU), the fused rows split into
  `q_proj` / `k_proj` / `v_proj` at load, and `post_layernorm` on `last_hidden_state`.
- visual abstractor (`MplugOwlVisualAbstractorModel`): 64 learned queries, 6 cross-attention
  layers whose keys are `[norm1(queries); normk(patches)] + sin-cos positions` and whose values
  carry no positions; the residual is taken from the NORMED queries (line ~640), then a SwiGLU
  MLP with a LayerNorm inside (`ffn_ln`); `visual_fc` to the LLM width and a learned `vit_eos`
  token: 65 tokens a frame. No transformers class does this; it is written here (its masks are
  all zeros there and are left out).
- LLaMA-2 with modality-adaptive parts (`modeling_llama2.py`, the monkeypatch of transformers'
  llama module): `input_layernorm`, `post_attention_layernorm`, `k_proj` and `v_proj` are
  `MultiwayNetwork`s (index 0 text, 1 image tokens); `q_proj`, `o_proj`, the MLP and the final
  norm are shared. Here: transformers' `LlamaRMSNorm`, `LlamaMLP`, `LlamaRotaryEmbedding`,
  `apply_rotary_pos_emb` and its sdpa attention (the official default in transformers 4.36),
  with the two ways applied to the contiguous text / image segments of the fixed prompt.

Checkpoint: the release's folder (`config.json`, `preprocessor_config.json`, `tokenizer.model`,
`tokenizer_config.json`, weights as `model.safetensors`, `pytorch_model.bin` or sharded with an
index). Every official key is mapped and every parameter of ours must come from one key: a
missing or unexpected key is an error naming the key and the file. The abstractor's sin-cos
`q_pos_embed` / `k_pos_embed` buffers are read when present and otherwise rebuilt as the official
model builds them; stale `rotary_emb.inv_freq` buffers are ignored as transformers ignores them.

Tokens: the slow sentencepiece `LlamaTokenizer` of transformers 4.36 (BOS prepended; `legacy`
from `tokenizer_config.json`), reproduced with `sentencepiece` directly because transformers 5's
`LlamaTokenizer` is the converted fast one. The label ids are `tokenizer(label)["input_ids"][1]`
as in the official script (position 1 because of the BOS).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kaleido_bench.core.errors import CheckpointMismatchError
from kaleido_bench.metrics.weights import WeightFile

ONE_ALIGN = WeightFile(
    "hf/q-future--one-align",
    "Q-Align OneAlign (mPLUG-Owl2: CLIP ViT-L/14 at 448, visual abstractor, LLaMA-2-7B) folder",
    repo_id="q-future/one-align",
    snapshot=True,
    allow_patterns=(
        "config.json",
        "preprocessor_config.json",
        "tokenizer.model",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "*.safetensors",
        "*.safetensors.index.json",
        "pytorch_model*.bin",
        "pytorch_model.bin.index.json",
    ),
)

PROMPT = "USER: How would you rate the quality of this video?\n<|image|>\nASSISTANT: The quality of the video is"
IMAGE_TOKEN = "<|image|>"
IMAGE_TOKEN_INDEX = -200
LABELS = ("excellent", "good", "fair", "poor", "bad")
LABEL_WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)
TEXT, IMAGE = 0, 1  # MultiwayNetwork indices (modality indicators)


# ----------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class VisionConfig:
    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    image_size: int = 448
    patch_size: int = 14
    layer_norm_eps: float = 1e-6
    hidden_act: str = "quick_gelu"


@dataclass(frozen=True)
class AbstractorConfig:
    hidden_size: int = 1024
    intermediate_size: int = 2816
    num_hidden_layers: int = 6
    num_attention_heads: int = 16
    num_learnable_queries: int = 64
    encoder_hidden_size: int = 1024
    layer_norm_eps: float = 1e-6
    grid_size: int = 32


@dataclass(frozen=True)
class LanguageConfig:
    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int = 32
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    max_position_embeddings: int = 2048
    hidden_act: str = "silu"
    attention_bias: bool = False


@dataclass(frozen=True)
class QAlignConfig:
    """The fields of the release's `config.json` that define the network (defaults: the official
    config classes' defaults, `configuration_mplug_owl2.py`)."""

    vision: VisionConfig
    abstractor: AbstractorConfig
    language: LanguageConfig

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> QAlignConfig:
        visual = raw.get("visual_config") or {}
        if raw.get("rope_scaling"):
            raise ValueError(
                f"rope_scaling {raw['rope_scaling']} is not supported (one-align has none)"
            )

        def pick(kind: type, source: dict[str, Any]) -> Any:
            names = {f.name for f in kind.__dataclass_fields__.values()}
            return kind(**{k: v for k, v in source.items() if k in names and v is not None})

        language = pick(LanguageConfig, raw)
        if raw.get("num_key_value_heads") is None:
            language = LanguageConfig(
                **{**language.__dict__, "num_key_value_heads": language.num_attention_heads}
            )
        return cls(
            pick(VisionConfig, visual.get("visual_model", {})),
            pick(AbstractorConfig, visual.get("visual_abstractor", {})),
            language,
        )

    @property
    def tokens_per_frame(self) -> int:
        return self.abstractor.num_learnable_queries + 1  # + vit_eos


# ----------------------------------------------------------------------------- tokenizer


class SlowLlamaTokenizer:
    """transformers 4.36's slow `LlamaTokenizer` for plain text (no special tokens inside).

    `legacy=True`: `sp.encode(text)` with the model's dummy prefix. `legacy=False`: the text gets
    a leading "▁", the model's dummy prefix is switched off and the unk-token trick of
    `LlamaTokenizer._tokenize` is applied. BOS is prepended when `add_bos_token` (default true).
    """

    def __init__(
        self, model_file: str | Path, legacy: bool = True, add_bos_token: bool = True
    ) -> None:
        import sentencepiece as spm

        self.legacy, self.add_bos_token = legacy, add_bos_token
        self.sp = spm.SentencePieceProcessor(model_file=str(model_file))
        self.bos_token_id = self.sp.bos_id()
        self.sp_no_dummy = self.sp
        if not legacy:
            from sentencepiece import sentencepiece_model_pb2

            proto = sentencepiece_model_pb2.ModelProto.FromString(Path(model_file).read_bytes())
            proto.normalizer_spec.add_dummy_prefix = False
            self.sp_no_dummy = spm.SentencePieceProcessor(model_proto=proto.SerializeToString())
            self.unk_token = self.sp.id_to_piece(self.sp.unk_id())
            self.unk_length = len(self.sp_no_dummy.encode(self.unk_token, out_type=str))

    @classmethod
    def from_folder(cls, folder: str | Path) -> SlowLlamaTokenizer:
        folder = Path(folder)
        config_path = folder / "tokenizer_config.json"
        config = json.loads(config_path.read_text()) if config_path.exists() else {}
        legacy = config.get("legacy")
        return cls(
            folder / "tokenizer.model",
            legacy=True if legacy is None else bool(legacy),
            add_bos_token=config.get("add_bos_token", True),
        )

    def __call__(self, text: str) -> list[int]:
        ids: list[int] = [self.bos_token_id] if self.add_bos_token else []
        if not text:
            return ids
        if self.legacy:
            return ids + self.sp.encode(text)
        text = "▁" + text.replace("▁", " ")
        pieces = self.sp_no_dummy.encode(self.unk_token + text, out_type=str)
        pieces = pieces[self.unk_length :] if len(pieces) >= self.unk_length else pieces
        return ids + [self.sp.piece_to_id(p) for p in pieces]


def prompt_input_ids(tokenizer: SlowLlamaTokenizer, prompt: str = PROMPT) -> list[int]:
    """Q-Align's `tokenizer_image_token` (mm_utils.py): chunks around `<|image|>`, BOS kept once."""
    chunks = [tokenizer(chunk) if chunk else [] for chunk in prompt.split(IMAGE_TOKEN)]
    offset = 1 if chunks and chunks[0] and chunks[0][0] == tokenizer.bos_token_id else 0
    ids = [chunks[0][0]] if offset else []
    separated: list[list[int]] = []
    for chunk in chunks:
        separated += [chunk, [IMAGE_TOKEN_INDEX] * (offset + 1)]
    for part in separated[:-1]:
        ids.extend(part[offset:])
    return ids


def label_token_ids(tokenizer: SlowLlamaTokenizer, labels: Iterable[str] = LABELS) -> list[int]:
    """`[id_[1] for id_ in tokenizer(labels)["input_ids"]]`: the first piece after BOS."""
    return [tokenizer(label)[1] for label in labels]


# ----------------------------------------------------------------------------- modules


OFFICIAL_VISION_ATTENTION = "mplug_owl2_eager"


def official_vision_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    scaling: float,
    dropout: float = 0.0,
    **_: Any,
) -> tuple[Any, Any]:
    """`MplugOwlVisionAttention`'s own maths (visual_encoder.py, lines ~165-180): scores scaled
    after the matmul and a softmax in the input dtype. transformers' "eager" upcasts the softmax
    to fp32, which moves fp16 features by an ulp; this keeps fp16 runs on the official's numbers."""
    import torch

    probs = torch.softmax(torch.matmul(query, key.transpose(-1, -2)) * scaling, dim=-1)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), probs


def register_vision_attention() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(OFFICIAL_VISION_ATTENTION, official_vision_attention)


def build_modules(
    config: QAlignConfig, attn_implementation: str = OFFICIAL_VISION_ATTENTION
) -> Any:
    """The whole network (random, uninitialised) as one `nn.Module` with our parameter names."""
    import torch
    from torch import nn
    from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaConfig
    from transformers.models.llama.modeling_llama import (
        LlamaMLP,
        LlamaRMSNorm,
        LlamaRotaryEmbedding,
    )

    vision = config.vision
    clip_config = CLIPVisionConfig(
        hidden_size=vision.hidden_size,
        intermediate_size=vision.intermediate_size,
        num_hidden_layers=vision.num_hidden_layers,
        num_attention_heads=vision.num_attention_heads,
        image_size=vision.image_size,
        patch_size=vision.patch_size,
        layer_norm_eps=vision.layer_norm_eps,
        hidden_act=vision.hidden_act,
        num_channels=3,
    )
    if attn_implementation == OFFICIAL_VISION_ATTENTION:
        register_vision_attention()
    clip_config._attn_implementation = attn_implementation
    lang = config.language
    llama_config = LlamaConfig(
        vocab_size=lang.vocab_size,
        hidden_size=lang.hidden_size,
        intermediate_size=lang.intermediate_size,
        num_hidden_layers=lang.num_hidden_layers,
        num_attention_heads=lang.num_attention_heads,
        num_key_value_heads=lang.num_key_value_heads,
        rms_norm_eps=lang.rms_norm_eps,
        rope_theta=lang.rope_theta,
        max_position_embeddings=lang.max_position_embeddings,
        hidden_act=lang.hidden_act,
        attention_bias=lang.attention_bias,
        mlp_bias=False,
    )

    class Multiway(nn.Module):
        """`MultiwayNetwork`: way 0 for text tokens, way 1 for image tokens (official names)."""

        def __init__(self, make: Any) -> None:
            super().__init__()
            self.multiway = nn.ModuleList([make(), make()])

        def forward(self, hidden: torch.Tensor, segments: Segments) -> torch.Tensor:
            text, image = self.multiway[TEXT], self.multiway[IMAGE]
            start, stop = segments.image.start, segments.image.stop
            parts = [text(hidden[:, :start])] if start else []
            parts.append(image(hidden[:, start:stop]))
            if stop < hidden.shape[1]:
                parts.append(text(hidden[:, stop:]))
            return torch.cat(parts, dim=1)

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            head_dim = lang.hidden_size // lang.num_attention_heads
            self.head_dim, self.num_heads, self.num_kv = (
                head_dim,
                lang.num_attention_heads,
                lang.num_key_value_heads,
            )
            bias = lang.attention_bias
            self.q_proj = nn.Linear(lang.hidden_size, self.num_heads * head_dim, bias=bias)
            self.k_proj = Multiway(
                lambda: nn.Linear(lang.hidden_size, self.num_kv * head_dim, bias=bias)
            )
            self.v_proj = Multiway(
                lambda: nn.Linear(lang.hidden_size, self.num_kv * head_dim, bias=bias)
            )
            self.o_proj = nn.Linear(self.num_heads * head_dim, lang.hidden_size, bias=bias)

        def forward(self, hidden: torch.Tensor, cos_sin: Any, segments: Segments) -> torch.Tensor:
            from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

            batch, length, _ = hidden.shape
            q = (
                self.q_proj(hidden)
                .view(batch, length, self.num_heads, self.head_dim)
                .transpose(1, 2)
            )
            k = (
                self.k_proj(hidden, segments)
                .view(batch, length, self.num_kv, self.head_dim)
                .transpose(1, 2)
            )
            v = (
                self.v_proj(hidden, segments)
                .view(batch, length, self.num_kv, self.head_dim)
                .transpose(1, 2)
            )
            q, k = apply_rotary_pos_emb(q, k, *cos_sin)
            groups = self.num_heads // self.num_kv
            k, v = repeat_kv(k, groups), repeat_kv(v, groups)
            out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=length > 1)
            return self.o_proj(out.transpose(1, 2).reshape(batch, length, -1))

    class DecoderLayer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.self_attn = Attention()
            self.mlp = LlamaMLP(llama_config)
            self.input_layernorm = Multiway(
                lambda: LlamaRMSNorm(lang.hidden_size, eps=lang.rms_norm_eps)
            )
            self.post_attention_layernorm = Multiway(
                lambda: LlamaRMSNorm(lang.hidden_size, eps=lang.rms_norm_eps)
            )

        def forward(self, hidden: torch.Tensor, cos_sin: Any, segments: Segments) -> torch.Tensor:
            hidden = hidden + self.self_attn(
                self.input_layernorm(hidden, segments), cos_sin, segments
            )
            return hidden + self.mlp(self.post_attention_layernorm(hidden, segments))

    class LanguageModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed_tokens = nn.Embedding(lang.vocab_size, lang.hidden_size)
            self.layers = nn.ModuleList([DecoderLayer() for _ in range(lang.num_hidden_layers)])
            self.norm = LlamaRMSNorm(lang.hidden_size, eps=lang.rms_norm_eps)
            self.rotary_emb = LlamaRotaryEmbedding(llama_config)

    class AbstractorLayer(nn.Module):
        """`MplugOwlVisualAbstractorLayer` with its official sub-module names."""

        def __init__(self) -> None:
            super().__init__()
            self.crossattention = AbstractorCrossAttention()

        def forward(self, queries: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
            return self.crossattention(queries, patches)

    abstract = config.abstractor

    class AbstractorMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w1 = nn.Linear(abstract.hidden_size, abstract.intermediate_size)
            self.w2 = nn.Linear(abstract.intermediate_size, abstract.hidden_size)
            self.w3 = nn.Linear(abstract.hidden_size, abstract.intermediate_size)
            self.ffn_ln = nn.LayerNorm(abstract.intermediate_size, eps=abstract.layer_norm_eps)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.w2(self.ffn_ln(nn.functional.silu(self.w1(x)) * self.w3(x)))

    class AbstractorAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.heads = abstract.num_attention_heads
            self.query = nn.Linear(abstract.hidden_size, abstract.hidden_size)
            self.key = nn.Linear(abstract.encoder_hidden_size, abstract.hidden_size)
            self.value = nn.Linear(abstract.encoder_hidden_size, abstract.hidden_size)
            q_pos, k_pos = abstractor_position_tables(abstract)
            self.register_buffer("q_pos_embed", q_pos)
            self.register_buffer("k_pos_embed", k_pos)

        def split(self, x: torch.Tensor) -> torch.Tensor:
            return x.view(*x.shape[:2], self.heads, -1).permute(0, 2, 1, 3)

        def forward(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
            positions = (
                torch.cat([self.q_pos_embed, self.k_pos_embed], dim=0)
                .unsqueeze(0)
                .to(queries.dtype)
            )
            key = self.split(self.key(keys + positions))
            value = self.split(self.value(keys))
            query = self.split(
                self.query(queries + self.q_pos_embed.unsqueeze(0).to(queries.dtype))
            )
            scores = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(query.shape[-1])
            context = torch.matmul(torch.softmax(scores, dim=-1), value)
            return context.permute(0, 2, 1, 3).reshape(*queries.shape[:2], -1)

    class AbstractorOutput(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.out_proj = nn.Linear(abstract.hidden_size, abstract.hidden_size)
            self.norm2 = nn.LayerNorm(abstract.hidden_size)  # eps 1e-5 there (no eps given)
            self.mlp = AbstractorMLP()

        def forward(self, context: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
            residual = residual + self.out_proj(context)
            return residual + self.mlp(self.norm2(residual))

    class AbstractorCrossAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attention = AbstractorAttention()
            self.output = AbstractorOutput()
            self.norm1 = nn.LayerNorm(abstract.hidden_size)  # eps 1e-5 there
            self.normk = nn.LayerNorm(abstract.hidden_size)

        def forward(self, queries: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
            queries = self.norm1(queries)  # the residual below is taken from the NORMED queries
            keys = torch.cat([queries, self.normk(patches)], dim=1)
            return self.output(self.attention(queries, keys), queries)

    class AbstractorEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList(
                [AbstractorLayer() for _ in range(abstract.num_hidden_layers)]
            )

    class VisualAbstractor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AbstractorEncoder()
            self.visual_fc = nn.Linear(abstract.hidden_size, lang.hidden_size)
            self.query_embeds = nn.Parameter(
                torch.empty(1, abstract.num_learnable_queries, abstract.hidden_size)
            )
            self.vit_eos = nn.Parameter(torch.empty(1, 1, lang.hidden_size))

        def forward(self, patches: torch.Tensor) -> torch.Tensor:
            hidden = self.query_embeds.expand(patches.shape[0], -1, -1)
            for layer in self.encoder.layers:
                hidden = layer(hidden, patches)
            hidden = self.visual_fc(hidden)
            return torch.cat([hidden, self.vit_eos.expand(hidden.shape[0], -1, -1)], dim=1)

    class MplugOwl2(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.vision_model = CLIPVisionModel(clip_config)
            self.visual_abstractor = VisualAbstractor()
            self.language_model = LanguageModel()
            self.lm_head = nn.Linear(lang.hidden_size, lang.vocab_size, bias=False)

    return MplugOwl2()


@dataclass(frozen=True)
class Segments:
    """Where the image tokens sit in every sequence of a batch (the prompt is fixed)."""

    image: slice


def abstractor_position_tables(config: AbstractorConfig) -> tuple[Any, Any]:
    """The official sin-cos tables (`visual_encoder.py` `get_1d/2d_sincos_pos_embed`, MAE's code)."""
    import torch

    def one_d(dim: int, positions: np.ndarray) -> np.ndarray:
        omega = np.arange(dim // 2, dtype=np.float32)
        omega /= dim / 2.0
        omega = 1.0 / 10000**omega
        out = np.einsum("m,d->md", positions.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    dim, grid_size = config.hidden_size, config.grid_size
    grid = np.meshgrid(
        np.arange(grid_size, dtype=np.float32), np.arange(grid_size, dtype=np.float32)
    )
    grid = np.stack(grid, axis=0).reshape([2, 1, grid_size, grid_size])
    two_d = np.concatenate([one_d(dim // 2, grid[0]), one_d(dim // 2, grid[1])], axis=1)
    two_d = np.concatenate([np.zeros([1, dim]), two_d], axis=0)
    q_pos = one_d(dim, np.arange(config.num_learnable_queries, dtype=np.float32))
    return torch.from_numpy(q_pos).float(), torch.from_numpy(two_d).float()


# ----------------------------------------------------------------------------- checkpoint


_IGNORED_SUFFIXES = (".rotary_emb.inv_freq",)
_OPTIONAL_SUFFIXES = (".q_pos_embed", ".k_pos_embed")


def checkpoint_files(folder: Path) -> list[Path]:
    """The weight files of a release folder: an index's shards, or the single file."""
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = folder / index_name
        if index.exists():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return [folder / shard for shard in shards]
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (folder / single).exists():
            return [folder / single]
    raise FileNotFoundError(
        f"no model.safetensors, pytorch_model.bin or index in {folder}: is it the q-future/one-align folder?"
    )


def read_checkpoint(files: list[Path]) -> Iterator[tuple[str, Any, Path]]:
    """Every (official key, tensor, file), file by file."""
    import torch

    for path in files:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            tensors = load_file(str(path))
        else:
            tensors = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        for key, tensor in tensors.items():
            yield key, tensor, path


def convert_key(key: str, tensor: Any, vision: VisionConfig) -> dict[str, Any] | None:
    """Our name(s) and tensor(s) for one official key; None when the key is not ours to load."""
    if key.startswith("model.vision_model."):
        rest = key[len("model.vision_model.") :]
        simple = {
            "embeddings.patch_embed.weight": "embeddings.patch_embedding.weight",
            "embeddings.pre_layernorm.weight": "pre_layrnorm.weight",
            "embeddings.pre_layernorm.bias": "pre_layrnorm.bias",
            "post_layernorm.weight": "post_layernorm.weight",
            "post_layernorm.bias": "post_layernorm.bias",
        }
        if rest in simple:
            return {f"vision_model.{simple[rest]}": tensor}
        if rest == "embeddings.cls_token":
            return {"vision_model.embeddings.class_embedding": tensor.reshape(-1)}
        if rest == "embeddings.position_embedding":
            return {
                "vision_model.embeddings.position_embedding.weight": tensor.reshape(
                    tensor.shape[-2], tensor.shape[-1]
                )
            }
        if rest.startswith("encoder.layers."):
            index, _, inner = rest[len("encoder.layers.") :].partition(".")
            prefix = f"vision_model.encoder.layers.{index}."
            renames = {
                "input_layernorm.": "layer_norm1.",
                "post_attention_layernorm.": "layer_norm2.",
                "self_attn.dense.": "self_attn.out_proj.",
                "mlp.fc1.": "mlp.fc1.",
                "mlp.fc2.": "mlp.fc2.",
            }
            for old, new in renames.items():
                if inner.startswith(old):
                    return {prefix + new + inner[len(old) :]: tensor}
            if inner.startswith("self_attn.query_key_value."):
                kind = inner.rsplit(".", 1)[1]  # weight / bias
                heads = vision.num_attention_heads
                # rows are (head, q/k/v, head_dim): `reshape(b, s, heads, 3, head_dim)` in the official
                fused = tensor.reshape(heads, 3, -1, *tensor.shape[1:])
                return {
                    f"{prefix}self_attn.{name}_proj.{kind}": fused[:, i]
                    .reshape(-1, *tensor.shape[1:])
                    .contiguous()
                    for i, name in enumerate("qkv")
                }
        return {}
    if key.startswith("model.visual_abstractor."):
        return {"visual_abstractor." + key[len("model.visual_abstractor.") :]: tensor}
    if key.startswith("model."):
        return {"language_model." + key[len("model.") :]: tensor}
    if key == "lm_head.weight":
        return {key: tensor}
    return {}


def load_state(folder: Path, config: QAlignConfig, expected: dict[str, Any]) -> dict[str, Any]:
    """Our state dict from the release's files, checked both ways against `expected` (name -> shape)."""
    files = checkpoint_files(folder)
    state: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key, tensor, path in read_checkpoint(files):
        if key.endswith(_IGNORED_SUFFIXES):
            continue
        try:
            converted = convert_key(key, tensor, config.vision)
        except RuntimeError as error:  # a fused q/k/v tensor whose size does not split
            raise CheckpointMismatchError(
                f"key {key} in {path} has shape {tuple(tensor.shape)}: {error}"
            ) from None
        if not converted:
            raise CheckpointMismatchError(
                f"unexpected key {key} in {path}: not part of the mPLUG-Owl2 / Q-Align model"
            )
        for name, value in converted.items():
            if name not in expected:
                raise CheckpointMismatchError(
                    f"unexpected key {key} in {path} (as {name}): not part of the model"
                )
            if tuple(value.shape) != tuple(expected[name]):
                raise CheckpointMismatchError(
                    f"key {key} in {path} has shape {tuple(value.shape)}, the config wants {tuple(expected[name])}"
                )
            if name in state:
                raise CheckpointMismatchError(f"key {key} in {path} duplicates {origin[name]}")
            state[name], origin[name] = value, key
    missing = [
        name for name in expected if name not in state and not name.endswith(_OPTIONAL_SUFFIXES)
    ]
    if missing:
        raise CheckpointMismatchError(
            f"missing key for {missing[0]} in {', '.join(str(f) for f in files)}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    return state


@dataclass
class QAlignModel:
    """The loaded network, its tokens and where it runs."""

    network: Any
    config: QAlignConfig
    input_ids: list[int]
    label_ids: list[int]
    device: Any
    dtype: Any

    @property
    def prefix_ids(self) -> list[int]:
        return self.input_ids[: self.input_ids.index(IMAGE_TOKEN_INDEX)]

    @property
    def suffix_ids(self) -> list[int]:
        return self.input_ids[self.input_ids.index(IMAGE_TOKEN_INDEX) + 1 :]


def load_qalign(
    folder: str | Path,
    device: str = "cpu",
    dtype: str | None = None,
    attn_implementation: str | None = None,
) -> QAlignModel:
    """The release folder loaded strictly; fp16 on a GPU (as the official), fp32 on a CPU by default.

    The vision tower's attention defaults to the official's own maths on a GPU
    (`official_vision_attention`: fp16 results follow the official's) and to "sdpa" on a CPU
    (fp32: the same numbers to about 1e-7, faster).
    """
    import torch

    folder = Path(folder)
    config = QAlignConfig.from_dict(json.loads((folder / "config.json").read_text()))
    dev = torch.device(device)
    dtype = dtype or ("float16" if dev.type == "cuda" else "float32")
    attn_implementation = attn_implementation or (
        OFFICIAL_VISION_ATTENTION if dev.type == "cuda" else "sdpa"
    )
    torch_dtype = getattr(torch, dtype)
    with torch.device("meta"):
        network = build_modules(config, attn_implementation)
    expected = {name: tuple(t.shape) for name, t in network.state_dict().items()}
    state = load_state(folder, config, expected)
    q_pos, k_pos = abstractor_position_tables(config.abstractor)
    for name in expected:
        if name not in state and name.endswith(".q_pos_embed"):
            state[name] = q_pos
        elif name not in state and name.endswith(".k_pos_embed"):
            state[name] = k_pos
    network.load_state_dict(state, strict=True, assign=True)
    # non-persistent buffers built on the meta device: rebuild them for real
    embeddings = network.vision_model.embeddings
    embeddings.position_ids = torch.arange(embeddings.num_positions).expand((1, -1))
    rotary = network.language_model.rotary_emb
    rotary.inv_freq = rotary.original_inv_freq = torch.zeros(0)
    leftover = [
        name for name, t in [*network.named_parameters(), *network.named_buffers()] if t.is_meta
    ]
    if leftover:
        raise RuntimeError(f"tensors left unloaded: {leftover[:5]}")
    network = network.to(device=dev, dtype=torch_dtype).eval().requires_grad_(False)
    # RoPE frequencies in fp32 whatever the model dtype (the official computes its angles in fp32)
    inv_freq, _ = rotary.compute_default_rope_parameters(rotary.config)
    rotary.inv_freq, rotary.original_inv_freq = inv_freq.to(dev), inv_freq.to(dev)
    tokenizer = SlowLlamaTokenizer.from_folder(folder)
    return QAlignModel(
        network, config, prompt_input_ids(tokenizer), label_token_ids(tokenizer), dev, torch_dtype
    )


# ----------------------------------------------------------------------------- inference


def frame_tokens(model: QAlignModel, pixels: Any, batch_size: int = 16) -> Any:
    """Each frame's 65 LLM-width tokens (vision tower, post_layernorm on every token, abstractor)."""
    import torch

    net = model.network
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(pixels), batch_size):
            batch = pixels[start : start + batch_size].to(model.device, model.dtype)
            patches = net.vision_model(pixel_values=batch).last_hidden_state
            patches = net.vision_model.post_layernorm(patches)
            outputs.append(net.visual_abstractor(patches))
    return torch.cat(outputs)


def window_label_logits(
    model: QAlignModel, tokens: Any, windows: list[tuple[int, ...]], batch_size: int = 64
) -> Any:
    """The 5 label logits at the last prompt position, for every window of frame indices."""
    import torch

    net, lm = model.network, model.network.language_model
    prefix = torch.tensor(model.prefix_ids, device=model.device)
    suffix = torch.tensor(model.suffix_ids, device=model.device)
    labels = torch.tensor(model.label_ids, device=model.device)
    head = net.lm_head.weight[labels]
    outputs = []
    with torch.inference_mode():
        prefix_embeds, suffix_embeds = lm.embed_tokens(prefix), lm.embed_tokens(suffix)
        for start in range(0, len(windows), batch_size):
            chunk = torch.tensor(windows[start : start + batch_size], device=tokens.device)
            image = tokens[chunk].flatten(1, 2)  # (batch, frames * 65, width)
            batch = image.shape[0]
            hidden = torch.cat(
                [prefix_embeds.expand(batch, -1, -1), image, suffix_embeds.expand(batch, -1, -1)],
                dim=1,
            )
            segments = Segments(
                slice(len(model.prefix_ids), len(model.prefix_ids) + image.shape[1])
            )
            positions = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0)
            cos_sin = lm.rotary_emb(hidden, positions)
            for layer in lm.layers:
                hidden = layer(hidden, cos_sin, segments)
            last = lm.norm(hidden[:, -1])
            outputs.append(torch.nn.functional.linear(last, head))
    return torch.cat(outputs)


def quality_scores(logits: Any) -> Any:
    """softmax over the 5 label logits dotted with [1, .75, .5, .25, 0], in the logits' dtype."""
    import torch

    weights = torch.tensor(LABEL_WEIGHTS, dtype=logits.dtype, device=logits.device)
    return torch.softmax(logits, -1) @ weights


# ----------------------------------------------------------------------------- writing (random weights)


def official_state(network: Any, config: QAlignConfig) -> dict[str, Any]:
    """Our state dict in the release's key names (the inverse of `convert_key`), for random weights."""
    import torch

    heads = config.vision.num_attention_heads
    out: dict[str, Any] = {}
    state = network.state_dict()
    for name, tensor in state.items():
        if name.startswith("vision_model."):
            rest = name[len("vision_model.") :]
            if ".self_attn.k_proj." in rest or ".self_attn.v_proj." in rest:
                continue  # written with q_proj as one fused tensor
            if ".self_attn.q_proj." in rest:
                kind = rest.rsplit(".", 1)[1]
                prefix = rest.split(".self_attn.")[0]
                parts = [state[f"vision_model.{prefix}.self_attn.{x}_proj.{kind}"] for x in "qkv"]
                fused = torch.stack([p.reshape(heads, -1, *p.shape[1:]) for p in parts], dim=1)
                out[f"model.vision_model.{prefix}.self_attn.query_key_value.{kind}"] = (
                    fused.reshape(-1, *parts[0].shape[1:])
                )
                continue
            renames = {
                "embeddings.patch_embedding.weight": "embeddings.patch_embed.weight",
                "pre_layrnorm.weight": "embeddings.pre_layernorm.weight",
                "pre_layrnorm.bias": "embeddings.pre_layernorm.bias",
                "embeddings.class_embedding": "embeddings.cls_token",
                "embeddings.position_embedding.weight": "embeddings.position_embedding",
            }
            if rest in renames:
                value = tensor.reshape(1, 1, -1) if rest == "embeddings.class_embedding" else tensor
                value = (
                    value.unsqueeze(0) if rest == "embeddings.position_embedding.weight" else value
                )
                out[f"model.vision_model.{renames[rest]}"] = value
                continue
            for ours, theirs in (("layer_norm1.", "input_layernorm."), ("layer_norm2.", "post_attention_layernorm."),
                                 ("self_attn.out_proj.", "self_attn.dense.")):  # fmt: skip
                rest = rest.replace(ours, theirs)
            out[f"model.vision_model.{rest}"] = tensor
        elif name.startswith("visual_abstractor."):
            out["model." + name] = tensor
        elif name.startswith("language_model."):
            out["model." + name[len("language_model.") :]] = tensor
        else:
            out[name] = tensor
    return {k: v.contiguous() for k, v in out.items()}


def release_config(config: QAlignConfig) -> dict[str, Any]:
    """A `config.json` with the fields the official `MPLUGOwl2Config` writes that define the network."""
    lang, vision, abstract = config.language, config.vision, config.abstractor
    return {
        "architectures": ["MPLUGOwl2LlamaForCausalLM"],
        "model_type": "mplug_owl2",
        **{k: getattr(lang, k) for k in lang.__dataclass_fields__},
        "bos_token_id": 1,
        "eos_token_id": 2,
        "rope_scaling": None,
        "torch_dtype": "float16",
        "visual_config": {
            "visual_model": {"model_type": "mplug_owl_vision_model", **vision.__dict__},
            "visual_abstractor": {"model_type": "mplug_owl_visual_abstract", **abstract.__dict__},
        },
    }
