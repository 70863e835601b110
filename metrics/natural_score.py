"""`natural_score`: OpenS2V-Eval's NaturalScore, a vision-language model rates 16 frames from 1 to 5.

Source: OpenS2V-Nexus `eval/get_naturalscore.py` at 210eb08 (SPEC.md sections 2 and 6), followed
step for step so the request body is the official one byte for byte (checked against a request
captured from the official script, `tests/metrics/fixtures/natural_score/`):

- frames (lines 54-68): `cv2.VideoCapture` on the file (BGR), T = `CAP_PROP_FRAME_COUNT`, frame
  i of 16 read after seeking `CAP_PROP_POS_FRAMES` to `i * max(T // 16, 1)`; a failed read is
  skipped, not replaced;
- resize (lines 43-51): long side 512 with INTER_AREA, the short side `int(short * 512 / long)`;
- encoding (lines 38-40): `cv2.imencode(".jpg")` at its default quality, base64, as
  `data:image/jpeg;base64,...` URLs;
- request (lines 79-93): one user message, the 16 image parts BEFORE the prompt text part,
  `model` (default `gpt-4o-2024-11-20`), `stream=False`, no temperature, no seed;
- three runs (lines 190-200, `naturalscore_{1,2,3}.json`, the stripped reply as a string) and
  `eval/merge_result.py` lines 58-66: the video's score is the mean of the runs present.

Ours differs where the official loses data: a reply that is not a number from 1 to 5 (the merge
would crash on its `float(x)`) is recorded as that run's error with the reply text and left out
of the mean; a video with no valid run is an error, never a number. Requests go through
`chat_client.ChatClient` (asynchronous, bounded, retried with backoff) to any OpenAI-compatible
endpoint (`endpoint` option: vLLM, SGLang, Ollama, ...); valid replies are cached on disk by
(model, prompt digest, frames digest, run index), so a resumed run pays for nothing twice.

Options (`NaturalScore(**options)`; environment fallbacks in brackets): `endpoint`
[KALEIDO_BENCH_NATURAL_ENDPOINT] (default: the OpenAI API), `model`
[KALEIDO_BENCH_NATURAL_MODEL], `runs` (3), `max_in_flight` (16), `timeout` (s, 120),
`max_retries` (4: five attempts, as the official tenacity), `cache_dir` (default
`$KALEIDO_BENCH_CACHE/natural_score`, else `~/.cache/kaleido_bench/natural_score`),
`api_key_env` (the variable holding the key; default KALEIDO_BENCH_NATURAL_API_KEY, then
OPENAI_API_KEY, which is never sent to a custom `endpoint` unless named here). The key itself is never an option, so it cannot reach the manifest or records;
it is read when the metric is built, so a missing key stops a run before any work. The metric
is opt-in (`Metric.opt_in`): `--metrics all` / `available` leave it out, naming it runs it.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kaleido_bench.core.cases import Case
from kaleido_bench.core.errors import ApiKeyMissingError, MetricOptionError, VideoError
from kaleido_bench.core.video import DecodedVideo
from kaleido_bench.metrics.base import Metric, MetricResult, Needs, register_metric
from kaleido_bench.metrics.chat_client import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_S,
    ChatClient,
    CostLedger,
    ResponseCache,
)
from kaleido_bench.metrics.context import ScoringContext

# The module-level `prompt` of eval/get_naturalscore.py, lines 12-35 at 210eb08, verbatim: it
# starts and ends with a newline and is sent as is (line 18 ends with a space, written \x20).
PROMPT = """
Your task is to determine how realistic the given video clip appears, based on 16 extracted frames. Consider the following aspects in your evaluation:

- **Common sense consistency**: Are the objects, people, and interactions logically coherent in the context of the video?
- **Physical plausibility**: Do lighting, shadows, motion, and reflections obey the laws of physics? Are the objects in motion consistent with real-world physics?
- **Naturalness**: Does the visual quality (textures, details, proportions, etc.) resemble what we would expect in real life? Is there any unnatural visual distortion?
- **AI generation artifacts**: Are there signs of unnatural blurring, morphing, glitches, distortions, or inconsistencies across frames?\x20

