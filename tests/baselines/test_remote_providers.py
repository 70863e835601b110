"""The closed-API adapters (kling, vidu, minimax) against a real local server playing each provider.

Every test runs the real runner (`run_model`) on cases of the bundled `mini` suite, with the
provider's base URL pointed at `fake_providers.FakeProvider` (a threaded `http.server`), and
reads what landed in the run folder: videos, records, state files.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from fake_providers import KEYS, FakeProvider

from kaleido_bench.baselines.base import get_model_class
from kaleido_bench.baselines.kling import kling_token
from kaleido_bench.bench.evaluate import run_model
from kaleido_bench.bench.store import GENERATE
from kaleido_bench.bench.suites import load_suite
from kaleido_bench.core.errors import ApiKeyMissingError
from kaleido_bench.core.video import write_video

PROVIDERS = ("kling", "vidu", "minimax")
FAST = {"poll_interval": 0.01, "poll_max_interval": 0.02, "retry_wait": 0.01, "max_retries": 2}
SINGLE = ["singleface_astronaut", "singleobj_cat", "singleobj_coffee"]


@pytest.fixture(scope="module")
def video_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    frames = np.random.default_rng(0).integers(0, 255, (6, 32, 48, 3), dtype=np.uint8)
    return write_video(path, frames, 24.0).read_bytes()


@pytest.fixture
def keys(monkeypatch):
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    for name in ("KLING_BASE_URL", "VIDU_BASE_URL", "MINIMAX_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=PROVIDERS)
def fake(request, video_bytes, keys):
    with FakeProvider(request.param, video_bytes) as server:
        yield server


@pytest.fixture(scope="module")
def mini():
    return load_suite("mini")


def run(fake: FakeProvider, mini, folder: Path, cases=SINGLE[:1], **options):
    adapter = get_model_class(fake.provider)(base_url=fake.url, **{**FAST, **options})
    store, summary = run_model(adapter, mini.select(cases), [], out_dir=folder)
    return store, summary, {r.case: r for r in store.records() if r.metric == GENERATE}


def test_a_task_is_submitted_polled_downloaded_and_recorded(fake, mini, tmp_path):
    store, summary, records = run(fake, mini, tmp_path / "run")
    record = records["singleface_astronaut"]
    assert record.error is None and summary.generated == 1
    assert record.details["task_id"] == "task-1"
    assert (
        record.details["model_version"]
        == {"kling": "kling-v1-6", "vidu": "vidu2.0", "minimax": "S2V-01"}[fake.provider]
    )
    assert record.details["frames"] == 6 and record.details["resumed"] is False
    assert store.video_path("singleface_astronaut").read_bytes() == fake.video
    assert (
        store.manifest()
        .model["options"]
        .get("model_name", store.manifest().model["options"].get("model"))
    )
    assert (
        fake.seen.tasks == 1
        and fake.seen.polls >= 2
        and fake.seen.downloads == 1
        and fake.seen.bad_auth == 0
    )
    body = fake.seen.bodies[0]
    reference = mini.case("singleface_astronaut").references[0].path.read_bytes()
    if fake.provider == "kling":  # bare base64, no data: prefix
        assert (
            body["model_name"] == "kling-v1-6" and body["duration"] == "5" and body["mode"] == "std"
        )
        assert base64.b64decode(body["image_list"][0]["image"]) == reference
    elif fake.provider == "vidu":  # data URL with its content type; the run's seed
        assert body["model"] == "vidu2.0" and body["seed"] == 0 and body["duration"] == 4
        assert body["images"][0].startswith("data:image/png;base64,")
        assert base64.b64decode(body["images"][0].split(",", 1)[1]) == reference
    else:
        assert body["model"] == "S2V-01"
        (subject,) = body["subject_reference"]
        assert subject["type"] == "character" and subject["image"][0].startswith(
            "data:image/png;base64,"
        )
    state = json.loads(
        (tmp_path / "run" / "videos" / ".singleface_astronaut.remote.json").read_text()
    )
    assert (
        state["task_id"] == "task-1"
        and state["status"] == "succeeded"
        and state["submissions"] == 1
    )


def test_a_failed_task_is_a_per_case_error_with_the_providers_message(fake, mini, tmp_path):
    fake.script.outcome = "fail"
    _, summary, records = run(fake, mini, tmp_path / "run", cases=SINGLE[:2])
    message = {
        "kling": "internal error 5001",
        "vidu": "InternalServiceFailure",
        "minimax": "unknown error",
    }
    for case in SINGLE[:2]:  # the run went on to the second case
        assert "failed" in records[case].error and message[fake.provider] in records[case].error
        assert "task-" in records[case].error
    assert summary.generated == 0 and fake.seen.tasks == 2


def test_a_rate_limit_is_retried_then_the_task_goes_through(fake, mini, tmp_path):
    fake.script.submit_errors = ["rate", "rate"]
    _, summary, records = run(fake, mini, tmp_path / "run", max_retries=3)
    assert records["singleface_astronaut"].error is None and summary.generated == 1
    assert fake.seen.submit_posts == 3 and fake.seen.tasks == 1


def test_a_server_error_is_retried_and_one_that_persists_is_reported(fake, mini, tmp_path):
    fake.script.submit_errors = ["server"]
    _, _, records = run(fake, mini, tmp_path / "a")
    assert records["singleface_astronaut"].error is None and fake.seen.tasks == 1

    fake.script.submit_errors, fake.script.always = ["server"], True
    _, _, records = run(fake, mini, tmp_path / "b")
    error = records["singleface_astronaut"].error
    assert "failed after 3 attempt(s): HTTP 503" in error and "upstream unavailable" in error
    assert fake.seen.tasks == 1


def test_a_rate_limit_that_persists_becomes_a_per_case_error(fake, mini, tmp_path):
    fake.script.submit_errors, fake.script.always = ["rate"], True
    _, summary, records = run(fake, mini, tmp_path / "run", cases=SINGLE[:2], max_retries=2)
    provider_message = {
        "kling": "parallel task over resource pack limit",
        "vidu": "too many requests",
        "minimax": "rate limit exceeded(RPM)",
    }[fake.provider]
    for case in SINGLE[:2]:
        error = records[case].error
        assert (
            error.startswith(f"{fake.provider}: rate limited after 3 attempt(s)")
            and provider_message in error
        )
    assert fake.seen.submit_posts == 6 and fake.seen.tasks == 0 and summary.generated == 0


@pytest.mark.parametrize("where", ["submit", "task"])
def test_a_content_refusal_is_recorded_with_the_providers_message(fake, mini, tmp_path, where):
    if where == "submit":
        fake.script.submit_errors = ["refuse"]
    else:
        fake.script.outcome = "refuse"
    _, _, records = run(fake, mini, tmp_path / "run")
    error = records["singleface_astronaut"].error
    message = {
        ("kling", "submit"): "Failure to pass the content security check",
        ("kling", "task"): "risk control system",
        ("vidu", "submit"): "AuditSubmitIllegal",
        ("vidu", "task"): "CreationPolicyViolation",
        ("minimax", "submit"): "1026: input new_sensitive",
        ("minimax", "task"): "output new_sensitive",
    }[fake.provider, where]
    assert "refused by content moderation" in error and message in error


def test_a_resumed_run_polls_the_old_task_instead_of_paying_again(fake, mini, tmp_path):
    fake.script.outcome = "pending"
    _, _, records = run(fake, mini, tmp_path / "run", poll_timeout=0.05)
    assert "still running" in records["singleface_astronaut"].error
    state_file = tmp_path / "run" / "videos" / ".singleface_astronaut.remote.json"
    assert json.loads(state_file.read_text())["task_id"] == "task-1"
    assert fake.seen.tasks == 1

    fake.script.outcome = "success"  # the provider finished meanwhile
    store, summary, records = run(fake, mini, tmp_path / "run", poll_timeout=5)
    record = records["singleface_astronaut"]
    assert (
        record.error is None
        and record.details["resumed"] is True
        and record.details["task_id"] == "task-1"
    )
    assert fake.seen.tasks == 1 and fake.seen.submit_posts == 1  # no second submission
    assert store.video_path("singleface_astronaut").is_file()


def test_no_key_or_token_reaches_any_file_of_the_run_folder(fake, mini, tmp_path):
    fake.script.outcome = "fail"
    run(fake, mini, tmp_path / "run", cases=SINGLE[:1])
    fake.script.outcome = "success"
    run(fake, mini, tmp_path / "run2", cases=SINGLE[1:2])
    secrets = list(KEYS.values()) + [header.split(" ", 1)[-1] for header in fake.seen.auth]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".remote.json") for p in files) and any(
        p.suffix == ".mp4" for p in files
    )
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret[:6]}... found in {path.name}"
        assert b"eyJ" not in data or path.suffix == ".mp4"  # no JWT (base64 of '{"')


def test_max_requests_and_max_cost_refuse_to_submit(fake, mini, tmp_path):
    _, summary, records = run(fake, mini, tmp_path / "a", cases=SINGLE, max_requests=2)
    assert fake.seen.tasks == 2 and summary.generated == 2
    refused = records[SINGLE[2]].error  # suite order: astronaut, cat, coffee
    assert "max_requests=2 reached (2 task(s) submitted for this run folder)" in refused

    before = fake.seen.tasks
    _, _, records = run(fake, mini, tmp_path / "b", cases=SINGLE, price=0.5, max_cost=1.2)
    assert fake.seen.tasks - before == 2
    assert "max_cost=1.2 USD would be exceeded" in records[SINGLE[2]].error


def test_a_video_that_does_not_decode_is_not_kept(fake, mini, tmp_path):
    fake.script.outcome = "corrupt"
    store, _, records = run(fake, mini, tmp_path / "run")
    assert "not a decodable video" in records["singleface_astronaut"].error
    assert not any(p.suffix in (".mp4", ".download") for p in store.videos_dir.iterdir())


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_missing_key_is_one_error_naming_the_variable(provider, monkeypatch):
    for name in KEYS:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ApiKeyMissingError) as error:
        get_model_class(provider)()
    variable = {
        "kling": "KLING_ACCESS_KEY, KLING_SECRET_KEY",
        "vidu": "VIDU_API_KEY",
        "minimax": "MINIMAX_API_KEY",
    }
    assert f"set {variable[provider]}" in str(error.value)


def test_kling_token_follows_the_documented_claims():
    import jwt

    secret = "s" * 32
    token = kling_token("ak", secret, now=1_700_000_000)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    assert jwt.decode(
        token, secret, algorithms=["HS256"], options={"verify_exp": False, "verify_nbf": False}
    ) == {"iss": "ak", "exp": 1_700_001_800, "nbf": 1_699_999_995}


def test_minimax_takes_one_reference_so_the_runner_refuses_two_without_a_request(
    video_bytes, keys, mini, tmp_path
):
    with FakeProvider("minimax", video_bytes) as server:
        _, _, records = run(server, mini, tmp_path / "run", cases=["multiface_astronaut_hopper"])
    assert (
        "has 2 reference images; model 'minimax' accepts at most 1"
        in records["multiface_astronaut_hopper"].error
    )
    assert server.seen.submit_posts == 0


def test_the_budget_and_polling_options_do_not_change_the_run_folder(keys):
    cls = get_model_class("kling")
    assert (
        cls().config()
        == cls(max_requests=3, max_cost=1, base_url="http://x", poll_interval=1).config()
    )
    assert cls().config() != cls(mode="pro").config()
