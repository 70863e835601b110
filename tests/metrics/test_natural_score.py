"""NaturalScore against a local chat-completions server started by each test.

The golden request (`fixtures/natural_score/official_request_singleface_3.json.gz`) was sent by
the OFFICIAL `eval/get_naturalscore.py` (OpenS2V-Nexus 210eb08, its own venv with
opencv-python 4.11.0.86) to the same test server; `benchmarks/capture_natural_request.py` made it.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from pathlib import Path

import numpy as np
import pytest

# tests/metrics/chat_server.py (pytest puts this folder on sys.path)
from chat_server import ChatServer, Reply

from kaleido_bench.bench.evaluate import score_videos
from kaleido_bench.core.cases import Case, Suite
from kaleido_bench.core.errors import ApiKeyMissingError, MetricOptionError
from kaleido_bench.core.video import DecodedVideo, decode_video, write_video
from kaleido_bench.metrics.base import get_metric_class
from kaleido_bench.metrics.natural_score import (
    PROMPT,
    InvalidScoreReply,
    NaturalScore,
    NaturalScoreError,
    frames_from_decoded,
    parse_score,
    read_frames,
)

FIXTURE = (
    Path(__file__).parent / "fixtures" / "natural_score" / "official_request_singleface_3.json.gz"
)
SECRET = "sk-test-SECRET-0123456789abcdef"
CASE = Case("singleface_3", "", ())


@pytest.fixture(scope="module")
def real_videos(shared_dir: Path) -> dict[str, DecodedVideo]:
    folder = shared_dir / "opens2v" / "videos"
    return {name: decode_video(folder / f"{name}.mp4") for name in ("singleface_3", "faceobj_14")}


@pytest.fixture(scope="module")
def videos(real_videos: dict[str, DecodedVideo]) -> dict[str, DecodedVideo]:
    """The same videos without their files: frames come from the decoded array (the fallback,
    bit-identical to the OpenCV reader on these videos, see below), 20x faster than 16 seeks."""
    return {name: DecodedVideo(video.frames, video.fps) for name, video in real_videos.items()}


@pytest.fixture
def small_videos(tmp_path: Path) -> Path:
    """Two short random videos named after cases, for whole runs."""
    folder = tmp_path / "videos"
    rng = np.random.default_rng(0)
    for name in ("faceobj_14", "singleface_3"):
        write_video(
            folder / f"{name}.mp4", rng.integers(0, 256, (20, 64, 96, 3), dtype=np.uint8), fps=8
        )
    return folder


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "KALEIDO_BENCH_NATURAL_ENDPOINT",
        "KALEIDO_BENCH_NATURAL_MODEL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KALEIDO_BENCH_NATURAL_API_KEY", SECRET)
    return SECRET


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """`kaleido-bench ARGS` through the console entry point: (exit code, stdout, stderr)."""
    import sys

    from kaleido_bench.bench.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["kaleido-bench", *args])
        with pytest.raises(SystemExit) as exit_info:
            main()
            raise SystemExit(0)
        captured = capsys.readouterr()
        return exit_info.value.code, captured.out, captured.err

    return run


def make_metric(server: ChatServer, tmp_path: Path, **options) -> NaturalScore:
    metric = NaturalScore(endpoint=server.url, cache_dir=str(tmp_path / "cache"), **options)
    metric.setup()
    return metric


# -- the request is the official one -----------------------------------------------------------


def test_request_is_byte_identical_to_the_official_scripts(ctx, real_videos, tmp_path) -> None:
    golden = json.loads(gzip.decompress(FIXTURE.read_bytes()))
    with ChatServer(Reply("3")) as server:
        result = make_metric(server, tmp_path).score(real_videos["singleface_3"], CASE, ctx)
    assert result.value == 3.0 and result.details["frames_from"] == "cv2"
    assert len(server.requests) == 3  # three runs, as the official script makes
    official = golden["body"]
    for sent in server.requests:
        assert sent.path == golden["path"] == "/v1/chat/completions"
        assert sent.headers["authorization"] == f"Bearer {SECRET}"
        assert sent.body == official  # model, stream=False, messages; no temperature or seed
    ours_parts = server.requests[0].body["messages"][0]["content"]
    official_parts = official["messages"][0]["content"]
    assert [p["type"] for p in ours_parts] == ["image_url"] * 16 + ["text"]
    for mine, theirs in zip(
        ours_parts[:16], official_parts[:16]
    ):  # the same JPEG bytes, frame by frame
        assert mine["image_url"]["url"] == theirs["image_url"]["url"]
    assert ours_parts[16]["text"] == official_parts[16]["text"] == PROMPT
    assert PROMPT.startswith("\nYour task") and PROMPT.endswith("no additional explanation.\n")


def test_decoded_frames_fallback_matches_the_opencv_reader(real_videos) -> None:
    video = real_videos["singleface_3"]
    official_way = read_frames(video.path)
    fallback = frames_from_decoded(video)
    assert len(official_way) == len(fallback) == 16
    for a, b in zip(official_way, fallback):
        assert a.shape == b.shape == (295, 512, 3)
        assert (a == b).all()


# -- runs, replies, errors ---------------------------------------------------------------------


def test_three_runs_are_stored_and_averaged_like_the_merge(ctx, videos, tmp_path) -> None:
    with ChatServer() as server:
        server.script(Reply("4"), Reply(" 3\n"), Reply("4"))
        result = make_metric(server, tmp_path, max_in_flight=1).score(
            videos["singleface_3"], CASE, ctx
        )
    assert result.value == (4.0 + 3.0 + 4.0) / 3
    runs = result.details["runs"]
    assert [(r["run"], r["reply"], r["score"]) for r in runs] == [
        (1, "4", 4.0),
        (2, "3", 3.0),
        (3, "4", 4.0),
    ]
    assert result.details["valid_runs"] == 3 and result.details["model"] == "gpt-4o-2024-11-20"


def test_runs_option_changes_the_number_of_requests(ctx, videos, tmp_path) -> None:
    with ChatServer(Reply("2")) as server:
        result = make_metric(server, tmp_path, runs=5).score(videos["singleface_3"], CASE, ctx)
    assert len(server.requests) == 5 and len(result.details["runs"]) == 5 and result.value == 2.0


def test_retries_after_a_429_and_a_500(ctx, videos, tmp_path) -> None:
    with ChatServer() as server:
        server.script(
            Reply(None, 429, headers={"retry-after-ms": "20"}), Reply(None, 500), Reply("5")
        )
        metric = make_metric(server, tmp_path, runs=1)
        result = metric.score(videos["singleface_3"], CASE, ctx)
    assert result.value == 5.0
    assert [r.status for r in server.requests] == [429, 500, 200]
    assert server.requests[0].body == server.requests[2].body
    assert metric.ledger.sent == 3 and metric.ledger.answered == 1 and metric.ledger.failed == 0
    assert "3 HTTP requests sent (2 of them retries)" in metric.cost_summary()


def test_a_timeout_is_retried(ctx, videos, tmp_path) -> None:
    with ChatServer() as server:
        server.script(Reply("4", delay=1.5), Reply("4"))
        result = make_metric(server, tmp_path, runs=1, timeout=0.4).score(
            videos["singleface_3"], CASE, ctx
        )
    assert result.value == 4.0 and len(server.requests) == 2


def test_retries_run_out_and_the_run_is_an_error_not_a_number(ctx, videos, tmp_path) -> None:
    with ChatServer(Reply(None, 503, headers={"retry-after-ms": "5"})) as server:
        metric = make_metric(server, tmp_path, runs=1, max_retries=2)
        with pytest.raises(NaturalScoreError, match="HTTP 503"):
            metric.score(videos["singleface_3"], CASE, ctx)
    assert len(server.requests) == 3 and metric.ledger.failed == 1


def test_a_malformed_reply_is_recorded_as_an_error_with_its_text(ctx, videos, tmp_path) -> None:
    verbose = "I would rate this video a 4 because the faces look natural."
    with ChatServer() as server:
        server.script(Reply("4"), Reply(verbose), Reply("7"))
        metric = make_metric(server, tmp_path, max_in_flight=1)
        result = metric.score(videos["singleface_3"], CASE, ctx)
    assert result.value == 4.0  # the mean of the valid runs only
    runs = result.details["runs"]
    assert (
        runs[1]["reply"] == verbose and "not a score" in runs[1]["error"] and "score" not in runs[1]
    )
    assert runs[2]["reply"] == "7" and "outside" in runs[2]["error"] and "score" not in runs[2]
    assert result.details["valid_runs"] == 1 and metric.ledger.invalid == 2


def test_a_video_with_no_valid_reply_is_an_error_carrying_the_replies(
    ctx, videos, tmp_path
) -> None:
    with ChatServer(Reply("Score: 4/5")) as server:
        metric = make_metric(server, tmp_path)
        with pytest.raises(NaturalScoreError) as error:
            metric.score(videos["singleface_3"], CASE, ctx)
        assert "'Score: 4/5'" in str(error.value) and "run 3" in str(error.value)
        metric.score_many([videos["singleface_3"]])  # invalid replies are not cached: asked again
    assert len(server.requests) == 6


@pytest.mark.parametrize("reply", ["4/5", "Score: 4", "nan", "inf", "0", "5.5", "", "four"])
def test_parse_score_refuses_anything_but_a_number_from_1_to_5(reply) -> None:
    with pytest.raises(InvalidScoreReply):
        parse_score(reply)


def test_parse_score_reads_what_the_merge_reads() -> None:
    assert [parse_score(x) for x in ("1", " 4\n", "2.5", "5.0")] == [1.0, 4.0, 2.5, 5.0]


# -- concurrency, rate limits, resume ----------------------------------------------------------


def test_in_flight_requests_are_bounded(videos, tmp_path) -> None:
    two = [videos["singleface_3"], videos["faceobj_14"]]
    with ChatServer(Reply("3", delay=0.15)) as server:
        results = make_metric(server, tmp_path, max_in_flight=2).score_many(two)
    assert all(r.value == 3.0 for r in results)
    assert len(server.requests) == 6 and server.peak_in_flight == 2
    with ChatServer(
        Reply("3", delay=0.15)
    ) as server:  # a wider bound is used: the bound is what limits
        make_metric(server, tmp_path / "other", max_in_flight=6).score_many(two)
    assert server.peak_in_flight == 6


def test_a_rate_limited_server_is_waited_for(videos, tmp_path) -> None:
    two = [videos["singleface_3"], videos["faceobj_14"]]
    with ChatServer(Reply("2", delay=0.05), max_concurrent=2, retry_after_ms=30) as server:
        metric = make_metric(server, tmp_path, max_in_flight=6, max_retries=20)
        started = time.perf_counter()
        results = metric.score_many(two)
        elapsed = time.perf_counter() - started
    assert [r.value for r in results] == [2.0, 2.0]
    assert server.rejected > 0 and server.peak_in_flight <= 2
    assert metric.ledger.sent == 6 + server.rejected and metric.ledger.failed == 0
    assert elapsed >= 0.03  # at least one Retry-After was honoured


def test_a_resumed_run_sends_nothing_twice(ctx, videos, tmp_path) -> None:
    with ChatServer() as server:
        server.script(Reply("4"), Reply("5"), Reply("4"))
        first = make_metric(server, tmp_path, max_in_flight=1).score(
            videos["singleface_3"], CASE, ctx
        )
        again = make_metric(server, tmp_path)  # a new process: only the cache folder is shared
        second = again.score(videos["singleface_3"], CASE, ctx)
        assert len(server.requests) == 3
        assert (
            second.value == first.value
            and [r["cached"] for r in second.details["runs"]] == [True] * 3
        )
        assert again.ledger.cached == 3 and again.ledger.sent == 0
        assert (
            "0 HTTP requests sent" in again.cost_summary()
            and "3 answered from the cache" in again.cost_summary()
        )
        make_metric(server, tmp_path, model="another-vlm").score(videos["singleface_3"], CASE, ctx)
        assert len(server.requests) == 6  # the model is part of the cache key
        assert {r.body["model"] for r in server.requests[3:]} == {"another-vlm"}


# -- the key -------------------------------------------------------------------------------------


def test_the_key_never_reaches_records_manifest_cache_or_logs(
    small_videos, tmp_path, caplog, capsys
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = json.dumps(
        {"error": {"message": f"Incorrect API key provided: {SECRET}", "code": "invalid_api_key"}}
    )

    def answer(index: int, body: dict) -> Reply:
        return Reply(None, 401, body=echo) if index == 0 else Reply("4")

    suite = Suite(
        "opens2v",
        "v1.1",
        (Case("faceobj_14", "", ()), Case("singleface_3", "", ())),
        tmp_path,
        "Open-Domain",
    )
    with ChatServer(responder=answer) as server:
        metric = NaturalScore(
            endpoint=server.url, cache_dir=str(tmp_path / "run" / "natural_cache"), max_in_flight=1
        )
        store, summary, _ = score_videos(small_videos, suite, [metric], out_dir=tmp_path / "run")
    records = store.latest()
    assert records[("singleface_3", "natural_score")].value == 4.0
    assert (
        records[("faceobj_14", "natural_score")].value == 4.0
    )  # run 1 failed (401), runs 2 and 3 count
    failed = records[("faceobj_14", "natural_score")].details["runs"][0]
    assert "HTTP 401" in failed["error"] and "***" in failed["error"]
    assert all(
        r.headers["authorization"] == f"Bearer {SECRET}" for r in server.requests
    )  # it was used
    written = [p.read_text(encoding="utf-8") for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert written and all(SECRET not in text and SECRET[-8:] not in text for text in written)
    out = capsys.readouterr()
    for text in (
        caplog.text,
        out.out,
        out.err,
        repr(metric),
        repr(metric.client),
        json.dumps(metric.config()),
        metric.cost_summary(),
    ):
        assert SECRET not in text


def test_a_missing_key_is_a_clear_error_and_the_key_is_never_an_option(ctx, monkeypatch) -> None:
    monkeypatch.delenv("KALEIDO_BENCH_NATURAL_API_KEY")
    with pytest.raises(ApiKeyMissingError, match="KALEIDO_BENCH_NATURAL_API_KEY or OPENAI_API_KEY"):
        NaturalScore()  # at once, before any work
    NaturalScore(endpoint="http://127.0.0.1:9/v1").setup(ctx)  # a local server may need no key
    monkeypatch.setenv("MY_VLM_KEY", SECRET)
    NaturalScore(api_key_env="MY_VLM_KEY")
    with pytest.raises(MetricOptionError, match="environment variable"):
        NaturalScore(api_key=SECRET)
    with pytest.raises(MetricOptionError, match="natural_score has no option.*temperature"):
        NaturalScore(temperature=0)


def test_a_custom_endpoint_is_not_sent_the_openai_key(ctx, videos, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("KALEIDO_BENCH_NATURAL_API_KEY")
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with ChatServer(Reply("3")) as server:
        make_metric(server, tmp_path, runs=1).score(videos["singleface_3"], CASE, ctx)
    assert server.requests[0].headers["authorization"] == "Bearer EMPTY"


def test_registered_and_higher_is_better() -> None:
    cls = get_metric_class("natural_score")
    assert cls is NaturalScore and cls.higher_is_better and cls.weights == ()


def test_all_and_available_leave_the_paid_metric_out_unless_named(tmp_path) -> None:
    from kaleido_bench.bench.runner import select_metrics

    metrics, skipped = select_metrics(["available"])
    assert (
        "natural_score" not in [m.name for m in metrics]
        and "name it in --metrics" in skipped["natural_score"]
    )
    options = {
        "natural_score": {"endpoint": "http://127.0.0.1:9/v1", "model": "local-vlm", "runs": 2}
    }
    metrics, skipped = select_metrics(["available", "natural_score"], options=options)
    [natural] = [m for m in metrics if m.name == "natural_score"]
    assert "natural_score" not in skipped and (natural.endpoint, natural.model, natural.runs) == (
        "http://127.0.0.1:9/v1",
        "local-vlm",
        2,
    )


def test_score_and_export_from_the_command_line(
    small_videos, tmp_path, run_cli, monkeypatch
) -> None:
    monkeypatch.setenv("KALEIDO_BENCH_CACHE", str(tmp_path / "cache"))
    suite = tmp_path / "suite.json"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "ref.png")
    cases = [
        {
            "id": stem,
            "prompt": "p",
            "category": "test",
            "references": [{"path": "ref.png", "role": "object"}],
        }
        for stem in ("faceobj_14", "singleface_3")
    ]
    suite.write_text(json.dumps({"name": "two", "version": "1", "cases": cases}))
    with ChatServer(Reply("4")) as server:
        args = [
            "score",
            "--videos",
            str(small_videos),
            "--suite",
            str(suite),
            "--metrics",
            "natural_score",
            "--out",
            str(tmp_path / "run"),
            "--natural-endpoint",
            server.url,
            "--natural-model",
            "local-vlm",
        ]
        code, _, err = run_cli(*args)
        assert code == 0, err
        assert "natural_score (local-vlm): 6 HTTP requests sent (0 of them retries)" in err
        code, _, err = run_cli(*args)  # resumed: nothing is asked again
        assert code == 0 and len(server.requests) == 6
    assert {r.body["model"] for r in server.requests} == {"local-vlm"}
    code, _, err = run_cli(
        "export", str(tmp_path / "run"), "--format", "opens2v", "--out", str(tmp_path / "official")
    )
    assert code == 0, err
    for run in (1, 2, 3):
        exported = json.loads((tmp_path / "official" / f"naturalscore_{run}.json").read_text())
        assert exported == {"faceobj_14": "4", "singleface_3": "4"}
