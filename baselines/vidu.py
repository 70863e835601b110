"""`vidu`: Vidu's reference-to-video API (Shengshu), the "Vidu2.0" row of OpenS2V-Eval.

Protocol (SPEC section 7), checked on 2026-12-01 through the search tool against Vidu's own
pages platform.vidu.com/docs/reference-to-video, /docs/get-generation and /docs/error-code:
- VERIFIED: POST https://api.vidu.com/ent/v2/reference2video with `Authorization: Token KEY`;
  body model (viduq1 | vidu2.0 | vidu1.5), images (1 to 7, URL or base64 WITH a content type,
  `data:image/png;base64,...`; png, jpeg, jpg, webp; >= 128x128 px), prompt (<= 1500 chars),
  duration (vidu2.0: 4), seed (a set value overrides the random one), aspect_ratio (16:9, 9:16,
  1:1), resolution (vidu2.0: 360p default, or 720p), movement_amplitude (auto, small, medium,
  large); the query GET /ent/v2/tasks/{id}/creations gives state (created, queueing,
  processing, success, failed), err_code and creations [{id, url, cover_url}] (url valid for
  a day); error codes AuditSubmitIllegal (input failed the safety review),
  CreationPolicyViolation (the output did), TaskPromptPolicyViolation; HTTP 429 with
  QuotaExceeded / TooManyRequests / SystemThrottling.
- UNVERIFIED: the shape of an error reply body (read leniently: `reason`, `code`, `err_code`,
  `message`), the reply to the submission (read: `task_id`, as the docs' examples and
  third-party clients show), and the output frame rate (24 assumed; the file decides).
  Third-party pages say vidu2.0 takes 1 to 3 images where Vidu's page says 1 to 7; the limit
  here follows Vidu's page and the API's own error covers the rest.
The run's seed is sent as `seed`.
"""

from __future__ import annotations

import os
from typing import Any

from kaleido_bench.baselines.base import ModelCapabilities, register_model
from kaleido_bench.baselines.options import int_option
from kaleido_bench.baselines.remote import (
    FAILED,
    PENDING,
    REFUSED,
    SUCCEEDED,
    RateLimited,
    RemoteVideoAdapter,
    TaskStatus,
    encode_reference,
    json_or_error,
    refused_or_failed,
    retry_after,
)
from kaleido_bench.core.cases import Case
from kaleido_bench.core.errors import ContentRefusedError, RemoteGenerationError

SUBMIT_PATH = "/ent/v2/reference2video"
REFUSAL_CODES = ("AuditSubmitIllegal", "CreationPolicyViolation", "TaskPromptPolicyViolation")


def _error_code(reply: Any) -> str:
    if not isinstance(reply, dict):
        return ""
    return str(reply.get("reason") or reply.get("err_code") or reply.get("code") or "")


@register_model("vidu")
class ViduAdapter(RemoteVideoAdapter):
    description = "Vidu 2.0 reference-to-video (closed API; VIDU_API_KEY)"
    licence = "proprietary (Vidu API terms of service)"
    weights_source = "remote API (api.vidu.com)"
    parameters = "not published"
    # vidu2.0: 4 s at 720p (-o resolution=720p, the default here), 16:9; 24 fps UNVERIFIED
    default_capabilities = ModelCapabilities(7, 720, 1280, 96, 24.0)
    provider = "vidu"
    key_variables = ("VIDU_API_KEY",)
    base_url_variable = "VIDU_BASE_URL"
    default_base_url = "https://api.vidu.com"
    video_defaults = {"model": "vidu2.0", "duration": 4, "resolution": "720p", "aspect_ratio": "16:9",
                      "movement_amplitude": "auto"}  # fmt: skip
    #: ESTIMATE: vidu2.0 4 s 720p; Vidu bills credits, this is a rough USD equivalent
    price_usd = 0.20

    def parse_video_options(self, model: str, options: dict[str, Any]) -> dict[str, Any]:
        parsed = {key: str(value) for key, value in options.items()}
        parsed["duration"] = int_option(model, "duration", options["duration"])
        return parsed

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {os.environ['VIDU_API_KEY']}"}

    def submit_request(self, case: Case, seed: int) -> tuple[str, dict[str, Any]]:
        o = self.options
        body = {
            "model": o["model"],
            "images": [encode_reference(ref, data_url=True) for ref in case.references],
            "prompt": case.prompt,
            "duration": o["duration"],
            "seed": seed,
            "aspect_ratio": o["aspect_ratio"],
            "resolution": o["resolution"],
            "movement_amplitude": o["movement_amplitude"],
        }
        return SUBMIT_PATH, body

    def read_submit(self, reply: Any) -> str:
        return reply["task_id"]

    def poll_task(self, http, task_id: str) -> TaskStatus:
        reply = http("GET", f"/ent/v2/tasks/{task_id}/creations")
        state = reply.get("state")
        if state == "success":
            creations = reply.get("creations") or []
            return TaskStatus(SUCCEEDED, creations[0].get("url") if creations else None)
        if state == "failed":
            code = reply.get("err_code") or ""
            message = (
                f"{code}: {reply.get('message', '')}".strip(": ")
                if code
                else reply.get("message", "")
            )
            return TaskStatus(
                REFUSED if code in REFUSAL_CODES else refused_or_failed(message), message=message
            )
        if state in ("created", "queueing", "processing"):
            return TaskStatus(PENDING)
        return TaskStatus(FAILED, message=f"unknown state {state!r}")

    def check_reply(self, response) -> Any:
        reply = json_or_error(self.provider, response)
        code = _error_code(reply)
        message = reply.get("message", "") if isinstance(reply, dict) else ""
        where = f"HTTP {response.status_code}, {code or 'no code'}: {message}"
        if response.status_code == 429:
            raise RateLimited(where, retry_after(response))
        if response.status_code >= 400 and code in REFUSAL_CODES:
            raise ContentRefusedError(f"{self.provider}: refused by content moderation ({where})")
        if response.status_code >= 400:
            raise RemoteGenerationError(f"{self.provider}: {where}")
        return reply
