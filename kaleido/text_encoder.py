"""umT5-XXL text encoding (transformers' `UMT5EncoderModel`) and the key map for Wan's `.pth`.

Kaleido ships Wan's `models_t5_umt5-xxl-enc-bf16.pth`, a state dict in Wan's own module names
(`wan/modules/t5.py`: `token_embedding`, `blocks.N.{norm1, attn.{q,k,v,o}, norm2,
ffn.{gate.0, fc1, fc2}, pos_embedding.embedding}`, `norm`), not transformers' names. The map
below is checked complete both ways like the DiT's. Encoding follows Wan's `T5EncoderModel`:
tokens padded to `text_len` (512) with an attention mask, then every state past the prompt's
length set to zero (the DiT's cross-attention has no mask).

For tests and the `kaleido-tiny` model, `ByteTokenizer` stands in for the SentencePiece
tokenizer: UTF-8 bytes + 3 (0 = pad, 1 = eos, 2 = unk, as in T5), an eos at the end. It needs
no files, so it works offline; it is not the real umT5 vocabulary.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from kaleido_bench.kaleido.config import TextEncoderConfig
from kaleido_bench.kaleido.errors import DOWNLOAD_HINT, CheckpointKeyError, CheckpointNotFoundError
from kaleido_bench.kaleido.weights_file import load_torch_weights

WAN_T5_FILE = "models_t5_umt5-xxl-enc-bf16.pth"
#: transformers ties this to `shared.weight`: one tensor, two names.
TIED_KEY = "encoder.embed_tokens.weight"


def wan_t5_key_map(num_layers: int) -> dict[str, str]:
    """Wan's umT5 encoder name -> transformers' `UMT5EncoderModel` name."""
    table = {
        "token_embedding.weight": "shared.weight",
        "norm.weight": "encoder.final_layer_norm.weight",
    }
    for i in range(num_layers):
        wan, hf = f"blocks.{i}.", f"encoder.block.{i}.layer."
        table[f"{wan}norm1.weight"] = f"{hf}0.layer_norm.weight"
        for x in "qkvo":
            table[f"{wan}attn.{x}.weight"] = f"{hf}0.SelfAttention.{x}.weight"
        table[f"{wan}pos_embedding.embedding.weight"] = (
            f"{hf}0.SelfAttention.relative_attention_bias.weight"
        )
        table[f"{wan}norm2.weight"] = f"{hf}1.layer_norm.weight"
        table[f"{wan}ffn.gate.0.weight"] = f"{hf}1.DenseReluDense.wi_0.weight"
        table[f"{wan}ffn.fc1.weight"] = f"{hf}1.DenseReluDense.wi_1.weight"
        table[f"{wan}ffn.fc2.weight"] = f"{hf}1.DenseReluDense.wo.weight"
    return table


def wan_t5_to_hf(
    state: Mapping[str, torch.Tensor], num_layers: int, what: str = "umT5 checkpoint"
) -> dict[str, torch.Tensor]:
    """Rename a Wan umT5 state dict, raising `CheckpointKeyError` on any missing or extra key."""
    table = wan_t5_key_map(num_layers)
    missing = sorted(k for k in table if k not in state)
    unexpected = sorted(k for k in state if k not in table)
    if missing or unexpected:
        raise CheckpointKeyError(what, missing, unexpected)
    return {table[k]: v for k, v in state.items()}


def hf_to_wan_t5(state: Mapping[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """The inverse map (writes Wan-format files, e.g. in tests); the tied alias is dropped."""
    inverse = {hf: wan for wan, hf in wan_t5_key_map(num_layers).items()}
    state = {k: v for k, v in state.items() if k != TIED_KEY}
    missing = sorted(k for k in inverse if k not in state)
    unexpected = sorted(k for k in state if k not in inverse)
    if missing or unexpected:
        raise CheckpointKeyError("UMT5EncoderModel state dict", missing, unexpected)
    return {inverse[k]: v for k, v in state.items()}


def clean_prompt(text: str) -> str:
    """Wan's `clean='whitespace'`: fix mojibake (ftfy, when installed), unescape HTML, squeeze spaces."""
    try:
        import ftfy

        text = ftfy.fix_text(text)
    except ImportError:
        pass
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip()


