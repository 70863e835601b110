"""One exception type per kind of bad input; the CLI catches `BenchError` once and prints one line."""

from __future__ import annotations


class BenchError(Exception):
    """Base of every error a user can act on (exit code 2, no traceback)."""


class UnknownNameError(BenchError, KeyError):
    """An unknown model, suite or metric name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SuiteFileError(BenchError):
    """A suite file that cannot be read or has the wrong shape."""


class MissingImageError(BenchError):
    """Reference images that do not exist or cannot be decoded."""


class PathEscapeError(BenchError):
    """A reference path that points outside the suite's data root."""


class VideoError(BenchError):
    """A video that is missing, corrupt, or named wrongly."""


class NoFaceError(BenchError):
    """A reference image in which no face is found."""


class WeightsMissingError(BenchError):
    """A model file a metric or model needs is not on disk."""


class RunConflictError(BenchError):
    """A result folder that belongs to a different configuration."""


class ModelOptionError(BenchError):
    """A `-o key=value` model option that is missing, unknown or has a bad value."""


class GpuMemoryTooSmallError(BenchError):
    """The GPU cannot hold the model at the asked size and dtype."""


class CheckpointMismatchError(BenchError):
    """A model checkpoint whose tensors do not match the model's (missing, extra, wrong shape)."""


class MetricOptionError(BenchError):
    """A metric option that is unknown or has a bad value."""


class ApiKeyMissingError(BenchError):
    """A metric that calls a remote API finds no key in its environment variables."""
