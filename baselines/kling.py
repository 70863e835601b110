"""`kling`: Kling's multi-image-to-video API (Kuaishou), the "Kling1.6" row of OpenS2V-Eval.

Protocol (SPEC section 7), checked against the public docs on 2026-12-01 through the search
tool: the API reference pages "General Information" (apiReference/commonInfo) and
"Multi-Image to Video" (apiReference/model/multiImageToVideo), read as a mirror of
app.klingai.com/global/dev/document-api, plus third-party clients that agree with it.
- VERIFIED there: base URL `https://api-singapore.klingai.com` (the older api.klingai.com is
  the pre-migration host); `Authorization: Bearer <JWT>`, the JWT HS256 with header typ JWT,
  payload iss = access key, exp = now + 1800, nbf = now - 5, signed with the secret key (their
  Python example uses PyJWT exactly so); POST /v1/videos/multi-image2video with model_name
  (enum: kling-v1-6 only), image_list [{"image": ...}] (up to 4), prompt, negative_prompt,
  mode (std | pro), duration ("5" | "10"), aspect_ratio (16:9, 9:16, 1:1); the reply
  {code, message, request_id, data: {task_id, task_status}} with task_status one of
  submitted, processing, succeed, failed; error code 1303 (HTTP 429) = too many running tasks;
  401/1000-1004 = authentication; 429/1100-1102 = account (arrears, no resource pack).
- From third-party clients only (UNVERIFIED against Kling's own page): the query path GET
  /v1/videos/multi-image2video/{task_id} and its result `data.task_result.videos[0].url`,
  `data.task_status_msg` on failure; an image as bare base64 WITHOUT a `data:` prefix (JPG/PNG,
  <= 10 MB, >= 300x300 px); 1301 = content security and 1302 = requests too fast.
- Failed tasks carry no code: a failure message that reads like moderation (risk, sensitive,
  policy, ...) is recorded as a refusal, any other as a failure.
The seed is not sent: this endpoint takes none, so reruns may differ.
"""

from __future__ import annotations

import os
import time
from typing import Any

from kaleido_bench.baselines.base import ModelCapabilities, register_model
from kaleido_bench.baselines.remote import (
    FAILED,
    PENDING,
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
from kaleido_bench.core.errors import ContentRefusedError, ModelOptionError, RemoteGenerationError

SUBMIT_PATH = "/v1/videos/multi-image2video"
RATE_LIMIT_CODES = (1302, 1303)
REFUSAL_CODES = (1301,)
#: 1100-1102 come with HTTP 429 too, but they mean "pay first", so they are not retried
ACCOUNT_CODES = (1100, 1101, 1102)
TOKEN_SECONDS = 1800


def kling_token(access_key: str, secret_key: str, now: float | None = None) -> str:
    """Kling's API token: a JWT (HS256) with iss = access key, valid from now-5 s for 30 min."""
    import jwt

    now = int(time.time() if now is None else now)
    payload = {"iss": access_key, "exp": now + TOKEN_SECONDS, "nbf": now - 5}
    return jwt.encode(payload, secret_key, algorithm="HS256", headers={"typ": "JWT"})


@register_model("kling")
class KlingAdapter(RemoteVideoAdapter):
    description = "Kling 1.6 multi-image-to-video (closed API; KLING_ACCESS_KEY, KLING_SECRET_KEY)"
    licence = "proprietary (Kling API terms of service)"
    weights_source = "remote API (api-singapore.klingai.com)"
    parameters = "not published"
    # 5 s; 720p in std mode, 16:9. The frame rate (24) is UNVERIFIED: the downloaded file decides
    default_capabilities = ModelCapabilities(4, 720, 1280, 120, 24.0)
    provider = "kling"
    key_variables = ("KLING_ACCESS_KEY", "KLING_SECRET_KEY")
    base_url_variable = "KLING_BASE_URL"
    default_base_url = "https://api-singapore.klingai.com"
    video_defaults = {"model_name": "kling-v1-6", "mode": "std", "duration": "5", "aspect_ratio": "16:9",
                      "negative_prompt": ""}  # fmt: skip
    #: ESTIMATE: kling-v1-6 std 5 s at about 0.056 USD per second (resellers' list prices, 2025)
    price_usd = 0.28
    needs_modules = ("httpx", "jwt")

    def parse_video_options(self, model: str, options: dict[str, Any]) -> dict[str, Any]:
        parsed = {key: str(value) for key, value in options.items()}
        if parsed["mode"] not in ("std", "pro"):
            raise ModelOptionError(
                f"model {model!r}: mode must be std or pro, got {parsed['mode']!r}"
            )
        if parsed["duration"] not in ("5", "10"):
            raise ModelOptionError(
                f"model {model!r}: duration must be 5 or 10, got {parsed['duration']!r}"
            )
        return parsed

    def auth_headers(self) -> dict[str, str]:
        token = kling_token(os.environ["KLING_ACCESS_KEY"], os.environ["KLING_SECRET_KEY"])
        return {"Authorization": f"Bearer {token}"}

    def submit_request(self, case: Case, seed: int) -> tuple[str, dict[str, Any]]:
        o = self.options
        body = {
            "model_name": o["model_name"],
            "image_list": [
                {"image": encode_reference(ref, data_url=False, accepted=("png", "jpeg"))}
                for ref in case.references
            ],
            "prompt": case.prompt,
            "negative_prompt": o["negative_prompt"],
            "mode": o["mode"],
            "duration": o["duration"],
            "aspect_ratio": o["aspect_ratio"],
        }
        return SUBMIT_PATH, body

    def read_submit(self, reply: Any) -> str:
        return reply["data"]["task_id"]

    def poll_task(self, http, task_id: str) -> TaskStatus:
        data = http("GET", f"{SUBMIT_PATH}/{task_id}")["data"]
        state = data.get("task_status")
        if state == "succeed":
            videos = (data.get("task_result") or {}).get("videos") or []
            return TaskStatus(SUCCEEDED, videos[0].get("url") if videos else None)
        if state == "failed":
            message = data.get("task_status_msg") or ""
            return TaskStatus(refused_or_failed(message), message=message)
        if state in ("submitted", "processing"):
            return TaskStatus(PENDING)
        return TaskStatus(FAILED, message=f"unknown task_status {state!r}")

    def check_reply(self, response) -> Any:
        reply = json_or_error(self.provider, response)
        code = reply.get("code") if isinstance(reply, dict) else None
        message = reply.get("message", "") if isinstance(reply, dict) else ""
        where = f"HTTP {response.status_code}, code {code}: {message}"
        if code in RATE_LIMIT_CODES or (response.status_code == 429 and code not in ACCOUNT_CODES):
            raise RateLimited(where, retry_after(response))
        if code in REFUSAL_CODES:
            raise ContentRefusedError(f"{self.provider}: refused by content moderation ({where})")
        if response.status_code >= 400 or code not in (0, None):
            raise RemoteGenerationError(f"{self.provider}: {where}")
        return reply
