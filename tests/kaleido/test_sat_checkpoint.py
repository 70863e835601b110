"""SAT checkpoints: the key map is complete both ways, loading is exact, conversion is reusable."""

from __future__ import annotations

import json

import pytest
import torch

from kaleido_bench.kaleido import checkpoint as ck
from kaleido_bench.kaleido.config import KALEIDO_14B
from kaleido_bench.kaleido.errors import CheckpointKeyError, CheckpointNotFoundError
from kaleido_bench.kaleido.transformer import build_transformer


def _outputs(model):
    g = torch.Generator().manual_seed(3)
    video, text, refs = (
        torch.randn(1, 4, 2, 8, 8, generator=g),
        torch.randn(1, 5, 32, generator=g),
        torch.randn(1, 4, 2, 8, 8, generator=g),
    )
    with torch.no_grad():
        return model(video, torch.tensor([700.0]), text, refs).sample


@pytest.fixture()
def sat_dir(tmp_path, tiny_transformer, tiny_config):
    ck.write_sat_checkpoint(
        tiny_transformer.state_dict(), tmp_path / "model", tiny_config.transformer.num_layers
    )
    return tmp_path / "model"


def test_14b_map_has_855_sat_tensors_onto_every_parameter():
    table = ck.sat_key_map(40)
    assert len(table) == 21 * 40 + 15 == 855
    ours = [name for names in table.values() for name in names]
    model = build_transformer(KALEIDO_14B.transformer, device="meta")
    assert sorted(ours) == sorted(model.state_dict())
    assert table["transformer.layers.7.attention.query_key_value.weight"] == (
        "blocks.7.attn1.to_q.weight", "blocks.7.attn1.to_k.weight", "blocks.7.attn1.to_v.weight")  # fmt: skip
    assert table["transformer.layers.7.cross_attention.key_value.bias"] == (
        "blocks.7.attn2.to_k.bias",
        "blocks.7.attn2.to_v.bias",
    )
    assert table["transformer.layers.7.post_cross_attention_layernorm.weight"] == (
        "blocks.7.norm2.weight",
    )


def test_sat_layout_on_disk(sat_dir, tiny_transformer):
    assert (sat_dir / "latest").read_text().strip() == "1000"
    payload = torch.load(sat_dir / "1000" / ck.SAT_FILE, weights_only=True)
    qkv = payload["module"][
        "model.diffusion_model.transformer.layers.1.attention.query_key_value.weight"
    ]
    attn = tiny_transformer.blocks[1].attn1
    assert torch.equal(qkv, torch.cat([attn.to_q.weight, attn.to_k.weight, attn.to_v.weight]))


def test_sat_checkpoint_loads_back_to_identical_outputs(
    sat_dir, tiny_transformer, tiny_config, tmp_path
):
    expected = _outputs(tiny_transformer)
    direct = ck.load_transformer(tiny_config.transformer, sat_dir, dtype=torch.float32, convert=False,
                                 converted_dir=tmp_path / "unused")  # fmt: skip
    assert torch.equal(_outputs(direct), expected)
    assert not (tmp_path / "unused").exists()


def test_conversion_to_safetensors_happens_once_and_reloads_identically(
    sat_dir, tiny_transformer, tiny_config, tmp_path
):
    converted = tmp_path / "converted"
    ck.convert_sat_to_safetensors(
        sat_dir, converted, tiny_config.transformer.num_layers, max_shard_bytes=4096
    )
    index = json.loads((converted / ck.INDEX_FILE).read_text())
    assert len(set(index["weight_map"].values())) > 1  # sharded
    model = ck.load_transformer(
        tiny_config.transformer, sat_dir, converted_dir=converted, dtype=torch.float32
    )
    assert torch.equal(_outputs(model), _outputs(tiny_transformer))
    # the SAT file is not needed any more once converted
    (sat_dir / "1000" / ck.SAT_FILE).unlink()
    again = ck.load_transformer(
        tiny_config.transformer, sat_dir, converted_dir=converted, dtype=torch.float32
    )
    assert torch.equal(_outputs(again), _outputs(tiny_transformer))


