"""Load the released SAT checkpoint of the Kaleido DiT, strictly, and convert it once to safetensors.

The release (`zai-org/Kaleido-14B-S2V`, folder `model/`) is in SwissArmyTransformer's format:
a `latest` file holding the iteration and `<iter>/mp_rank_00_model_states.pt` holding
`{'module': state_dict}` with names under `model.diffusion_model.` (SPEC.md section 1 lists
them: 21 tensors a layer + 15 = 855 for 40 layers). Self-attention keeps q, k, v as one
[3D, D] matrix (rows [q; k; v]) and cross-attention k, v as one [2D, D] (rows [k; v]); ours are
diffusers' names, so this module splits and joins those rows.

The map is checked complete both ways (no missing, no unexpected key, every shape right),
unlike the release's loader, which hides missing keys. Loading never holds two full copies:
the `.pt` is memory-mapped, the model is built on the meta device, and tensors are moved
shard by shard (converted files) or layer by layer (SAT file) into the target dtype on the
target device.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import torch

from kaleido_bench.kaleido.config import TransformerConfig
from kaleido_bench.kaleido.errors import (
    DOWNLOAD_HINT,
    CheckpointKeyError,
    CheckpointNotFoundError,
    KaleidoError,
)
from kaleido_bench.kaleido.transformer import KaleidoTransformer3DModel, parameter_dtype
from kaleido_bench.kaleido.weights_file import load_torch_weights

SAT_PREFIX = "model.diffusion_model."
SAT_FILE = "mp_rank_00_model_states.pt"
INDEX_FILE = "diffusion_pytorch_model.safetensors.index.json"
SINGLE_FILE = "diffusion_pytorch_model.safetensors"


def sat_key_map(num_layers: int) -> dict[str, tuple[str, ...]]:
    """SAT name (without prefix) -> our names; several names = rows split in that order."""
    table: dict[str, tuple[str, ...]] = {}
    for kind in ("weight", "bias"):
        table[f"mixins.patch_embed.proj.{kind}"] = (f"patch_embedding.{kind}",)
        table[f"text_embedding.0.{kind}"] = (f"condition_embedder.text_embedder.linear_1.{kind}",)
        table[f"text_embedding.2.{kind}"] = (f"condition_embedder.text_embedder.linear_2.{kind}",)
        table[f"time_embed.0.{kind}"] = (f"condition_embedder.time_embedder.linear_1.{kind}",)
        table[f"time_embed.2.{kind}"] = (f"condition_embedder.time_embedder.linear_2.{kind}",)
        table[f"adaln_projection.1.{kind}"] = (f"condition_embedder.time_proj.{kind}",)
        table[f"mixins.final_layer.linear.{kind}"] = (f"proj_out.{kind}",)
    table["mixins.final_layer.adaLN_modulation"] = ("scale_shift_table",)
    for i in range(num_layers):
        sat, ours = f"transformer.layers.{i}.", f"blocks.{i}."
        for kind in ("weight", "bias"):
            table[f"{sat}attention.query_key_value.{kind}"] = tuple(
                f"{ours}attn1.to_{x}.{kind}" for x in "qkv"
            )
            table[f"{sat}attention.dense.{kind}"] = (f"{ours}attn1.to_out.0.{kind}",)
            table[f"{sat}cross_attention.query.{kind}"] = (f"{ours}attn2.to_q.{kind}",)
            table[f"{sat}cross_attention.key_value.{kind}"] = (
                f"{ours}attn2.to_k.{kind}",
                f"{ours}attn2.to_v.{kind}",
            )
            table[f"{sat}cross_attention.dense.{kind}"] = (f"{ours}attn2.to_out.0.{kind}",)
            table[f"{sat}post_cross_attention_layernorm.{kind}"] = (f"{ours}norm2.{kind}",)
            table[f"{sat}mlp.dense_h_to_4h.{kind}"] = (f"{ours}ffn.net.0.proj.{kind}",)
            table[f"{sat}mlp.dense_4h_to_h.{kind}"] = (f"{ours}ffn.net.2.{kind}",)
        table[f"mixins.adaln_layer.query_layernorm_list.{i}.weight"] = (
            f"{ours}attn1.norm_q.weight",
        )
        table[f"mixins.adaln_layer.key_layernorm_list.{i}.weight"] = (f"{ours}attn1.norm_k.weight",)
        table[f"mixins.adaln_layer.cross_query_layernorm_list.{i}.weight"] = (
            f"{ours}attn2.norm_q.weight",
        )
        table[f"mixins.adaln_layer.cross_key_layernorm_list.{i}.weight"] = (
            f"{ours}attn2.norm_k.weight",
        )
        table[f"mixins.adaln_layer.adaLN_modulations.{i}"] = (f"{ours}scale_shift_table",)
    return table


def _strip_prefix(key: str) -> str:
    return key[len(SAT_PREFIX) :] if key.startswith(SAT_PREFIX) else key


def check_sat_keys(keys: Iterable[str], num_layers: int, what: str = "SAT checkpoint") -> None:
    """Raise `CheckpointKeyError` listing every missing and unexpected SAT name."""
    table = sat_key_map(num_layers)
    present = {_strip_prefix(k): k for k in keys}
    missing = sorted(SAT_PREFIX + k for k in table if k not in present)
    unexpected = sorted(
        orig for k, orig in present.items() if k not in table or not orig.startswith(SAT_PREFIX)
    )
    if missing or unexpected:
        raise CheckpointKeyError(what, missing, unexpected)


def _layer_of(sat_key: str) -> int:
    """Layer index of a SAT name (-1 for the embeddings and the head), to group loading."""
    parts = sat_key.split(".")
    for i, part in enumerate(parts[:-1]):
        if part in ("layers", "query_layernorm_list", "key_layernorm_list", "cross_query_layernorm_list",
                    "cross_key_layernorm_list", "adaLN_modulations") and parts[i + 1].isdigit():  # fmt: skip
            return int(parts[i + 1])
    return -1


def iter_sat_as_diffusers(
    state: Mapping[str, torch.Tensor], num_layers: int
) -> Iterator[tuple[str, torch.Tensor]]:
    """Our (name, tensor) pairs from a SAT state dict, checked complete first; rows are views."""
    check_sat_keys(state.keys(), num_layers)
    table = sat_key_map(num_layers)
    for sat_key in sorted(table, key=lambda k: (_layer_of(k), k)):
        tensor = state[SAT_PREFIX + sat_key]
        names = table[sat_key]
        if len(names) == 1:
            yield names[0], tensor
        else:
            if tensor.shape[0] % len(names):
                raise CheckpointKeyError(
                    "SAT checkpoint", [], [], [f"{SAT_PREFIX}{sat_key} {tuple(tensor.shape)}"]
                )
            yield from zip(names, tensor.chunk(len(names), dim=0))


def diffusers_to_sat(state: Mapping[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """The inverse map (our names -> SAT names, rows joined): writes SAT-format checkpoints."""
    table = sat_key_map(num_layers)
    wanted = {name for names in table.values() for name in names}
    missing = sorted(wanted - set(state))
    unexpected = sorted(set(state) - wanted)
    if missing or unexpected:
        raise CheckpointKeyError("state dict", missing, unexpected)
    return {
        SAT_PREFIX + sat_key: torch.cat([state[n] for n in names])
        if len(names) > 1
        else state[names[0]]
        for sat_key, names in table.items()
    }


def write_sat_checkpoint(
    state: Mapping[str, torch.Tensor], model_dir: Path, num_layers: int, iteration: int = 1000
) -> Path:
    """Write `latest` + `<iter>/mp_rank_00_model_states.pt` the way the release lays them out."""
    model_dir = Path(model_dir)
    (model_dir / str(iteration)).mkdir(parents=True, exist_ok=True)
    path = model_dir / str(iteration) / SAT_FILE
    torch.save({"module": diffusers_to_sat(state, num_layers)}, path)
    (model_dir / "latest").write_text(f"{iteration}\n")
    return path


def find_sat_checkpoint(model_dir: Path) -> Path:
    """The `.pt` file that `model_dir/latest` points to."""
    model_dir = Path(model_dir)
    latest = model_dir / "latest"
    if not latest.is_file():
        raise CheckpointNotFoundError(
            f"Kaleido DiT checkpoint not found: {latest} is missing; {DOWNLOAD_HINT}"
        )
    iteration = latest.read_text().strip()
    path = model_dir / iteration / SAT_FILE
    if not path.is_file():
        raise CheckpointNotFoundError(
            f"Kaleido DiT checkpoint not found: {path} is missing ({latest} names iteration {iteration!r}); "
            f"if model/ holds the uploaded parts, run `python merge_kaleido.py` inside the download to join them; "
            f"{DOWNLOAD_HINT}"
        )
    return path


def read_sat_state(path: Path) -> Mapping[str, torch.Tensor]:
    """The `module` state dict, memory-mapped (pages are read only when a tensor is used)."""
    payload = load_torch_weights(path, mmap=True)
    if not isinstance(payload, Mapping) or "module" not in payload:
        raise CheckpointKeyError(
            f"{path}", ["module"], sorted(payload) if isinstance(payload, Mapping) else []
        )
    return payload["module"]


def check_shapes(model: torch.nn.Module, items: Mapping[str, torch.Tensor], what: str) -> None:
    """Raise `CheckpointKeyError` for names `model` lacks and tensors of the wrong size (`what` = the file)."""
    params = dict(model.state_dict(keep_vars=True))
    unknown = sorted(k for k in items if k not in params)
    bad = sorted(
        f"{k} {tuple(t.shape)} (model {tuple(params[k].shape)})"
        for k, t in items.items()
        if k in params and t.numel() != params[k].numel()
    )
    if unknown or bad:
        raise CheckpointKeyError(what, [], unknown, bad)


def assign_tensors(
    model: torch.nn.Module,
    items: dict[str, torch.Tensor],
    dtype: torch.dtype,
    device: torch.device | str,
) -> None:
    """Put `items` into `model` (possibly on meta) in `dtype` on `device`, diffusers' fp32 parts kept fp32."""
    params = dict(model.state_dict(keep_vars=True))
    # copy=True: an owned, aligned tensor. A view into the memory-mapped file would keep its
    # pages alive, and an unaligned buffer changes CPU matmul kernels' rounding (1e-7).
    part = {
        k: t.reshape(params[k].shape).to(device=device, dtype=parameter_dtype(k, dtype), copy=True)
        for k, t in items.items()
    }
    model.load_state_dict(part, strict=False, assign=True)


