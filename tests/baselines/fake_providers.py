"""A real local HTTP server (threaded `http.server`) that plays Kling, Vidu or MiniMax.

It speaks each provider's submit / poll / download protocol as `baselines/{kling,vidu,minimax}.py`
document it, checks the Authorization header the way the provider would (Kling: the JWT's
signature and claims), and counts what it was asked, so tests can prove that a resumed run
polls instead of paying again. `script` decides what happens:
- `submit_errors`: replies to give to the next POSTs before accepting one ("rate", "refuse",
  "server"); `always` repeats the first forever;
- `outcome`: what a task becomes after `pending_polls` pending answers: "success", "fail",
  "refuse" (moderation, reported in the task), "pending" (never finishes), "corrupt" (the video
  URL serves bytes that are not a video).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt

KEYS = {
    "KLING_ACCESS_KEY": "ak-kling-ACCESS-7f3a",
    "KLING_SECRET_KEY": "sk-kling-SECRET-91be-0123456789abcdef",
    "VIDU_API_KEY": "vidu-KEY-5c20d",
    "MINIMAX_API_KEY": "minimax-KEY-e48a1",
}


@dataclass
class Script:
    submit_errors: list[str] = field(default_factory=list)
    always: bool = False
    outcome: str = "success"
    pending_polls: int = 1


@dataclass
class Seen:
    """What the server was asked (every field counts requests that reached it)."""

    submit_posts: int = 0
    tasks: int = 0
    polls: int = 0
    downloads: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)
    bad_auth: int = 0


class FakeProvider:
    def __init__(self, provider: str, video: bytes) -> None:
        self.provider, self.video = provider, video
        self.script, self.seen = Script(), Seen()
        self.polls_of: dict[str, int] = {}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- authentication, as the provider checks it ------------------------------------------------
    def authorised(self, header: str) -> bool:
        if self.provider == "kling":
            if not header.startswith("Bearer "):
                return False
            try:
                claims = jwt.decode(header[7:], KEYS["KLING_SECRET_KEY"], algorithms=["HS256"])
            except jwt.PyJWTError:
                return False
            return (
                claims.get("iss") == KEYS["KLING_ACCESS_KEY"]
                and claims["exp"] - claims["nbf"] == 1805
            )
        if self.provider == "vidu":
            return header == f"Token {KEYS['VIDU_API_KEY']}"
        return header == f"Bearer {KEYS['MINIMAX_API_KEY']}"

    # -- the protocol -------------------------------------------------------------------------------
    def submit(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.seen.submit_posts += 1
            error = None
            if self.script.submit_errors:
                error = (
                    self.script.submit_errors[0]
                    if self.script.always
                    else self.script.submit_errors.pop(0)
                )
            if error is None:
                self.seen.tasks += 1
                task_id = f"task-{self.seen.tasks}"
                self.seen.bodies.append(body)
                self.polls_of[task_id] = 0
        if error == "server":
            return 503, {"message": "upstream unavailable"}
        return self.rejection(error) if error else self.accepted(task_id)

    def rejection(self, error: str) -> tuple[int, dict[str, Any]]:
        rate = error == "rate"
        if self.provider == "kling":
            return (
                (429, {"code": 1303, "message": "parallel task over resource pack limit"})
                if rate
                else (
                    400,
                    {
                        "code": 1301,
                        "message": "Failure to pass the content security check of the platform",
                    },
                )
            )
        if self.provider == "vidu":
            return (
                (429, {"reason": "TooManyRequests", "message": "too many requests"})
                if rate
                else (400, {"reason": "AuditSubmitIllegal", "message": "submit is illegal"})
            )
        code, msg = (1002, "rate limit exceeded(RPM)") if rate else (1026, "input new_sensitive")
        return 200, {"task_id": "", "base_resp": {"status_code": code, "status_msg": msg}}

    def accepted(self, task_id: str) -> tuple[int, dict[str, Any]]:
        if self.provider == "kling":
            return 200, {
                "code": 0,
                "message": "SUCCEED",
                "request_id": "r1",
                "data": {"task_id": task_id, "task_status": "submitted"},
            }
        if self.provider == "vidu":
            return 200, {"task_id": task_id, "state": "created", "model": "vidu2.0"}
        return 200, {"task_id": task_id, "base_resp": {"status_code": 0, "status_msg": "success"}}

    def task_state(self, task_id: str) -> str:
        with self.lock:
            self.seen.polls += 1
            if task_id not in self.polls_of:
                return "missing"
            self.polls_of[task_id] += 1
            if (
                self.script.outcome == "pending"
                or self.polls_of[task_id] <= self.script.pending_polls
            ):
                return "pending"
            return self.script.outcome

    def poll(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        video_url = (
            f"{self.url}/cdn/{'corrupt' if self.script.outcome == 'corrupt' else 'video'}.mp4"
        )
        if self.provider == "kling":
            task_id = path.rsplit("/", 1)[-1]
            state = self.task_state(task_id)
            if state == "missing":
                return 404, {"code": 1201, "message": "task not found"}
            data: dict[str, Any] = {
                "task_id": task_id,
                "task_status": {"pending": "processing", "fail": "failed", "refuse": "failed"}.get(
                    state, "succeed"
                ),
            }
            if state == "fail":
                data["task_status_msg"] = "generation failed: internal error 5001"
            elif state == "refuse":
                data["task_status_msg"] = "Failure to pass the risk control system"
            elif state != "pending":
                data["task_result"] = {"videos": [{"id": "v1", "url": video_url, "duration": "5"}]}
            return 200, {"code": 0, "message": "SUCCEED", "data": data}
        if self.provider == "vidu":
            state = self.task_state(path.split("/")[-2])
            if state == "missing":
                return 404, {"reason": "TaskNotFound", "message": "task not found"}
            if state == "pending":
                return 200, {"state": "processing", "err_code": "", "creations": []}
            if state in ("fail", "refuse"):
                code = "InternalServiceFailure" if state == "fail" else "CreationPolicyViolation"
                return 200, {"state": "failed", "err_code": code, "creations": []}
            return 200, {
                "state": "success",
                "err_code": "",
                "credits": 4,
                "creations": [{"id": "c1", "url": video_url, "cover_url": ""}],
            }
        if path == "/v1/files/retrieve":
            return 200, {
                "file": {
                    "file_id": query["file_id"],
                    "filename": "output.mp4",
                    "purpose": "video_generation",
                    "download_url": video_url,
                },
                "base_resp": {"status_code": 0, "status_msg": "success"},
            }
        state = self.task_state(query.get("task_id", ""))
        ok = {"status_code": 0, "status_msg": "success"}
        if state == "missing":
            return 200, {"base_resp": {"status_code": 2013, "status_msg": "invalid params"}}
        if state == "pending":
            return 200, {"task_id": query["task_id"], "status": "Processing", "base_resp": ok}
        if state == "fail":
            return 200, {
                "task_id": query["task_id"],
                "status": "Fail",
                "base_resp": {"status_code": 1000, "status_msg": "unknown error"},
            }
        if state == "refuse":
            return 200, {
                "task_id": query["task_id"],
                "status": "Fail",
                "base_resp": {"status_code": 1027, "status_msg": "output new_sensitive"},
            }
        return 200, {
            "task_id": query["task_id"],
            "status": "Success",
            "file_id": "f-1",
            "base_resp": ok,
        }


SUBMIT_PATHS = {
    "kling": "/v1/videos/multi-image2video",
    "vidu": "/ent/v2/reference2video",
    "minimax": "/v1/video_generation",
}


def _handler(fake: FakeProvider):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _reply(
            self, status: int, body: dict[str, Any] | bytes, content_type: str = "application/json"
        ) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(data)

        def _auth_ok(self) -> bool:
            header = self.headers.get("Authorization", "")
            fake.seen.auth.append(header)
            if fake.authorised(header):
                return True
            fake.seen.bad_auth += 1
            self._reply(
                401, {"code": 1000, "message": "Authentication failed", "reason": "Unauthorized"}
            )
            return False

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if urlparse(self.path).path != SUBMIT_PATHS[fake.provider]:
                self._reply(404, {"message": "no such endpoint"})
            elif self._auth_ok():
                self._reply(*fake.submit(body))

        def do_GET(self) -> None:
            parsed = urlparse(self.path)
            if parsed.path.startswith("/cdn/"):
                fake.seen.downloads += 1
                if "Authorization" in self.headers:  # a key sent to the CDN would be a leak
                    self._reply(400, {"message": "unexpected Authorization header on the download"})
                    return
                self._reply(
                    200,
                    b"not a video at all" if "corrupt" in parsed.path else fake.video,
                    "video/mp4",
                )
                return
            if self._auth_ok():
                query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
                self._reply(*fake.poll(parsed.path, query))

    return Handler
