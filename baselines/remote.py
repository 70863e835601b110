"""One base for the closed video APIs (`kling`, `vidu`, `minimax`): submit, poll, download, verify.

Every provider works the same way: a POST creates a task and returns its id, GETs report the
task's state until it succeeds (with a video URL) or fails, and the video is fetched from that
URL. `RemoteVideoAdapter` does the common part; a provider module supplies the request body,
the endpoints and how to read the provider's replies (`submit_request`, `read_submit`,
`poll_task`, `check_reply`, `auth_headers`).

What the base guarantees:
- Resumable, never paid twice: right after a task is accepted, its id, the model version and a
  fingerprint of the request go to `videos/.<case>.remote.json` (written atomically, before
  polling starts). A rerun of the same case with the same request polls that task instead of
  submitting again (a task that failed or was refused is submitted anew; delete the state file
  to force a new task, e.g. when the provider has forgotten the old one). The state file holds
  no secret: no key, no token, no header, no base URL.
- The generation record carries `provider`, `task_id`, `model_version`, `submissions`,
  `resumed` and the verified frame count (returned by `generate`); the manifest carries the
  model version through the options. Keys come from environment variables only and are never
  logged, stored, or sent anywhere but the provider's API (the download URL gets no header).
- Per-case errors with the provider's message, one type per reason (core/errors.py):
  `RateLimitError` (still limited after `max_retries` waits with exponential backoff, or the
  provider's Retry-After), `ContentRefusedError` (moderation), `RemoteTaskFailedError` (failed
  task, poll timeout, an undecodable video), `RequestBudgetError` (the budget below). A missing
  key is one `ApiKeyMissingError` naming the variable, raised when the adapter is built.
- A budget: `-o max_requests=N` and `-o max_cost=USD` refuse to submit a task that would take
  the run folder past N submitted tasks or past USD at `price` per task (counted from the state
  files, so a resumed run counts what earlier runs paid). Prices are ESTIMATES, USD per task
  with the default options (`-o price=USD` overrides; the provider's bill is what counts):

      kling    0.28  kling-v1-6, std, 5 s (resellers' list price, about 0.056 USD/s)
      vidu     0.20  vidu2.0, 4 s, 720p (Vidu bills credits; a rough USD equivalent)
      minimax  0.65  S2V-01, one 6 s 720p video (MiniMax's list price)
- The video is streamed to a temp file, decoded with PyAV (at least one frame), and only then
  moved to `out_path`.

Options common to every provider (none of them changes the videos, so none is in `config()`):
base_url (also `<PROVIDER>_BASE_URL`; tests point it at a local server), max_requests,
max_cost, price, poll_interval (s, default 5, growing x1.5 up to poll_max_interval, 30),
poll_timeout (s, default 1800), retry_wait (s, default 2, doubling), max_retries (default 5),
timeout (s per HTTP request, default 60).

References are sent inline as base64 (every provider accepts it, see each module), so no image
has to be hosted anywhere. httpx does the HTTP (sync client); PyJWT makes Kling's token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import os
import tempfile
import time
from abc import abstractmethod
from dataclasses import asdict, dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, ClassVar

from kaleido_bench.baselines.base import ModelAdapter, ModelCapabilities
from kaleido_bench.baselines.options import float_option, int_option, refuse_unknown
from kaleido_bench.core.atomic import write_json_atomic
from kaleido_bench.core.cases import Case, ReferenceImage
from kaleido_bench.core.errors import (
    ApiKeyMissingError,
    ContentRefusedError,
    ModelOptionError,
    RateLimitError,
    RemoteGenerationError,
    RemoteTaskFailedError,
    RequestBudgetError,
)

#: options of every remote adapter that decide nothing about the videos (kept out of config())
COMMON_OPTIONS: dict[str, Any] = {
    "base_url": None,
    "max_requests": None,
    "max_cost": None,
    "price": None,
    "poll_interval": 5.0,
    "poll_max_interval": 30.0,
    "poll_timeout": 1800.0,
    "retry_wait": 2.0,
    "max_retries": 5,
    "timeout": 60.0,
}
STATE_SUFFIX = ".remote.json"
#: task states `poll_task` reports
PENDING, SUCCEEDED, FAILED, REFUSED = "pending", "succeeded", "failed", "refused"
#: words in a failed task's message that mean moderation refused it (providers give no code there)
REFUSAL_WORDS = ("sensitive", "risk", "policy", "moderation", "security", "illegal", "violat")


class RateLimited(Exception):
    """A reply that says "too many requests / too many running tasks": wait and retry."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerTrouble(Exception):
    """A 5xx reply or a dropped connection: retried like a rate limit, reported as a failure."""


