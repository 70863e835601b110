"""`generic`: the protocol of every suite no other protocol claims (mini, `.txt` / `.json` /
`.yaml` suite files): no Total, no published rows, every case counts, and a run with no
`--metrics` scores every registered metric ("all", as before protocols existed). Its tables
hold the plain per-metric means (or a metric's own `aggregate`) of `leaderboard/aggregation`.
"""

from __future__ import annotations

from kaleido_bench.bench.protocols.base import SuiteProtocol, register_protocol


@register_protocol
class GenericProtocol(SuiteProtocol):
    """Per-metric means only."""

    name = "generic"
    default_metrics = ("all",)

    def claims(self, suite_name: str) -> bool:
        return False  # the fallback: chosen when no other protocol claims a suite
