"""Suite protocols: a suite's default metrics, case rules, Total and published rows, one module
per protocol (`opens2v.py` holds every OpenS2V rule; `generic.py` the rules of every other
suite). See `base.py`; `protocol_for(suite_name)` is the one lookup."""

from kaleido_bench.bench.protocols.base import (
    FALLBACK,
    PROTOCOLS,
    PerVideo,
    SuiteProtocol,
    TotalColumn,
    check_version,
    get_protocol,
    known_versions,
    percent_columns,
    protocol_for,
    protocol_names,
    register_protocol,
    total_columns,
    unregister_protocol,
)

__all__ = [
    "FALLBACK",
    "PROTOCOLS",
    "PerVideo",
    "SuiteProtocol",
    "TotalColumn",
    "check_version",
    "get_protocol",
    "known_versions",
    "percent_columns",
    "protocol_for",
    "protocol_names",
    "register_protocol",
    "total_columns",
    "unregister_protocol",
]