@dataclass(frozen=True)
class TaskStatus:
    """What one poll says: `state` is PENDING, SUCCEEDED (with `video_url`), FAILED or REFUSED."""

    state: str
    video_url: str | None = None
    message: str = ""


@dataclass(frozen=True)
class RemoteState:
    """`videos/.<case>.remote.json`: the task this case paid for. Never a key, token or header."""

    provider: str
    case: str
    model_version: str
    task_id: str
    request: str  # sha256 of the request body: a changed request is a new task
    status: str  # submitted | succeeded | failed | refused | timeout
    submissions: int  # tasks submitted for this case over all runs (the budget counts them)
    message: str = ""
    submitted_at: str = ""

    @classmethod
    def read(cls, path: Path) -> RemoteState | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except (OSError, ValueError, TypeError):
            return None  # absent or unreadable: nothing to resume

    def write(self, path: Path) -> None:
        write_json_atomic(path, asdict(self))

    def with_status(self, status: str, message: str = "") -> RemoteState:
        return RemoteState(**{**asdict(self), "status": status, "message": message})


def state_path(videos_dir: Path, case_id: str) -> Path:
    return videos_dir / f".{case_id}{STATE_SUFFIX}"


def submitted_tasks(videos_dir: Path) -> int:
    """Tasks submitted for this run folder so far, over all runs (the budget's count)."""
    total = 0
    for path in videos_dir.glob(f".*{STATE_SUFFIX}"):
        state = RemoteState.read(path)
        total += state.submissions if state else 0
    return total