**If the video contains humans**, pay special attention to:
- Are the facial features realistic and anatomically correct (e.g., eyes, mouth, and nose proportions)?
- Do the body parts appear proportionate and natural in motion (e.g., arm and leg movements, hand gestures)?

If **no humans** are present in the video, you can focus on evaluating the realism of other visual aspects like object consistency, motion fluidity, and environmental plausibility without needing to specifically assess human-related elements.

Output a score from 1 to 5 based on the criteria below, followed by an explanation of the reasoning behind your score:

- **1 — Definitely AI-Generated**: Clear and frequent artifacts (e.g., blurry faces or objects, unnatural movements, inconsistent lighting), distorted shapes, implausible physics (e.g., impossible movements, lighting issues), and severe inconsistencies. Violates common sense or real-world logic. Faces and bodies may be unrealistic or distorted if humans are present.
- **2 — Likely AI-Generated**: Noticeable AI generation cues such as inconsistent anatomy, fluctuating object textures, or mild physical implausibility (e.g., unnatural hand positions or eye movements). Faces and bodies may appear unnatural or inconsistent if humans are present. Still clearly synthetic upon inspection.
- **3 — Uncertain / Borderline**: Mixed indicators — the video may appear mostly natural but contains subtle flaws or small anomalies that raise suspicion. Faces and bodies might show mild inconsistencies (e.g., slight distortion in facial features or body parts) if humans are present. Hard to determine definitively.
- **4 — Likely Real**: Mostly natural and physically plausible, with only minor and rare irregularities that might be explainable (e.g., slight compression, mild lighting inconsistencies). Faces and body parts are mostly natural, with only minor imperfections, if humans are present.
- **5 — Definitely Real**: Fully consistent with real-world physics, common sense, and appearance. No visible artifacts or signs of AI generation. Faces and body parts appear fully realistic, without any visible distortions or unnatural movements, if humans are present.

Please only return the score (1-5), no additional explanation.
"""

DEFAULT_MODEL = "gpt-4o-2024-11-20"  # get_naturalscore.py line 172
NUM_FRAMES = 16  # line 54
LONG_SIDE = 512  # line 64
DEFAULT_RUNS = 3  # lines 190-200: naturalscore_1, _2, _3
DEFAULT_MAX_IN_FLIGHT = 16
SCORE_RANGE = (1.0, 5.0)
KEY_ENVS = ("KALEIDO_BENCH_NATURAL_API_KEY", "OPENAI_API_KEY")
ENDPOINT_ENV = "KALEIDO_BENCH_NATURAL_ENDPOINT"
MODEL_ENV = "KALEIDO_BENCH_NATURAL_MODEL"
NO_KEY_PLACEHOLDER = "EMPTY"  # what vLLM's docs pass to a server that checks no key
REPLY_IN_ERROR = 300  # characters of a bad reply quoted in a video's error message


# -- frames, exactly as the official script reads and encodes them ------------------------------


def frame_indices(total_frames: int, num_frames: int = NUM_FRAMES) -> list[int]:
    """The official seek targets: `i * max(T // 16, 1)` for i in 0..15 (line 57, 61)."""
    step = max(total_frames // num_frames, 1)
    return [i * step for i in range(num_frames)]


def resize_long_side(image: np.ndarray, target_long: int = LONG_SIDE) -> np.ndarray:
    """Long side to `target_long` with INTER_AREA; the other side `int(side * target / long)` (lines 43-51)."""
    import cv2

    h, w = image.shape[:2]
    if h >= w:
        new_h, new_w = target_long, int(w * target_long / h)
    else:
        new_w, new_h = target_long, int(h * target_long / w)
    return cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)


def read_frames(path: str | Path, num_frames: int = NUM_FRAMES) -> list[np.ndarray]:
    """BGR frames read with `cv2.VideoCapture` by seeking, resized; failed reads skipped (lines 54-68)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VideoError(f"video {path} cannot be opened by OpenCV")
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        frames = []
        for index in frame_indices(total, num_frames):
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = capture.read()
            if ok:
                frames.append(resize_long_side(frame, LONG_SIDE))
    finally:
        capture.release()
    return frames