class ByteTokenizer:
    """Offline stand-in tokenizer (see the module docstring): UTF-8 bytes + 3, eos 1, pad 0."""

    pad_token_id, eos_token_id, unk_token_id, offset = 0, 1, 2, 3
    vocab_size = 256 + 3

    def __call__(self, texts: Sequence[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.zeros(len(texts), max_length, dtype=torch.long)
        mask = torch.zeros(len(texts), max_length, dtype=torch.long)
        for row, text in enumerate(texts):
            tokens = [b + self.offset for b in text.encode("utf-8")][: max_length - 1] + [
                self.eos_token_id
            ]
            ids[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = 1
        return ids, mask


class HFTokenizer:
    """The release's tokenizer files (`umt5-xxl/`) through transformers' `AutoTokenizer`."""

    def __init__(self, path: Path) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(path))

    def __call__(self, texts: Sequence[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.tokenizer(
            list(texts),
            padding="max_length",
            truncation=True,
            max_length=max_length,
            add_special_tokens=True,
            return_tensors="pt",
        )
        return out.input_ids, out.attention_mask


class UMT5TextEncoder(nn.Module):
    """Prompts -> (B, text_len, d_model) states, zero past each prompt's length (Wan's layout)."""

    def __init__(self, model: nn.Module, tokenizer, text_len: int) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.text_len = text_len

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        ids, mask = self.tokenizer([clean_prompt(p) for p in prompts], self.text_len)
        ids, mask = ids.to(self.device), mask.to(self.device)
        states = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return states * mask.unsqueeze(-1).to(states.dtype)


def build_umt5(config: TextEncoderConfig, *, seed: int | None = None, device: str = "cpu"):
    """A random `UMT5EncoderModel` (deterministic for `seed`) or an empty one on `meta`."""
    from transformers import UMT5EncoderModel

    if device == "meta":
        with torch.device("meta"):
            return UMT5EncoderModel(config.umt5_config())
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        model = UMT5EncoderModel(config.umt5_config())
    return model.eval()


def find_wan_t5_file(weights_dir: Path) -> Path:
    """Wan's umT5 `.pth`: in `umt5-xxl/` (the release's layout) or directly in `weights_dir`."""
    weights_dir = Path(weights_dir)
    for candidate in (weights_dir / "umt5-xxl" / WAN_T5_FILE, weights_dir / WAN_T5_FILE):
        if candidate.is_file():
            return candidate
    raise CheckpointNotFoundError(
        f"umT5 text encoder not found: expected {weights_dir / 'umt5-xxl' / WAN_T5_FILE}; {DOWNLOAD_HINT}"
    )


def load_umt5_from_wan(
    path: Path,
    config: TextEncoderConfig,
    *,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cpu",
):
    """`UMT5EncoderModel` filled from Wan's `.pth` (memory-mapped, renamed, strictly checked)."""
    state = load_torch_weights(path, mmap=True)
    renamed = wan_t5_to_hf(state, config.num_layers, what=str(path))
    model = build_umt5(config, device="meta")
    expected = {k: v.shape for k, v in model.state_dict().items() if k != TIED_KEY}
    bad = sorted(
        f"{k} {tuple(v.shape)} (model {tuple(expected[k])})"
        for k, v in renamed.items()
        if v.shape != expected[k]
    )
    if bad:
        raise CheckpointKeyError(str(path), [], [], bad)
    renamed = {k: v.to(device=device, dtype=dtype, copy=True) for k, v in renamed.items()}
    renamed[TIED_KEY] = renamed["shared.weight"]
    model.load_state_dict(renamed, strict=True, assign=True)
    model.encoder.embed_tokens = model.shared
    return model.eval()


def load_text_encoder(
    weights_dir: Path,
    config: TextEncoderConfig,
    *,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cpu",
    tokenizer_dir: Path | None = None,
) -> UMT5TextEncoder:
    """The release's text encoder: Wan's `.pth` weights + the HF tokenizer files of `umt5-xxl/`.

    `tokenizer_dir` defaults to Kaleido's `umt5-xxl/`; Wan's own folders (Wan2.1-T2V-1.3B, used by
    Phantom-Wan) keep the tokenizer in `google/umt5-xxl/`.
    """
    weights_dir = Path(weights_dir)
    path = find_wan_t5_file(weights_dir)
    tokenizer_dir = Path(tokenizer_dir) if tokenizer_dir else weights_dir / "umt5-xxl"
    if not any(
        (tokenizer_dir / name).is_file()
        for name in ("tokenizer.json", "spiece.model", "tokenizer_config.json")
    ):
        raise CheckpointNotFoundError(
            f"umT5 tokenizer files not found in {tokenizer_dir}; {DOWNLOAD_HINT}"
        )
    model = load_umt5_from_wan(path, config, dtype=dtype, device=device)
    return UMT5TextEncoder(model, HFTokenizer(tokenizer_dir), config.text_len)