def check_complete(model: torch.nn.Module, loaded: set[str], what: str) -> None:
    """Raise `CheckpointKeyError` unless exactly the model's tensors were loaded."""
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - loaded), sorted(loaded - expected)
    if missing or unexpected:
        raise CheckpointKeyError(what, missing, unexpected)


def load_sat_into(
    model: KaleidoTransformer3DModel,
    model_dir: Path,
    *,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cpu",
) -> KaleidoTransformer3DModel:
    """Fill `model` (possibly on meta) from a SAT checkpoint, layer by layer."""
    path = find_sat_checkpoint(model_dir)
    state = read_sat_state(path)
    loaded: set[str] = set()
    group: dict[str, torch.Tensor] = {}
    current = None
    for name, tensor in iter_sat_as_diffusers(state, model.config.num_layers):
        layer = name.split(".")[1] if name.startswith("blocks.") else "-"
        if current is not None and layer != current:
            check_shapes(model, group, str(path))
            assign_tensors(model, group, dtype, device)
            group = {}
        current = layer
        group[name] = tensor
        loaded.add(name)
    check_shapes(model, group, str(path))
    assign_tensors(model, group, dtype, device)
    check_complete(model, loaded, str(path))
    return model


def convert_sat_to_safetensors(
    model_dir: Path,
    out_dir: Path,
    num_layers: int,
    *,
    dtype: torch.dtype | None = None,
    max_shard_bytes: int = 5 * 1024**3,
) -> Path:
    """Write the SAT checkpoint once as diffusers-named safetensors shards plus an index.

    The index is written last, so a folder with an index is a complete conversion. At most one
    shard (`max_shard_bytes`) is in memory at a time.
    """
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = read_sat_state(find_sat_checkpoint(model_dir))
    shards: list[dict[str, torch.Tensor]] = [{}]
    sizes = [0]
    weight_map: dict[str, str] = {}
    files: list[str] = []

    def flush() -> None:
        name = f"diffusion_pytorch_model-{len(files) + 1:05d}.safetensors"
        tmp = out_dir / (name + ".tmp")
        save_file(shards[-1], str(tmp), metadata={"format": "pt"})
        os.replace(tmp, out_dir / name)
        for key in shards[-1]:
            weight_map[key] = name
        files.append(name)
        shards[-1], sizes[-1] = {}, 0

    for name, tensor in iter_sat_as_diffusers(state, num_layers):
        tensor = tensor.to(dtype) if dtype is not None else tensor
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and sizes[-1] + nbytes > max_shard_bytes:
            flush()
        shards[-1][name] = tensor.contiguous().clone()
        sizes[-1] += nbytes
    if shards[-1]:
        flush()
    total = len(files)
    final_map = {}
    for index, name in enumerate(files, start=1):
        final = name.replace(f"-{index:05d}.", f"-{index:05d}-of-{total:05d}.")
        os.replace(out_dir / name, out_dir / final)
        final_map[name] = final
    index = {
        "metadata": {"source": str(model_dir)},
        "weight_map": {k: final_map[v] for k, v in weight_map.items()},
    }
    tmp = out_dir / (INDEX_FILE + ".tmp")
    tmp.write_text(json.dumps(index, indent=1, sort_keys=True))
    os.replace(tmp, out_dir / INDEX_FILE)
    return out_dir