def frames_from_decoded(video: DecodedVideo, num_frames: int = NUM_FRAMES) -> list[np.ndarray]:
    """The same sampling on already decoded RGB frames (for a video with no file): T = decoded
    count, RGB flipped to BGR. PyAV rgb24 reversed equals cv2's BGR on the shared H.264 videos."""
    return [
        resize_long_side(np.ascontiguousarray(video.frames[i][..., ::-1]), LONG_SIDE)
        for i in frame_indices(video.num_frames, num_frames)
        if i < video.num_frames
    ]


def jpeg_base64(image: np.ndarray) -> str:
    """`cv2.imencode(".jpg", image)` at OpenCV's default quality, base64 (lines 38-40)."""
    import cv2

    ok, buffer = cv2.imencode(".jpg", image)
    if not ok:
        raise VideoError(f"OpenCV could not encode a {image.shape} frame as JPEG")
    return base64.b64encode(buffer).decode("utf-8")


def build_messages(images_base64: Sequence[str], prompt: str = PROMPT) -> list[dict[str, Any]]:
    """One user message: every frame as an image part, THEN the prompt text (lines 80-92)."""
    content: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{image}"}}
        for image in images_base64
    ]
    content.append({"type": "text", "text": prompt})
    return [{"role": "user", "content": content}]


def sha256_text(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


# -- replies ---------------------------------------------------------------------------------


class InvalidScoreReply(ValueError):
    """A reply that is not a number from 1 to 5."""


def parse_score(reply: str) -> float:
    """The number the merge would read (`float(x)`, merge_result.py line 62), if it is in 1-5.

    Anything else ("4/5", "Score: 4", an explanation, "nan", 7) raises `InvalidScoreReply`:
    the official merge would crash on it or clip it silently.
    """
    text = reply.strip()
    try:
        value = float(text)
    except ValueError:
        raise InvalidScoreReply("reply is not a number") from None
    low, high = SCORE_RANGE
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidScoreReply(f"reply {value} is outside {low:g}-{high:g}")
    return value


@dataclass(frozen=True)
class RunRating:
    """One run's answer for one video: `score` when valid, else `error` (with the reply kept)."""

    run: int
    reply: str | None
    score: float | None = None
    error: str | None = None
    cached: bool = False

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"run": self.run, "reply": self.reply}
        if self.score is not None:
            out["score"] = self.score
        if self.error is not None:
            out["error"] = self.error
        out["cached"] = self.cached
        return out


@dataclass(frozen=True)
class NaturalRating:
    """Every run for one video; `value` is the mean of the valid runs, in run order (the merge)."""

    runs: tuple[RunRating, ...]
    frames: int
    frames_sha256: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> list[float]:
        return [r.score for r in self.runs if r.score is not None]

    @property
    def value(self) -> float | None:
        scores = self.valid
        return sum(scores) / len(scores) if scores else None

    def details(self) -> dict[str, Any]:
        return {
            **self.info,
            "frames": self.frames,
            "frames_sha256": self.frames_sha256,
            "valid_runs": len(self.valid),
            "runs": [r.as_dict() for r in self.runs],
        }

    def error(self) -> str:
        """Why no run gave a score, with the replies (shortened) that were not one."""
        parts = []
        for r in self.runs:
            reply = "" if r.reply is None else f" reply {_shorten(r.reply)!r}"
            parts.append(f"run {r.run}:{reply} {r.error}")
        return "no run gave a score from 1 to 5: " + "; ".join(parts)


def _shorten(text: str) -> str:
    return text if len(text) <= REPLY_IN_ERROR else text[:REPLY_IN_ERROR] + "..."


@dataclass(frozen=True)
class VideoFrames:
    """A video's 16 encoded frames, ready to send."""

    images: tuple[str, ...]
    source: str  # "cv2" (the official reader on the file) or "decoded" (no file)

    @property
    def sha256(self) -> str:
        return sha256_text(*self.images)