def test_load_into_bf16_keeps_modulation_in_fp32(sat_dir, tiny_config, tmp_path):
    model = ck.load_transformer(
        tiny_config.transformer, sat_dir, converted_dir=tmp_path / "c", dtype=torch.bfloat16
    )
    assert model.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16
    assert model.blocks[0].scale_shift_table.dtype == torch.float32
    assert model.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32
    assert not any(p.is_meta for p in model.parameters())


def _rewrite(sat_dir, edit):
    path = sat_dir / "1000" / ck.SAT_FILE
    payload = torch.load(path, weights_only=True)
    edit(payload["module"])
    torch.save(payload, path)


def test_missing_key_fails_clearly(sat_dir, tiny_config):
    _rewrite(
        sat_dir,
        lambda m: m.pop(
            "model.diffusion_model.mixins.adaln_layer.cross_key_layernorm_list.1.weight"
        ),
    )
    with pytest.raises(
        CheckpointKeyError,
        match=r"1 missing key\(s\): model\.diffusion_model\.mixins\.adaln_layer\.cross_key_layernorm_list\.1\.weight",
    ):
        ck.load_transformer(tiny_config.transformer, sat_dir, convert=False)


def test_extra_key_fails_clearly(sat_dir, tiny_config, tmp_path):
    _rewrite(
        sat_dir,
        lambda m: m.update(
            {"model.diffusion_model.transformer.layers.2.attention.dense.weight": torch.zeros(1)}
        ),
    )
    with pytest.raises(
        CheckpointKeyError,
        match=r"1 unexpected key\(s\): model\.diffusion_model\.transformer\.layers\.2\.attention\.dense\.weight",
    ) as info:
        ck.load_transformer(tiny_config.transformer, sat_dir, converted_dir=tmp_path / "c")
    assert info.value.missing == []
    assert not (tmp_path / "c" / ck.INDEX_FILE).exists()  # nothing half-converted is reused


def test_wrong_shape_fails_clearly(sat_dir, tiny_config):
    key = "model.diffusion_model.mixins.final_layer.linear.weight"
    _rewrite(sat_dir, lambda m: m.update({key: torch.zeros(3, 3)}))
    with pytest.raises(CheckpointKeyError, match="wrong shape.*proj_out.weight"):
        ck.load_transformer(tiny_config.transformer, sat_dir, convert=False)


def test_missing_files_name_the_file_and_the_download(tmp_path, tiny_config):
    with pytest.raises(CheckpointNotFoundError, match="latest is missing.*zai-org/Kaleido-14B-S2V"):
        ck.load_transformer(tiny_config.transformer, tmp_path / "model")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "latest").write_text("42")
    with pytest.raises(CheckpointNotFoundError, match="42/mp_rank_00_model_states.pt is missing"):
        ck.load_transformer(tiny_config.transformer, tmp_path / "model")


def test_loading_moves_one_shard_or_one_layer_at_a_time(
    sat_dir, tiny_config, tmp_path, monkeypatch
):
    """Never two full copies: the model starts on meta and is filled group by group."""
    groups = []
    assign = ck.assign_tensors

    def spy(model, items, dtype, device):
        groups.append(sorted(items))
        assign(model, items, dtype, device)

    monkeypatch.setattr(ck, "assign_tensors", spy)
    ck.load_transformer(tiny_config.transformer, sat_dir, convert=False)
    layers = [{name.split(".")[1] for name in g if name.startswith("blocks.")} for g in groups]
    assert (
        all(len(layer) <= 1 for layer in layers)
        and len(groups) == tiny_config.transformer.num_layers + 1
    )

    groups.clear()
    converted = tmp_path / "c"
    ck.convert_sat_to_safetensors(
        sat_dir, converted, tiny_config.transformer.num_layers, max_shard_bytes=8192
    )
    ck.load_transformer(tiny_config.transformer, sat_dir, converted_dir=converted)
    weight_map = json.loads((converted / ck.INDEX_FILE).read_text())["weight_map"]
    assert len(groups) == len(set(weight_map.values())) > 1
    for group in groups:
        assert len({weight_map[name] for name in group}) == 1
