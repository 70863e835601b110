"""The `Metric` interface: decoded frames of one video + its case in, a `MetricResult` out.

A metric declares the weight files it needs (`weights`), loads its models once in `setup`,
scores one video in `score`, and says how per-video results reduce to a suite score in
`aggregate` (plain mean by default; VBench dimensions are frame-weighted).
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from kaleido_bench.bench.cases import Case
from kaleido_bench.bench.registry import Registry
from kaleido_bench.bench.video import DecodedVideo
from kaleido_bench.metrics.weights import WeightFile


@dataclass(frozen=True)
class MetricResult:
    """One video's score. `value` None means ABSENT (the metric does not apply), never zero."""

    value: float | None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def absent(cls, reason: str, **details: Any) -> MetricResult:
        return cls(None, {"absent": reason, **details})


class Metric(ABC):
    """Base of every scorer; subclasses register with `@register_metric("name")`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    weights: ClassVar[tuple[WeightFile, ...]] = ()
    higher_is_better: ClassVar[bool] = True
    # Non-empty: the reason this metric runs only when named (e.g. it pays a remote API per
    # video); `--metrics all` / `available` leave it out and report that reason.
    opt_in: ClassVar[str] = ""

    def __init__(self, device: str = "cpu", **options: Any) -> None:
        self.device = device
        self.options = options

    def setup(self) -> None:
        """Load models once per run (resolving weights raises `WeightsMissingError`)."""

    @abstractmethod
    def score(self, video: DecodedVideo, case: Case) -> MetricResult:
        """Score one decoded video of `case`."""

    @classmethod
    def aggregate(cls, results: Sequence[MetricResult]) -> float | None:
        """Suite-level value: mean over the videos where the metric is present (class-level:
        the leaderboard aggregates stored records without building a metric)."""
        values = [r.value for r in results if r.value is not None]
        return sum(values) / len(values) if values else None

    def config(self) -> dict[str, Any]:
        """What identifies this metric's numbers (stored with every score)."""
        return {"name": self.name, **self.options}


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