def encode_video(video: DecodedVideo | str | Path) -> VideoFrames:
    """The official frames of a video file (or of decoded frames when there is no file), as base64 JPEGs."""
    if isinstance(video, DecodedVideo):
        if video.path is not None and Path(video.path).is_file():
            frames, source = read_frames(video.path), "cv2"
        else:
            frames, source = frames_from_decoded(video), "decoded"
    else:
        frames, source = read_frames(video), "cv2"
    return VideoFrames(tuple(jpeg_base64(frame) for frame in frames), source)


def rate_videos(
    videos: Sequence[VideoFrames],
    client: ChatClient,
    *,
    runs: int = DEFAULT_RUNS,
    cache: ResponseCache | None = None,
    prompt: str = PROMPT,
) -> list[NaturalRating]:
    """Every (video, run) answered from the cache or sent, all at once through the client's bound.

    A valid reply is cached under (model, prompt digest, frames digest, run); a reply that is not
    a score is not cached (so a resumed run asks again: the model samples, no temperature is set).
    """
    prompt_sha = sha256_text(prompt)
    ledger = client.ledger
    answers: dict[tuple[int, int], RunRating] = {}
    pending: list[tuple[int, int, dict[str, Any]]] = []
    for v, frames in enumerate(videos):
        for run in range(1, runs + 1):
            key = {
                "model": client.model,
                "prompt_sha256": prompt_sha,
                "frames_sha256": frames.sha256,
                "run": run,
            }
            cached = cache.get(key) if cache is not None else None
            try:
                answers[(v, run)] = RunRating(run, cached, parse_score(cached), cached=True)
                ledger.add(cached=1)
            except (InvalidScoreReply, AttributeError):  # not cached (None), or an edited entry
                pending.append((v, run, key))
    conversations = [build_messages(videos[v].images, prompt) for v, _, _ in pending]
    for (v, run, key), reply in zip(pending, client.complete(conversations)):
        if not reply.ok:
            answers[(v, run)] = RunRating(run, None, error=reply.error)
            continue
        try:
            score = parse_score(reply.text)
        except InvalidScoreReply as exc:
            ledger.add(invalid=1)
            answers[(v, run)] = RunRating(run, reply.text, error=f"not a score from 1 to 5 ({exc})")
            continue
        if cache is not None:
            cache.put(key, reply.text)
        answers[(v, run)] = RunRating(run, reply.text, score)
    info = {"model": client.model, "prompt_sha256": prompt_sha}
    return [
        NaturalRating(
            tuple(answers[(v, run)] for run in range(1, runs + 1)),
            len(frames.images),
            frames.sha256,
            {**info, "frames_from": frames.source},
        )
        for v, frames in enumerate(videos)
    ]


# -- the metric ------------------------------------------------------------------------------


OPTIONS = (
    "endpoint",
    "model",
    "runs",
    "max_in_flight",
    "timeout",
    "max_retries",
    "cache_dir",
    "api_key_env",
)


def default_cache_dir() -> Path:
    base = os.environ.get("KALEIDO_BENCH_CACHE") or Path.home() / ".cache" / "kaleido_bench"
    return Path(base) / "natural_score"


def read_api_key(api_key_env: str | None, endpoint: str | None) -> str:
    """The key from the environment (never from an option). A custom endpoint may need none, and
    never gets OPENAI_API_KEY unless asked (`api_key_env`): a local server is not sent the user's
    OpenAI key."""
    names = (api_key_env,) if api_key_env else (KEY_ENVS[:1] if endpoint else KEY_ENVS)
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    if endpoint:
        return NO_KEY_PLACEHOLDER
    raise ApiKeyMissingError(
        f"natural_score calls the OpenAI API and needs a key: set {' or '.join(names)}, or point it at "
        f"another OpenAI-compatible server with --natural-endpoint URL (or {ENDPOINT_ENV})"
    )


