"""random_weights: tiny files in the real formats, loaded by each metric's own `setup()`."""

from __future__ import annotations

import pytest
from support.random_weights import metric_options, weight_files, write_random_weights

from kaleido_bench.metrics import backbones
from kaleido_bench.metrics.base import get_metric_class

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("insightface")

MODEL_METRICS = (
    "aesthetics",
    "clip_i",
    "clip_i_l14",
    "clip_t",
    "clip_t_l14",
    "dino_i",
    "decoupling",
    "subject_consistency",
    "background_consistency",
    "face_sim_arc",
    "face_sim_cur",
)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    return root, write_random_weights(root, MODEL_METRICS, size="tiny", seed=0)


@pytest.fixture
def tiny_weights(written, monkeypatch):
    monkeypatch.setenv("KALEIDO_BENCH_WEIGHTS", str(written[0]))
    return written


def test_every_declared_file_is_written_once_at_the_resolver_path(tiny_weights):
    root, written = tiny_weights
    expected = {weight.filename for weight in weight_files(MODEL_METRICS)}
    assert set(written) == expected and len(expected) == 8
    assert all(path == root / name for name, path in written.items())
    assert (root / "hf/openai--clip-vit-large-patch14/preprocessor_config.json").is_file()
    assert (root / "insightface_buffalo_l/models/buffalo_l/det_10g.onnx").is_file()
    assert write_random_weights(root, MODEL_METRICS, size="tiny") == {}  # present files are kept


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("name", MODEL_METRICS)
def test_each_metric_sets_up_from_the_written_files(ctx, tiny_weights, name):
    root, _ = tiny_weights
    metric = get_metric_class(name)(**metric_options(name, "tiny"))
    metric.setup(ctx)
    loaded = [
        v
        for v in vars(metric).values()
        if v is not None and not isinstance(v, (dict, str, int, float))
    ]
    assert loaded, f"{name} holds no model after setup"
    for value in loaded:
        backbone = (
            value if isinstance(value, backbones.Backbone) else getattr(value, "backbone", None)
        )
        if isinstance(backbone, backbones.Backbone):
            assert str(root.resolve()) in (
                backbone.source or backbone.id
            )  # read from the written weights dir


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_synthetic_face_pack_finds_one_face_in_any_image(ctx, tiny_weights):
    import numpy as np

    metric = get_metric_class("face_sim_arc")()
    metric.setup(ctx)
    for image in (np.zeros((48, 64, 3), np.uint8), np.full((480, 832, 3), 200, np.uint8)):
        assert metric.faces.find(image) is not None


def test_full_size_options_are_empty_and_unknown_sizes_refused(tmp_path):
    assert metric_options("clip_i", "full") == {} and metric_options("clip_i", "tiny")
    with pytest.raises(ValueError, match="size"):
        write_random_weights(tmp_path, ["clip_i"], size="huge")
