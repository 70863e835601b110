"""Chat completions against any OpenAI-compatible endpoint: asynchronous, bounded, retried, counted.

Used by `natural_score` (OpenS2V NaturalScore asks GPT-4o to rate 16 frames). The official
script (`eval/get_naturalscore.py` at OpenS2V-Nexus 210eb08, lines 71-95) makes one blocking
`OpenAI().chat.completions.create` call per video and run, from 32 threads, retried 5 times by
tenacity. Here the `openai` package's `AsyncOpenAI` sends the same body; an asyncio semaphore
bounds how many requests are in flight; the client's own retry loop retries 429, 408, 409, 5xx,
timeouts and connection errors with exponential backoff and jitter (0.5 s doubling to 8 s) and
honours a server's `Retry-After` / `retry-after-ms`. Every HTTP attempt is counted (an httpx
event hook), so the cost line says what was actually sent.

The API key is handed in by the caller (read from an environment variable by the metric); it
is never stored on anything that is serialised, and `redact` removes it from error texts (a
401 body may echo it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_RETRIES = 4  # the official @retry(stop=stop_after_attempt(5)): 5 attempts in all


@dataclass(frozen=True)
class ChatReply:
    """The outcome of one chat request after its retries: `text` (stripped), or an `error`."""

    text: str | None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


class CostLedger:
    """What a run paid for and what it reused; thread-safe counters, one line via `summary()`."""

    FIELDS = (
        "sent",
        "answered",
        "failed",
        "cached",
        "invalid",
        "prompt_tokens",
        "completion_tokens",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts = dict.fromkeys(self.FIELDS, 0)

    def add(self, **increments: int) -> None:
        with self._lock:
            for key, value in increments.items():
                self.counts[key] += value

    def __getattr__(self, name: str) -> int:
        if name in CostLedger.FIELDS:
            return self.counts[name]
        raise AttributeError(name)

    def summary(self, label: str = "requests") -> str:
        c = dict(self.counts)
        retries = max(c["sent"] - c["answered"] - c["failed"], 0)
        tokens = (
            f", {c['prompt_tokens']} prompt + {c['completion_tokens']} completion tokens"
            if c["sent"]
            else ""
        )
        return (
            f"{label}: {c['sent']} HTTP requests sent ({retries} of them retries){tokens}; "
            f"{c['cached']} answered from the cache; {c['failed']} failed after retries; "
            f"{c['invalid']} replies were not a valid answer"
        )


def redact(text: str, secret: str | None) -> str:
    """`text` with every occurrence of `secret` (and of its last 4+ characters, as a masked key
    echoed by a server would show them) replaced by '***'."""
    if not secret:
        return text
    text = text.replace(secret, "***")
    tail = secret[-4:]
    return text.replace(tail, "***") if len(secret) >= 8 else text


class ChatClient:
    """Sends batches of chat requests to one endpoint and model with at most `max_in_flight` at once.

    `complete(list of messages)` blocks and returns one `ChatReply` per request, in order; a
    request that still fails after its retries (or answers with no text) is a reply with an
    `error`, never an exception, so one bad request does not lose the others.
    """

    def __init__(
        self,
        *,
        model: str,
        api_key: str,
        base_url: str | None = None,
        max_in_flight: int = 16,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        ledger: CostLedger | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.model, self.base_url = model, base_url
        self.max_in_flight, self.timeout, self.max_retries = max_in_flight, timeout, max_retries
        self.ledger = ledger or CostLedger()
        self._api_key = api_key

    def __repr__(self) -> str:  # never shows the key
        return f"ChatClient(model={self.model!r}, base_url={self.base_url!r}, max_in_flight={self.max_in_flight})"

    def complete(self, conversations: Sequence[list[dict[str, Any]]]) -> list[ChatReply]:
        """Blocking: every conversation sent (bounded), replies in the same order."""
        return _run(self.acomplete(conversations))

    async def acomplete(self, conversations: Sequence[list[dict[str, Any]]]) -> list[ChatReply]:
        import openai

        async def count_request(request: Any) -> None:
            self.ledger.add(sent=1)

        http_client = openai.DefaultAsyncHttpxClient(event_hooks={"request": [count_request]})
        client = openai.AsyncOpenAI(
            api_key=self._api_key,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            http_client=http_client,
        )
        limit = asyncio.Semaphore(self.max_in_flight)
        async with client:
            return list(
                await asyncio.gather(
                    *(self._one(client, limit, messages) for messages in conversations)
                )
            )

    async def _one(
        self, client: Any, limit: asyncio.Semaphore, messages: list[dict[str, Any]]
    ) -> ChatReply:
        import openai

        async with limit:
            try:
                # the official call (get_naturalscore.py:89-93): model, stream=False, messages;
                # no temperature, no seed
                response = await client.chat.completions.create(
                    model=self.model, stream=False, messages=messages
                )
            except openai.APIStatusError as exc:
                code = exc.status_code
                retried = (
                    f" (after {self.max_retries} retries)"
                    if code in (408, 409, 429) or code >= 500
                    else ""
                )
                return self._failed(f"HTTP {code} from the endpoint{retried}: {exc.message}")
            except openai.APITimeoutError:
                return self._failed(
                    f"timed out after {self.timeout} s ({self.max_retries} retries)"
                )
            except openai.APIConnectionError as exc:
                return self._failed(
                    f"connection to {self.base_url or 'the OpenAI API'} failed "
                    f"({self.max_retries} retries): {exc}"
                )
            except openai.OpenAIError as exc:  # e.g. a body that is not a chat completion
                return self._failed(f"{type(exc).__name__}: {exc}")
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        self.ledger.add(
            answered=1, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
        choices = getattr(response, "choices", None) or []
        content = choices[0].message.content if choices else None
        if content is None:
            return ChatReply(
                None,
                "the endpoint answered with no message content",
                prompt_tokens,
                completion_tokens,
            )
        # the official keeps `response.choices[0].message.content.strip()` (get_naturalscore.py:94)
        return ChatReply(content.strip(), None, prompt_tokens, completion_tokens)

    def _failed(self, message: str) -> ChatReply:
        self.ledger.add(failed=1)
        return ChatReply(None, redact(message, self._api_key))


def _run(coroutine: Any) -> Any:
    """`asyncio.run`, also from a thread that already runs an event loop (then on a helper thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class ResponseCache:
    """Replies on disk, one small JSON file per key, so a resumed run pays for nothing twice.

    A key is any JSON-able mapping (for NaturalScore: model, prompt digest, frames digest, run
    index); its file is `<root>/<sha256[:2]>/<sha256>.json`, written atomically, holding the key
    itself beside the reply so a cache folder can be audited. Nothing secret is stored.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @staticmethod
    def digest(key: Mapping[str, Any]) -> str:
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()

    def path(self, key: Mapping[str, Any]) -> Path:
        digest = self.digest(key)
        return self.root / digest[:2] / f"{digest}.json"

    def get(self, key: Mapping[str, Any]) -> str | None:
        path = self.path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return entry.get("reply") if entry.get("key") == dict(key) else None

    def put(self, key: Mapping[str, Any], reply: str) -> None:
        from kaleido_bench.core.atomic import write_json_atomic

        write_json_atomic(self.path(key), {"key": dict(key), "reply": reply})