@register_metric("natural_score")
class NaturalScore(Metric):
    """How real the video looks to a vision-language model, 1-5 (OpenS2V NaturalScore)."""

    description = "OpenS2V NaturalScore: a VLM (gpt-4o-2024-11-20 or any OpenAI-compatible endpoint) rates 16 frames 1-5"
    higher_is_better = True
    opt_in = "asks a remote model 3 times per video (paid for the OpenAI API); name it in --metrics to run it"
    option_names = frozenset(OPTIONS)
    needs = Needs(
        frames="none", resource="network"
    )  # reads the file with OpenCV, as the official script

    def __init__(self, **options: Any) -> None:
        if "api_key" in options:
            raise MetricOptionError(
                "natural_score takes its API key from an environment variable "
                f"({' or '.join(KEY_ENVS)}, or the one named by api_key_env), never as an option"
            )
        super().__init__(**options)
        self.endpoint: str | None = options.get("endpoint") or os.environ.get(ENDPOINT_ENV) or None
        self.model: str = options.get("model") or os.environ.get(MODEL_ENV) or DEFAULT_MODEL
        self.runs = _positive_int(options.get("runs", DEFAULT_RUNS), "runs")
        self.max_in_flight = _positive_int(
            options.get("max_in_flight", DEFAULT_MAX_IN_FLIGHT), "max_in_flight"
        )
        self.timeout = float(options.get("timeout", DEFAULT_TIMEOUT_S))
        self.max_retries = int(options.get("max_retries", DEFAULT_MAX_RETRIES))
        self.cache = ResponseCache(options.get("cache_dir") or default_cache_dir())
        self.ledger = CostLedger()
        self.client: ChatClient | None = None
        # read now so a missing key stops a run before any work; kept off `options` and `config()`
        self._api_key = read_api_key(options.get("api_key_env"), self.endpoint)

    def setup(self, context: ScoringContext | None = None) -> None:
        self.client = ChatClient(
            model=self.model,
            api_key=self._api_key,
            base_url=self.endpoint,
            max_in_flight=self.max_in_flight,
            timeout=self.timeout,
            max_retries=self.max_retries,
            ledger=self.ledger,
        )

    def score(self, video: DecodedVideo, case: Case, context: ScoringContext) -> MetricResult:
        [result] = self.score_many([video])
        if isinstance(result, Exception):
            raise result
        return result

    def score_many(
        self, videos: Sequence[DecodedVideo | str | Path]
    ) -> list[MetricResult | Exception]:
        """Several videos at once (all their runs share the `max_in_flight` bound); a video whose
        runs all failed gives an exception (to record as its error) in its place."""
        if self.client is None:
            raise RuntimeError(
                "natural_score is not set up: call setup(context) first (the engine does)"
            )
        encoded = [encode_video(video) for video in videos]
        results: list[MetricResult | Exception] = []
        empty = [i for i, frames in enumerate(encoded) if not frames.images]
        ratings = iter(
            rate_videos(
                [f for f in encoded if f.images], self.client, runs=self.runs, cache=self.cache
            )
        )
        for i, _ in enumerate(encoded):
            if i in empty:
                results.append(VideoError("OpenCV read none of the 16 sampled frames"))
                continue
            rating = next(ratings)
            if rating.value is None:
                results.append(NaturalScoreError(rating.error()))
            else:
                results.append(MetricResult(rating.value, rating.details()))
        return results

    def config(self) -> dict[str, Any]:
        """What identifies these numbers: endpoint, model, runs, prompt (never the key or cache)."""
        return {
            "name": self.name,
            "version": self.version,
            "endpoint": self.endpoint or "OpenAI API (default)",
            "model": self.model,
            "runs": self.runs,
            "prompt_sha256": sha256_text(PROMPT),
        }

    def cost_summary(self) -> str:
        """One line for the end of a run: requests sent (and retried), answered from the cache, failed."""
        return self.ledger.summary(f"natural_score ({self.model})")


class NaturalScoreError(RuntimeError):
    """No run of a video gave a score; the message carries the replies."""


def _positive_int(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise MetricOptionError(
            f"natural_score option {name} must be a whole number, got {value!r}"
        ) from None
    if number < 1:
        raise MetricOptionError(f"natural_score option {name} must be at least 1, got {number}")
    return number
