"""`--model package.module:Class` imports from the working directory (as `python -m` does), and an
adapter declared as an entry point without `@register_model` is named after its entry point."""

from __future__ import annotations

import sys
import textwrap

import pytest

from kaleido_bench.baselines.base import MODELS, get_model_class, load_builtin_models
from kaleido_bench.core.errors import UnknownNameError

ADAPTER = """
from kaleido_bench.baselines.base import ModelAdapter


class {name}(ModelAdapter):
    def generate(self, case, seed, out_path):
        raise RuntimeError("not a real model")
"""


@pytest.fixture
def clean_import_state(monkeypatch):
    """No '' or cwd on sys.path (the console script's situation); forget the test's modules after."""
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.split(".")[0] in {"mypkg", "epmod"}:
            del sys.modules[name]


def test_module_class_is_imported_from_the_working_directory(
    tmp_path, monkeypatch, clean_import_state
):
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "mod.py").write_text(ADAPTER.format(name="Mine"))
    monkeypatch.chdir(tmp_path)
    cls = get_model_class("mypkg.mod:Mine")
    assert cls.__name__ == "Mine" and cls.name == "Mine"


def test_module_class_error_says_where_it_looked(tmp_path, monkeypatch, clean_import_state):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnknownNameError, match="working directory") as info:
        get_model_class("mypkg.absent:Mine")
    assert str(tmp_path) in str(info.value)


def test_entry_point_without_register_model_takes_the_entry_point_name(
    tmp_path, monkeypatch, clean_import_state
):
    site = tmp_path / "site"
    dist = site / "ep_adapter-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-adapter\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[kaleido_bench.models]\nmy-model = epmod:Unnamed\n")
    (site / "epmod.py").write_text(textwrap.dedent(ADAPTER.format(name="Unnamed")))
    monkeypatch.syspath_prepend(str(site))
    try:
        registry = load_builtin_models()
        assert registry.get("my-model").name == "my-model"  # was "": run folders `runs/_mini_...`
    finally:
        MODELS._items.pop("my-model", None)
