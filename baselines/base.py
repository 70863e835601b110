"""The `ModelAdapter` interface and the model registry.

Adding a model is one class: subclass `ModelAdapter`, decorate it with
`@register_model("name")`, implement `generate(case, seed, out_path)`. Other packages add
models through the `kaleido_bench.models` entry-point group, and `--model pkg.module:Class`
loads any adapter class by import path.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

from kaleido_bench.core.cases import Case
from kaleido_bench.core.errors import ReferenceLimitError, UnknownNameError
from kaleido_bench.core.registry import Registry

ENTRY_POINT_GROUP = "kaleido_bench.models"


@dataclass(frozen=True)
class ModelCapabilities:
    """What a model can make; the runner checks cases against it."""

    max_references: int | None = 3
    height: int = 480
    width: int = 832
    num_frames: int = 81
    fps: float = 16.0


def check_case(capabilities: ModelCapabilities, case: Case, model: str = "") -> None:
    """Refuse a case the model cannot take, before any generation (the runner records it per case).

    Today the one rule is the reference limit: a case with more reference images than
    `capabilities.max_references` (None = any number) raises `ReferenceLimitError`.
    """
    limit = capabilities.max_references
    count = len(case.references)
    if limit is not None and count > limit:
        who = f"model {model!r}" if model else "the model"
        raise ReferenceLimitError(
            f"case {case.id!r} has {count} reference images; {who} accepts at most {limit}"
        )


class ModelAdapter(ABC):
    """Base of every model. Options come from `-o key=value` on the command line.

    The class attributes below `label` are the model card `kaleido-bench list models` shows;
    they are read from the class, so listing builds no model and needs no weights or keys.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: shown in every table next to the model's name (e.g. "random weights")
    label: ClassVar[str] = ""
    #: files `kaleido-bench weights list|download MODEL` know (those with a known source)
    weights: ClassVar[tuple[Any, ...]] = ()
    #: the licence of the weights (or of the service's terms), e.g. "Apache-2.0"
    licence: ClassVar[str] = ""
    #: where the weights come from: a hub repository, "none (...)", or "remote API (...)"
    weights_source: ClassVar[str] = ""
    #: model size as the release states it, e.g. "14B"; "" when not applicable or not published
    parameters: ClassVar[str] = ""
    #: what the model makes with its default options; `capabilities` returns it unless overridden
    default_capabilities: ClassVar[ModelCapabilities | None] = None

    def __init__(self, **options: Any) -> None:
        self.options = options

    @property
    def capabilities(self) -> ModelCapabilities:
        return self.default_capabilities or ModelCapabilities()

    def setup(self) -> None:
        """Load weights once per run."""

    @abstractmethod
    def generate(self, case: Case, seed: int, out_path: Path) -> dict[str, Any] | None:
        """Write the video for `case` to `out_path` (an mp4), deterministic for `seed`.

        May return details for the generation record (e.g. a remote task id and model version);
        they must never hold a secret.
        """

    def config(self) -> dict[str, Any]:
        """Everything that changes the videos; its hash names the run folder."""
        return {
            "model": self.name,
            "options": self.options,
            "capabilities": asdict(self.capabilities),
        }


MODELS: Registry[type[ModelAdapter]] = Registry("model")


def register_model(name: str):
    """Class decorator: register a `ModelAdapter` subclass under `name` and set its `name`."""

    def decorator(cls: type[ModelAdapter]) -> type[ModelAdapter]:
        cls.name = name
        return MODELS.register(name)(cls)

    return decorator


def load_builtin_models() -> Registry[type[ModelAdapter]]:
    """Import this package's adapters, then those other packages declare as entry points."""
    import kaleido_bench.baselines as package

    for module in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name not in MODELS:
            cls = entry.load()
            if isinstance(cls, type) and not getattr(
                cls, "name", ""
            ):  # no @register_model: the entry point names it
                cls.name = entry.name
            MODELS.add(entry.name, cls)
    return MODELS


def _import_from_working_directory() -> None:
    """Make `package.module:Class` importable from the working directory, as `python -m` does
    (the `kaleido-bench` console script starts with its own bin folder on sys.path instead)."""
    cwd = str(Path.cwd())
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def get_model_class(name: str) -> type[ModelAdapter]:
    """A registered name, an entry-point name, or an import path `package.module:Class`."""
    if ":" in name:
        module_name, _, class_name = name.partition(":")
        _import_from_working_directory()
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            raise UnknownNameError(
                f"cannot import model {name!r}: {exc} (a `package.module:Class` is imported from the working "
                f"directory {Path.cwd()} or the installed packages; run from the folder that holds the package, "
                "or `pip install -e` it)"
            ) from None
        if not (isinstance(cls, type) and issubclass(cls, ModelAdapter)):
            raise UnknownNameError(f"model {name!r} is not a ModelAdapter subclass")
        if not cls.name:
            cls.name = class_name
        return cls
    return load_builtin_models().get(name)
