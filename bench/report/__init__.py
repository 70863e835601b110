"""The static HTML report (`kaleido-bench report RUNS... --out DIR`): leaderboard, charts,
gallery and metric pages, read from the same tables as the markdown and CSV leaderboards.
See `build.py` for the folder layout and `media.py` for where videos go."""

from kaleido_bench.bench.report.build import ReportError, build_report

__all__ = ["ReportError", "build_report"]
