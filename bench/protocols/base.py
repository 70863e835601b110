"""`SuiteProtocol`: what a suite means beyond its cases, and the registry that finds it by name.

A protocol says, for the suites it owns: which metrics a run uses when the user names none
(`default_metrics`), which metric applies to which case (`applies`), which cases count in its
tables (`counted_case_ids`), its Total (`total`, and the table columns it fills,
`table_columns`), and the published rows to place beside ours (`published_rows`). The
leaderboard, the report and the CLI ask `protocol_for(suite_name)` instead of testing names, so
a suite with its own Total is one new module in this package::

    @register_protocol
    class MySuite(SuiteProtocol):
        name = "my-suite"
        suite_names = ("my-suite",)
        total_column = "MyTotal"
        columns = ("MyTotal",)

        def total(self, per_video, *, domain="", version="", mode="ours"):
            ...  # per_video: {case id: {metric name: value}}

Suites no protocol claims (mini, `.txt` / `.json` / `.yaml` files) get `generic`: no Total,
the plain per-metric means of the leaderboard, every metric by default. The design follows
lm-eval-harness's task registry (a task owns its metrics and its aggregation) and inspect_ai's
`Task` (dataset + scorers + metrics in one record).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypeVar

from kaleido_bench.core.errors import UnknownNameError

if TYPE_CHECKING:
    import pandas as pd

    from kaleido_bench.core.cases import Suite

PerVideo = Mapping[str, Mapping[str, float]]
"""`{case id: {metric name: value}}`: the finite values of one run (absent metrics left out)."""


@dataclass(frozen=True)
class TotalColumn:
    """One table column a protocol's Total fills for one run (the Total or one of its parts).

    `n`: cases the value covers; `ci`: bootstrap 95% interval; `excluded`: values left out
    because they are not finite numbers; `digits`: rounding of the interval (None: none)."""

    name: str
    value: float | None
    n: int
    ci: tuple[float, float] = (math.nan, math.nan)
    excluded: int = 0
    digits: int | None = None


class SuiteProtocol:
    """Base protocol: no Total, every metric by default, every case counts (the generic rules).

    Subclasses set the class attributes and override what differs. Instances hold no state:
    one is built at registration and shared."""

    name: ClassVar[str] = ""
    suite_names: ClassVar[tuple[str, ...]] = ()
    """Registered suite names this protocol owns (lower case)."""
    default_metrics: ClassVar[tuple[str, ...]] = ("all",)
    """What `--metrics default` (the CLI default) expands to: metric names, or "all"."""
    versions: ClassVar[tuple[str, ...]] = ()
    """Versions of the Total's arithmetic (empty: unversioned; the tables then show no `version`)."""
    total_column: ClassVar[str | None] = None
    """The table column of the Total (None: the protocol has no Total)."""
    total_metrics: ClassVar[tuple[str, ...] | None] = None
    """The metrics the Total reads (None: every metric); only these reach `table_columns`."""
    columns: ClassVar[tuple[str, ...]] = ()
    """Every column `table_columns` can fill, in table order (all versions together)."""
    percent_columns: ClassVar[tuple[str, ...]] = ()
    """Those of `columns` printed as percent (two decimals)."""
    dataset: ClassVar[str] = ""
    """Where the suites' reference images come from, for error messages ("" = nowhere public)."""

    # -- suites and cases -------------------------------------------------------------------

    def claims(self, suite_name: str) -> bool:
        """True when `suite_name` (a registered name or a suite file's name) is one of ours."""
        return suite_name.lower() in self.suite_names

    def domain_of(self, suite_name: str) -> str:
        """The domain a suite of ours belongs to ("" when the protocol has no domains)."""
        return ""

    def load(self, suite_name: str, data_root: str | Path | None = None) -> Suite:
        """The suite's cases, through the suite loaders (`bench/suites.py`)."""
        from kaleido_bench.bench.suites import load_suite

        return load_suite(suite_name, data_root)

    def applies(self, metric: str, case_id: str) -> bool:
        """Whether `metric` is meant to score `case_id` under this protocol (True: no rule)."""
        return True

    def counted_case_ids(self, domain: str) -> frozenset[str] | None:
        """The cases that count in our runs' tables (None: whatever the run's suite holds)."""
        return None

    def missing_images_note(self) -> str:
        """A clause for "images missing" errors: where the suite's images can be downloaded."""
        return f" (the images of the public dataset {self.dataset})" if self.dataset else ""

    # -- the Total --------------------------------------------------------------------------

    @property
    def has_total(self) -> bool:
        return self.total_column is not None

    def check_version(self, version: str) -> None:
        """Refuse a version of the Total's arithmetic this protocol does not have."""
        if self.versions and version not in self.versions:
            raise UnknownNameError(
                f"unknown {self.name} version {version!r} (known: {', '.join(self.versions)})"
            )

    def total(
        self, per_video: PerVideo, *, domain: str = "", version: str = "", mode: str = "ours"
    ) -> float | None:
        """The suite's Total of one run (None: no Total, or a part it needs is missing)."""
        return None

    def table_columns(
        self,
        per_video: PerVideo,
        invalid: Sequence[tuple[str, str]] = (),
        *,
        domain: str = "",
        version: str = "",
        mode: str = "ours",
        reps: int = 0,
        seed: int = 0,
    ) -> list[TotalColumn]:
        """The Total's columns of one run's table row. `invalid`: the (case, metric) pairs whose
        value is not a finite number (left out of `per_video`, counted in `excluded`). The default fills `total_column` with `total(...)` and a bootstrap
        interval that resamples the cases (one `total` call per replicate)."""
        if self.total_column is None:
            return []
        from kaleido_bench.bench.leaderboard import bootstrap

        options = {"domain": domain, "version": version, "mode": mode}
        value = self.total(per_video, **options)
        items = list(per_video.items())

        def statistic(drawn: list[tuple[str, Mapping[str, float]]]) -> float | None:
            # a case drawn twice must count twice: suffix its id
            return self.total({f"{case}#{i}": v for i, (case, v) in enumerate(drawn)}, **options)

        ci = (
            bootstrap.statistic_interval(items, statistic, reps, seed)
            if value is not None
            else (math.nan, math.nan)
        )
        return [
            TotalColumn(
                self.total_column, value, len(per_video), ci, len({case for case, _ in invalid})
            )
        ]

    def published_rows(self, domain: str, version: str = "") -> pd.DataFrame | None:
        """Published results to place beside ours (None: there are none). Columns: `model`,
        `url`, `venue`, `evaluated_by` and some of `columns`."""
        return None

    # -- the report -------------------------------------------------------------------------

    def radar_axes(self, value_columns: list[str]) -> tuple[list[str], float, str] | None:
        """(axes, divisor, note) when the radar chart should plot the Total's parts on their own
        scale (value / divisor in 0-1); None: min-max scaled metric averages."""
        return None

    def column_metric(self, column: str) -> str | None:
        """The metric whose page explains one of `columns` (None: none does)."""
        return None


