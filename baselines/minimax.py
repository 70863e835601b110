"""`minimax`: MiniMax / Hailuo subject-reference video (S2V-01), one face reference a case.

Protocol (SPEC section 7), checked on 2026-12-01 through the search tool against MiniMax's
own API reference (platform.minimax.io/docs/api-reference: video-generation-s2v,
video-generation-query, video-generation-download, errorcode):
- VERIFIED: base URL https://api.minimax.io (mainland China: https://api.minimaxi.com, set
  -o base_url); `Authorization: Bearer KEY`; POST /v1/video_generation with model "S2V-01"
  (its only value), prompt (<= 2000 chars), prompt_optimizer and subject_reference (required);
  GET /v1/query/video_generation?task_id= gives status (Preparing, Queueing, Processing,
  Success, Fail) and file_id on success; GET /v1/files/retrieve?file_id= gives
  file.download_url; every reply carries base_resp {status_code, status_msg}, 0 = success;
  error codes 1002 = rate limit (retry later), 1004 = not authorized, 1008 = insufficient
  balance.
- From SPEC and third-party pages (UNVERIFIED on MiniMax's page): subject_reference items are
  {"type": "character", "image": [one image]} and only ONE subject (a person) is accepted;
  an image may be a URL or base64 (sent here as a `data:image/...;base64,` URL, the form
  MiniMax documents for its image-to-video first frame); 1026 = sensitive input and 1027 =
  sensitive output (recorded as refusals); the download URL is valid for about an hour; output
  720p, 25 fps assumed (the file decides).
The seed is not sent: the endpoint takes none, so reruns may differ.
"""

from __future__ import annotations

import os
from typing import Any

from kaleido_bench.baselines.base import ModelCapabilities, register_model
from kaleido_bench.baselines.options import bool_option
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
from kaleido_bench.core.errors import ContentRefusedError, RemoteGenerationError

RATE_LIMIT_CODES = (1002,)
REFUSAL_CODES = (1026, 1027)


@register_model("minimax")
class MinimaxAdapter(RemoteVideoAdapter):
    description = (
        "MiniMax Hailuo S2V-01 subject-reference video, one reference (closed API; MINIMAX_API_KEY)"
    )
    licence = "proprietary (MiniMax API terms of service)"
    weights_source = "remote API (api.minimax.io)"
    parameters = "not published"
    # one subject; 720p; about 6 s at 25 fps (UNVERIFIED: the downloaded file decides)
    default_capabilities = ModelCapabilities(1, 720, 1280, 141, 25.0)
    provider = "minimax"
    key_variables = ("MINIMAX_API_KEY",)
    base_url_variable = "MINIMAX_BASE_URL"
    default_base_url = "https://api.minimax.io"
    video_defaults = {"model": "S2V-01", "prompt_optimizer": True}
    #: ESTIMATE: S2V-01, one 6 s 720p video (MiniMax's list price, 2025)
    price_usd = 0.65

    def parse_video_options(self, model: str, options: dict[str, Any]) -> dict[str, Any]:
        optimizer = bool_option(model, "prompt_optimizer", options["prompt_optimizer"])
        return {
            "model": str(options["model"]),
            "prompt_optimizer": True if optimizer is None else optimizer,
        }

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {os.environ['MINIMAX_API_KEY']}"}

    def submit_request(self, case: Case, seed: int) -> tuple[str, dict[str, Any]]:
        o = self.options
        body = {
            "model": o["model"],
            "prompt": case.prompt,
            "prompt_optimizer": o["prompt_optimizer"],
            "subject_reference": [
                {"type": "character", "image": [encode_reference(ref, data_url=True)]}
                for ref in case.references
            ],
        }
        return "/v1/video_generation", body

    def read_submit(self, reply: Any) -> str:
        return reply["task_id"]

    def poll_task(self, http, task_id: str) -> TaskStatus:
        reply = http("GET", "/v1/query/video_generation", params={"task_id": task_id})
        status = reply.get("status")
        if status == "Success":
            retrieved = http("GET", "/v1/files/retrieve", params={"file_id": reply.get("file_id")})
            return TaskStatus(SUCCEEDED, (retrieved.get("file") or {}).get("download_url"))
        if status == "Fail":
            base = reply.get("base_resp") or {}
            message = f"{base.get('status_code', '')} {base.get('status_msg', '')}".strip()
            refused = base.get("status_code") in REFUSAL_CODES
            return TaskStatus("refused" if refused else refused_or_failed(message), message=message)
        if status in ("Preparing", "Queueing", "Processing"):
            return TaskStatus(PENDING)
        return TaskStatus(FAILED, message=f"unknown status {status!r}")

    def check_reply(self, response) -> Any:
        reply = json_or_error(self.provider, response)
        base = (reply.get("base_resp") or {}) if isinstance(reply, dict) else {}
        code, message = base.get("status_code"), base.get("status_msg", "")
        where = f"HTTP {response.status_code}, status_code {code}: {message}"
        if (
            response.status_code == 200
            and isinstance(reply, dict)
            and reply.get("status") == "Fail"
        ):
            return reply  # a failed task's own code (e.g. 1027) is the poll's to read
        if code in RATE_LIMIT_CODES or response.status_code == 429:
            raise RateLimited(where, retry_after(response))
        if code in REFUSAL_CODES:
            raise ContentRefusedError(f"{self.provider}: refused by content moderation ({where})")
        if response.status_code >= 400 or code not in (0, None):
            raise RemoteGenerationError(f"{self.provider}: {where}")
        return reply
