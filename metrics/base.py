"""The `Metric` interface: decoded frames of one video + its case in, a `MetricResult` out.

A metric declares, as class-level data, the weight files it needs (`weights`), the options it
accepts (`option_names`: anything else is refused), what it needs from the engine (`needs`:
frames, model group, resource), its `version` (bumped when its numbers change) and how
per-video results reduce to a suite score (`aggregate`, a classmethod: plain mean by default;
VBench dimensions are frame-weighted). `setup(context)` loads its models once through the
run's `ScoringContext` (`metrics/context.py`); `score(video, case, context)` scores one video.
`identity()` digests what makes its numbers (name, version, options, weights), and every
stored record carries it, so a changed option or weight file rescores instead of reusing.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from kaleido_bench.core.cases import Case
from kaleido_bench.core.errors import MetricOptionError
from kaleido_bench.core.registry import Registry
from kaleido_bench.core.video import DecodedVideo
from kaleido_bench.metrics.context import ScoringContext
from kaleido_bench.metrics.weights import WeightFile, locate, weights_fingerprint


@dataclass(frozen=True)
class MetricResult:
    """One video's score. `value` None means ABSENT (the metric does not apply), never zero."""

    value: float | None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def absent(cls, reason: str, **details: Any) -> MetricResult:
        return cls(None, {"absent": reason, **details})


@dataclass(frozen=True)
class Needs:
    """What a metric asks of the engine.

    - `frames`: "sampled" (a few frames: OpenS2V's 32 linspace ones), "all" (every frame:
      optical flow, VBench's consistency) or "none".
    - `group`: the model group; the engine keeps a group's models resident while it scores every
      pending video with them and, under a memory budget, releases them before the next group.
      Metrics that share a model (aesthetics and clip_i_l14's CLIP ViT-L/14) share a group.
    - `resource`: "cpu", "gpu" (runs on the context's device) or "network" (a remote API).
    - `model_bytes`: resident model memory at the real size (an estimate, for the budget).
    """

    frames: str = "sampled"
    group: str = ""
    resource: str = "gpu"
    model_bytes: int = 0


#: options every metric accepts (they change no number: `batch_size` is checked bit-identical)
COMMON_OPTIONS = frozenset({"batch_size"})


class Metric(ABC):
    """Base of every scorer; subclasses register with `@register_metric("name")`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    weights: ClassVar[tuple[WeightFile, ...]] = ()
    higher_is_better: ClassVar[bool] = True
    version: ClassVar[str] = "1"
    option_names: ClassVar[frozenset[str]] = frozenset()
    #: weight filename -> the option that may give its path instead of the resolver
    path_options: ClassVar[dict[str, str]] = {}
    needs: ClassVar[Needs] = Needs()
    # Non-empty: the reason this metric runs only when named (e.g. it pays a remote API per
    # video); `--metrics all` / `available` leave it out and report that reason.
    opt_in: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - self.option_names - COMMON_OPTIONS)
        if unknown:
            known = ", ".join(sorted(self.option_names | COMMON_OPTIONS)) or "none"
            raise MetricOptionError(
                f"metric {self.name or type(self).__name__} has no option(s) {', '.join(unknown)} (it takes: {known})"
            )
        self.options = options

    @classmethod
    def group(cls) -> str:
        """The model group (`needs.group`, else the metric's own name)."""
        return cls.needs.group or cls.name

    def setup(self, context: ScoringContext) -> None:
        """Load models once per run through `context` (resolving weights raises `WeightsMissingError`)."""

    @abstractmethod
    def score(self, video: DecodedVideo, case: Case, context: ScoringContext) -> MetricResult:
        """Score one decoded video of `case`."""

    @classmethod
    def aggregate(cls, results: Sequence[MetricResult]) -> float | None:
        """Suite-level value: mean over the videos where the metric is present (class-level:
        the leaderboard aggregates stored records without building a metric)."""
        values = [r.value for r in results if r.value is not None]
        return sum(values) / len(values) if values else None

    def config(self) -> dict[str, Any]:
        """What identifies this metric's numbers: name, code version, options, weight files."""
        return {
            "name": self.name,
            "version": self.version,
            "options": {
                k: _plain(v) for k, v in sorted(self.options.items()) if k not in COMMON_OPTIONS
            },
            "weights": {
                w.filename: weights_fingerprint(locate(w, self.explicit_path(w)).path)
                for w in self.weights
            },
        }

    def explicit_path(self, weight: WeightFile) -> Any:
        """The path an option gives for `weight` (None: the resolver looks it up)."""
        option = self.path_options.get(weight.filename)
        return self.options.get(option) if option else None

    def identity(self) -> str:
        """Short digest of `config()`, stored with every record this metric makes."""
        text = json.dumps(self.config(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    """Options as JSON-able data (paths and tuples as strings and lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


METRICS: Registry[type[Metric]] = Registry("metric")


def register_metric(name: str):
    """Class decorator: register a `Metric` subclass under `name` and set its `name`."""

    def decorator(cls: type[Metric]) -> type[Metric]:
        cls.name = name
        return METRICS.register(name)(cls)

    return decorator


def load_builtin_metrics() -> Registry[type[Metric]]:
    """Import every module of this package once so their `@register_metric` calls run."""
    import kaleido_bench.metrics as package

    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
    return METRICS


def get_metric_class(name: str) -> type[Metric]:
    return load_builtin_metrics().get(name)