# -- registry ---------------------------------------------------------------------------------

PROTOCOLS: dict[str, SuiteProtocol] = {}
FALLBACK = "generic"

P = TypeVar("P", bound=type[SuiteProtocol])


def register_protocol(cls: P) -> P:
    """Class decorator: register one shared instance of `cls` under `cls.name`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in PROTOCOLS and type(PROTOCOLS[cls.name]) is not cls:
        raise ValueError(f"protocol {cls.name!r} is registered twice")
    PROTOCOLS[cls.name] = cls()
    return cls


def unregister_protocol(name: str) -> None:
    """Drop a protocol (tests that register a toy one clean up with this)."""
    if name == FALLBACK:
        raise ValueError("the generic protocol cannot be removed")
    PROTOCOLS.pop(name, None)


def _builtin() -> None:
    import kaleido_bench.bench.protocols.generic  # noqa: F401
    import kaleido_bench.bench.protocols.opens2v  # noqa: F401


def get_protocol(name: str) -> SuiteProtocol:
    """A protocol by its own name."""
    _builtin()
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown suite protocol {name!r} (known: {', '.join(sorted(PROTOCOLS))})"
        ) from None


def protocol_for(suite_name: str) -> SuiteProtocol:
    """The protocol that claims `suite_name`; `generic` when none does."""
    _builtin()
    for name, protocol in PROTOCOLS.items():
        if name != FALLBACK and protocol.claims(suite_name):
            return protocol
    return PROTOCOLS[FALLBACK]


def protocol_names() -> list[str]:
    _builtin()
    return sorted(PROTOCOLS)


def total_columns() -> tuple[str, ...]:
    """Every protocol's Total columns, in registration order (they lead a table's values)."""
    _builtin()
    return tuple(dict.fromkeys(c for protocol in PROTOCOLS.values() for c in protocol.columns))


def percent_columns() -> frozenset[str]:
    """Columns printed as percent by some protocol."""
    _builtin()
    return frozenset(c for protocol in PROTOCOLS.values() for c in protocol.percent_columns)


def known_versions() -> tuple[str, ...]:
    """Versions some protocol's Total has (a table asks for one version for all its suites)."""
    _builtin()
    return tuple(dict.fromkeys(v for protocol in PROTOCOLS.values() for v in protocol.versions))


def check_version(version: str) -> None:
    """Refuse a version no protocol's Total has (a table asks for one version for all suites)."""
    _builtin()
    versioned = [p for p in PROTOCOLS.values() if p.versions]
    if versioned and not any(version in p.versions for p in versioned):
        known = "; ".join(f"{p.name}: {', '.join(p.versions)}" for p in versioned)
        raise UnknownNameError(f"unknown Total version {version!r} (known: {known})")
