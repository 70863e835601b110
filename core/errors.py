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


class VideoTooLargeError(VideoError):
    """A video too large to decode whole, asked for every frame (an error for that case and metric)."""


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
    """A metric option that the metric does not take or with a bad value."""


class RunLockedError(BenchError):
    """Another process is working on the same run folder."""


class WeightFileError(BenchError):
    """A model file that is on disk but is not a tensor file that can be loaded safely."""


class ResultFileError(BenchError):
    """A run folder's manifest.json or scores.jsonl with the wrong shape or field types."""


class ReferenceImageError(BenchError):
    """A reference image whose pixel format cannot be turned into 8-bit RGB honestly."""


class ReferenceLimitError(BenchError):
    """A case with more reference images than the model accepts (recorded per case)."""


class ApiKeyMissingError(BenchError):
    """A remote model or metric finds no API key in its environment variable(s)."""


class RemoteGenerationError(BenchError):
    """A remote (closed API) generation that failed for one case; the message carries the provider's."""


class RateLimitError(RemoteGenerationError):
    """The provider kept refusing for rate or concurrency limits after every retry."""


class ContentRefusedError(RemoteGenerationError):
    """The provider's content moderation refused the input or the generated video."""


class RemoteTaskFailedError(RemoteGenerationError):
    """The provider accepted the task and then reported it failed (or it timed out, or its video is bad)."""


class RequestBudgetError(RemoteGenerationError):
    """Submitting would exceed `-o max_requests` or `-o max_cost`; nothing was sent."""
