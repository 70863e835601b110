"""A tiny OpenAI-compatible chat-completions server for tests and benchmarks (stdlib only).

It records every request (path, headers, parsed JSON body) and answers each one with the next
scripted `Reply` (then with `default`), optionally after a delay, so tests can drive 429s, 500s,
timeouts, malformed answers and rate limits against a real HTTP client. It also tracks how
many requests were in flight at once. Standard library only: the capture script
(`benchmarks/capture_natural_request.py`) runs it under the official code's own venv.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a chat completion with `content`, or an error `status` with `body`."""

    content: str | None = "3"
    status: int = 200
    body: str | None = None  # raw body for errors (default: an OpenAI-style error object)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a slow model, or a timeout)


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    started: float
    finished: float = 0.0
    status: int = 0


def completion(content: str, model: str) -> dict[str, Any]:
    """A minimal `chat.completion` object, with token usage so cost accounting can be checked."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content},
            }
        ],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 1, "total_tokens": 1001},
    }


class ChatServer:
    """`with ChatServer() as server:` -> `server.url` (ends in /v1), `server.requests`, ...

    `responder(index, body) -> Reply`, when given, decides every answer (index = request number
    from 0); otherwise scripted replies (`script(...)`) are used in order, then `default`.
    `max_concurrent`, when set, answers 429 with `retry_after_ms` to any request that arrives
    while that many are already being served (a server-side rate limit).
    """

    def __init__(
        self,
        default: Reply | None = None,
        *,
        responder: Callable[[int, dict], Reply] | None = None,
        max_concurrent: int | None = None,
        retry_after_ms: int = 50,
    ) -> None:
        self.default = default or Reply()
        self.responder = responder
        self.max_concurrent = max_concurrent
        self.retry_after_ms = retry_after_ms
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.rejected = 0
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control ------------------------------------------------------------------------------
    def script(self, *replies: Reply) -> ChatServer:
        self._script.extend(replies)
        return self

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> ChatServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                server._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- serving ------------------------------------------------------------------------------
    def _next_reply(self, index: int, body: dict) -> Reply:
        if self.responder is not None:
            return self.responder(index, body)
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            body = {"_unparsed": raw.decode("utf-8", "replace")}
        record = Recorded(
            handler.path, {k.lower(): v for k, v in handler.headers.items()}, body, time.monotonic()
        )
        with self._lock:
            index = len(self.requests)
            self.requests.append(record)
            limited = self.max_concurrent is not None and self.in_flight >= self.max_concurrent
            if not limited:
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            else:
                self.rejected += 1
        try:
            if limited:
                reply = Reply(None, 429, headers={"retry-after-ms": str(self.retry_after_ms)})
            else:
                reply = self._next_reply(index, body)
                if reply.delay:
                    time.sleep(reply.delay)
            self._send(handler, reply, body.get("model", ""))
            record.status = reply.status
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
            record.status = -1
        finally:
            record.finished = time.monotonic()
            if not limited:
                with self._lock:
                    self.in_flight -= 1

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply, model: str) -> None:
        if reply.status == 200:
            payload = json.dumps(completion(reply.content or "", model)).encode()
        elif reply.body is not None:
            payload = reply.body.encode()
        else:
            payload = json.dumps(
                {
                    "error": {
                        "message": f"scripted status {reply.status}",
                        "type": "test",
                        "code": reply.status,
                    }
                }
            ).encode()
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        for key, value in reply.headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(payload)
        handler.wfile.flush()