def count_frames(path: Path) -> int:
    """Decoded video frames in `path` (PyAV); 0 for a file without a decodable video stream."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return 0
            return sum(1 for _ in container.decode(video=0))
    except Exception:  # PyAV raises many types for a bad file
        return 0


def encode_reference(
    ref: ReferenceImage, *, data_url: bool, accepted: tuple[str, ...] = ("png", "jpeg", "webp")
) -> str:
    """The reference file as base64, unchanged when its format is accepted, else re-encoded as PNG.

    `data_url=True` gives `data:image/png;base64,...` (Vidu and MiniMax ask for the content type);
    False gives the bare base64 (Kling asks for no prefix).
    """
    from PIL import Image

    raw = ref.path.read_bytes()
    with Image.open(BytesIO(raw)) as image:
        fmt = (image.format or "").lower()
        if fmt not in accepted:
            buffer = BytesIO()
            image.convert("RGB").save(buffer, format="PNG")
            raw, fmt = buffer.getvalue(), "png"
    text = base64.b64encode(raw).decode("ascii")
    mime = mimetypes.types_map.get(f".{fmt}", f"image/{fmt}")
    return f"data:{mime};base64,{text}" if data_url else text


def _require_httpx():
    try:
        import httpx
    except ImportError:
        raise ModelOptionError(
            "the remote models need httpx: pip install 'kaleido-bench[remote]'"
        ) from None
    return httpx


def _require_modules(model: str, modules: tuple[str, ...]) -> None:
    """One clear error before any work when the `remote` extra is not installed."""
    import importlib.util

    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise ModelOptionError(
            f"model {model!r} needs {', '.join(missing)}: pip install 'kaleido-bench[remote]'"
        )


class RemoteVideoAdapter(ModelAdapter):
    """Base of the closed-API models; a subclass is one provider (see the module docstring)."""

    label = "closed API"
    #: provider name used in messages and state files
    provider: ClassVar[str] = ""
    #: environment variables holding the keys (all required)
    key_variables: ClassVar[tuple[str, ...]] = ()
    #: environment variable that overrides the base URL, and the provider's own
    base_url_variable: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    #: the options that shape the videos, with their defaults (they form config())
    video_defaults: ClassVar[dict[str, Any]] = {}
    #: ESTIMATED price of one task with the default options, in USD (for max_cost; -o price=)
    price_usd: ClassVar[float] = 0.0
    #: modules of the `remote` extra this provider imports
    needs_modules: ClassVar[tuple[str, ...]] = ("httpx",)

    def __init__(self, **options: Any) -> None:
        model = self.name or type(self).__name__
        refuse_unknown(model, options, (*self.video_defaults, *COMMON_OPTIONS))
        run = {**COMMON_OPTIONS, **{k: v for k, v in options.items() if k in COMMON_OPTIONS}}
        self.base_url = str(
            run["base_url"] or os.environ.get(self.base_url_variable) or self.default_base_url
        ).rstrip("/")
        self.max_requests = (
            None
            if run["max_requests"] is None
            else int_option(model, "max_requests", run["max_requests"])
        )
        self.max_cost = (
            None if run["max_cost"] is None else float_option(model, "max_cost", run["max_cost"])
        )
        self.price = (
            self.price_usd if run["price"] is None else float_option(model, "price", run["price"])
        )
        self.poll_interval = float_option(model, "poll_interval", run["poll_interval"])
        self.poll_max_interval = float_option(model, "poll_max_interval", run["poll_max_interval"])
        self.poll_timeout = float_option(model, "poll_timeout", run["poll_timeout"])
        self.retry_wait = float_option(model, "retry_wait", run["retry_wait"])
        self.max_retries = int_option(model, "max_retries", run["max_retries"])
        self.timeout = float_option(model, "timeout", run["timeout"])
        if self.max_retries < 0 or min(self.poll_interval, self.retry_wait, self.poll_timeout) < 0:
            raise ModelOptionError(
                f"model {model!r}: max_retries, poll_interval, retry_wait and poll_timeout must be >= 0"
            )
        video = {
            **self.video_defaults,
            **{k: v for k, v in options.items() if k in self.video_defaults},
        }
        super().__init__(**self.parse_video_options(model, video))
        _require_modules(model, self.needs_modules)
        missing = [var for var in self.key_variables if not os.environ.get(var, "").strip()]
        if missing:
            raise ApiKeyMissingError(
                f"model {model!r} needs its API key in the environment: set {', '.join(missing)}"
            )

    # -- what a provider module supplies ----------------------------------------------------------
    def parse_video_options(self, model: str, options: dict[str, Any]) -> dict[str, Any]:
        """Check and normalise the video options (strings from the command line); default: as given."""
        return options

    @property
    def model_version(self) -> str:
        """The provider's model name sent with each request (kling-v1-6, vidu2.0, S2V-01)."""
        return str(self.options.get("model_name") or self.options.get("model") or "")

    @abstractmethod
    def auth_headers(self) -> dict[str, str]:
        """The Authorization header (built from the environment at each call, never stored)."""

    @abstractmethod
    def submit_request(self, case: Case, seed: int) -> tuple[str, dict[str, Any]]:
        """(path, JSON body) of the POST that creates the task."""

    @abstractmethod
    def read_submit(self, reply: Any) -> str:
        """The task id in the (already checked) reply to the submission."""

    @abstractmethod
    def poll_task(self, http, task_id: str) -> TaskStatus:
        """Ask for the task's state once; `http(method, path, **kwargs)` returns a checked reply."""

    @abstractmethod
    def check_reply(self, response) -> Any:
        """The JSON of a successful reply; raise `RateLimited`, `ContentRefusedError` or
        `RemoteGenerationError` (each with the provider's message) otherwise."""

    # -- the common flow --------------------------------------------------------------------------
    @property
    def capabilities(self) -> ModelCapabilities:
        return self.default_capabilities or ModelCapabilities()

    def generate(self, case: Case, seed: int, out_path: Path) -> dict[str, Any]:
        httpx = _require_httpx()
        out_path = Path(out_path)
        path, body = self.submit_request(case, seed)
        request = hashlib.sha256(json.dumps([path, body], sort_keys=True).encode()).hexdigest()
        where = state_path(out_path.parent, case.id)
        state = RemoteState.read(where)
        resumed = bool(
            state
            and state.task_id
            and state.request == request
            and state.status in ("submitted", "timeout", "succeeded")
        )
        with httpx.Client(base_url=self.base_url, timeout=self.timeout) as client:

            def http(method: str, url: str, *, paying: bool = False, **kwargs):
                return self._call(client, method, url, paying=paying, **kwargs)

            if not resumed:
                self._check_budget(out_path.parent, case)
                reply = http("POST", path, json=body, paying=True)
                try:
                    task_id = str(self.read_submit(reply) or "")
                except (KeyError, TypeError, AttributeError):
                    task_id = ""
                if not task_id:
                    raise RemoteGenerationError(
                        f"{self.provider}: the submission's reply holds no task id: {str(reply)[:300]}"
                    )
                state = RemoteState(
                    self.provider,
                    case.id,
                    self.model_version,
                    task_id,
                    request,
                    "submitted",
                    (state.submissions if state else 0) + 1,
                    submitted_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                )
                state.write(where)  # before polling: a crash from here on resumes this task
            assert state is not None
            status = self._wait(http, state, where)
            frames = self._download(httpx, status.video_url or "", out_path, state)
        state.with_status("succeeded").write(where)
        return {
            "provider": self.provider,
            "task_id": state.task_id,
            "model_version": state.model_version,
            "submissions": state.submissions,
            "resumed": resumed,
            "frames": frames,
        }

    def _check_budget(self, videos_dir: Path, case: Case) -> None:
        done = submitted_tasks(videos_dir)
        if self.max_requests is not None and done + 1 > self.max_requests:
            raise RequestBudgetError(
                f"{self.provider}: not submitting case {case.id!r}: -o max_requests={self.max_requests} reached "
                f"({done} task(s) submitted for this run folder)"
            )
        if self.max_cost is not None and (done + 1) * self.price > self.max_cost + 1e-9:
            raise RequestBudgetError(
                f"{self.provider}: not submitting case {case.id!r}: -o max_cost={self.max_cost:g} USD would be "
                f"exceeded ({done} task(s) so far at an estimated {self.price:g} USD each)"
            )

    def _wait(self, http, state: RemoteState, where: Path) -> TaskStatus:
        """Poll until the task ends; a refusal or failure is recorded in the state file and raised."""
        deadline = time.monotonic() + self.poll_timeout
        interval = self.poll_interval
        while True:
            try:
                status = self.poll_task(http, state.task_id)
            except ContentRefusedError as exc:  # some providers refuse in the query's own reply
                state.with_status(REFUSED, str(exc)).write(where)
                raise
            if status.state == SUCCEEDED:
                if not status.video_url:
                    raise RemoteTaskFailedError(
                        f"{self.provider}: task {state.task_id} succeeded without a video URL"
                    )
                return status
            if status.state in (FAILED, REFUSED):
                state.with_status(status.state, status.message).write(where)
                error = ContentRefusedError if status.state == REFUSED else RemoteTaskFailedError
                verb = "refused by content moderation" if status.state == REFUSED else "failed"
                raise error(
                    f"{self.provider}: task {state.task_id} {verb}: {status.message or 'no message'}"
                )
            if time.monotonic() + interval > deadline:
                state.with_status("timeout").write(where)
                raise RemoteTaskFailedError(
                    f"{self.provider}: task {state.task_id} still running after {self.poll_timeout:g} s "
                    f"(-o poll_timeout); rerun to poll it again without a new submission"
                )
            time.sleep(interval)
            interval = min(interval * 1.5, max(self.poll_max_interval, self.poll_interval))

    def _call(self, client, method: str, url: str, *, paying: bool = False, **kwargs) -> Any:
        """One API request with retries on rate limits and server trouble (exponential backoff).

        A submission (`paying`) is retried after a dropped connection only when nothing was sent
        (a connect error): after a read timeout the provider may have created the task.
        """
        httpx = _require_httpx()
        last, limited = "", False
        for attempt in range(self.max_retries + 1):
            wait = self.retry_wait * 2**attempt
            try:
                response = client.request(method, url, headers=self.auth_headers(), **kwargs)
                if response.status_code >= 500:
                    raise ServerTrouble(f"HTTP {response.status_code}: {_text(response)}")
                return self.check_reply(response)
            except RateLimited as exc:
                last, limited = str(exc), True
                if exc.retry_after is not None:
                    wait = max(wait, exc.retry_after)
            except ServerTrouble as exc:
                last, limited = str(exc), False
            except httpx.TransportError as exc:
                if paying and not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                    raise RemoteGenerationError(
                        f"{self.provider}: submission interrupted ({type(exc).__name__}); the provider may have "
                        f"created the task: check its console before rerunning"
                    ) from None
                last, limited = f"{type(exc).__name__}: {exc}", False
            if attempt < self.max_retries:
                time.sleep(wait)
        attempts = self.max_retries + 1
        if limited:
            raise RateLimitError(
                f"{self.provider}: rate limited after {attempts} attempt(s): {last}"
            )
        raise RemoteGenerationError(
            f"{self.provider}: {method} {url} failed after {attempts} attempt(s): {last}"
        )

    def _download(self, httpx, url: str, out_path: Path, state: RemoteState) -> int:
        """Stream the video (no auth header: the URL is a CDN's), check it decodes, move it in place."""
        out_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{out_path.stem}.", suffix=".download", dir=out_path.parent
        )
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            for attempt in range(self.max_retries + 1):
                try:
                    with httpx.stream(
                        "GET", url, timeout=self.timeout, follow_redirects=True
                    ) as response:
                        if response.status_code >= 400:
                            raise ServerTrouble(f"HTTP {response.status_code}")
                        with open(tmp, "wb") as handle:
                            for chunk in response.iter_bytes():
                                handle.write(chunk)
                            handle.flush()
                            os.fsync(handle.fileno())
                    break
                except (ServerTrouble, httpx.TransportError) as exc:
                    if attempt == self.max_retries:
                        raise RemoteTaskFailedError(
                            f"{self.provider}: download of task {state.task_id}'s video failed: "
                            f"{type(exc).__name__}: {exc}"
                        ) from None
                    time.sleep(self.retry_wait * 2**attempt)
            frames = count_frames(tmp)
            if frames <= 0:
                raise RemoteTaskFailedError(
                    f"{self.provider}: task {state.task_id} gave a file that is not a decodable video "
                    f"({tmp.stat().st_size} bytes)"
                )
            os.replace(tmp, out_path)
            return frames
        finally:
            tmp.unlink(missing_ok=True)


def _text(response, limit: int = 300) -> str:
    """A reply's body for an error message, shortened."""
    try:
        text = response.text
    except Exception:
        return ""
    return text if len(text) <= limit else text[:limit] + "..."


def json_or_error(provider: str, response) -> Any:
    """The reply's JSON, or a `RemoteGenerationError` quoting it."""
    try:
        return response.json()
    except ValueError:
        raise RemoteGenerationError(
            f"{provider}: HTTP {response.status_code}, not JSON: {_text(response)}"
        ) from None


def retry_after(response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def refused_or_failed(message: str) -> str:
    """REFUSED when a failed task's message reads like moderation (a heuristic: no code is given)."""
    lowered = message.lower()
    return REFUSED if any(word in lowered for word in REFUSAL_WORDS) else FAILED