def safetensors_files(converted_dir: Path) -> list[Path]:
    """The shard files of a converted folder (index) or its single file; [] when absent."""
    converted_dir = Path(converted_dir)
    index = converted_dir / INDEX_FILE
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        return [converted_dir / name for name in sorted(set(weight_map.values()))]
    single = converted_dir / SINGLE_FILE
    return [single] if single.is_file() else []


def load_safetensors_into(
    model: KaleidoTransformer3DModel,
    converted_dir: Path,
    *,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cpu",
) -> KaleidoTransformer3DModel:
    """Fill `model` (possibly on meta) shard by shard, straight into `dtype` on `device`."""
    from safetensors import safe_open

    files = safetensors_files(converted_dir)
    if not files:
        raise CheckpointNotFoundError(f"no {INDEX_FILE} or {SINGLE_FILE} in {converted_dir}")
    loaded: set[str] = set()
    for file in files:
        if not file.is_file():
            raise CheckpointNotFoundError(
                f"shard {file} named by {converted_dir / INDEX_FILE} is missing"
            )
        with safe_open(str(file), framework="pt", device="cpu") as handle:
            group = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        check_shapes(model, group, str(file))
        assign_tensors(model, group, dtype, device)
        loaded.update(group)
        del group
    check_complete(model, loaded, str(converted_dir))
    return model


def load_transformer(
    config: TransformerConfig,
    model_dir: Path,
    *,
    converted_dir: Path | None = None,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cpu",
    convert: bool = True,
) -> KaleidoTransformer3DModel:
    """The DiT from `converted_dir` if converted before, else from SAT (converting it first if `convert`).

    `converted_dir` defaults to `model_dir/../model-diffusers`.
    """
    from kaleido_bench.kaleido.transformer import build_transformer

    model_dir = Path(model_dir)
    converted_dir = Path(converted_dir) if converted_dir else model_dir.parent / "model-diffusers"
    model = build_transformer(config, device="meta", dtype=dtype)
    if not safetensors_files(converted_dir):
        if not convert:
            load_sat_into(model, model_dir, dtype=dtype, device=device)
            return model.eval()
        try:
            convert_sat_to_safetensors(model_dir, converted_dir, config.num_layers)
        except PermissionError as exc:
            raise KaleidoError(
                f"cannot write the converted checkpoint to {converted_dir} ({exc.strerror}); "
                "choose a writable folder (converted_dir, or -o converted=DIR on the command line)"
            ) from None
    load_safetensors_into(model, converted_dir, dtype=dtype, device=device)
    return model.eval()
