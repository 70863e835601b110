"""The OpenS2V Total from our own run, end to end (issue 14 part 4).

The two real generated videos of `../shared/opens2v/videos` are scored by the `score` path with
every OpenS2V metric this install has: tiny random models in the real formats (the committed
GME and one-align fixtures, random CLIP-L / aesthetic head / buffalo_l / IR-101) and NaturalScore
against a local chat-completions server started here. The reference images of the public dataset
are not reachable offline, so stand-ins (frames of the videos themselves) are written at the paths
the official suite file names. The run is exported in the official per-metric format, read back
through the official-folder reader, and must give the run's own Total to 1e-12.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from support.nexus_fixtures import nexus_options

from kaleido_bench.bench.protocols.opens2v import DEFAULT_METRICS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CASES = ("faceobj_14", "singleface_3")


def _stand_in_references(shared: Path, data_root: Path) -> None:
    """Write a frame of each case's own video at each reference path of the official suite file."""
    from PIL import Image

    from kaleido_bench.core.video import decode_video

    suite = json.loads((shared / "opens2v" / "suites" / "Open-Domain_Eval.json").read_text())
    for case in CASES:
        frames = decode_video(shared / "opens2v" / "videos" / f"{case}.mp4").frames
        for k, relpath in enumerate(suite[case]["img_paths"]):
            target = data_root / relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            frame = frames[min(10 * k, len(frames) - 1)]
            Image.fromarray(frame[40:440, 216:616] if k == 0 else frame).save(target)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_our_run_exports_the_official_files_and_reads_back_to_its_own_total(
    shared_dir, tmp_path, monkeypatch
):
    pytest.importorskip("insightface")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "metrics"))
    from chat_server import ChatServer, Reply
    from support.random_weights import metric_options, write_random_weights

    from kaleido_bench.bench.evaluate import score_videos
    from kaleido_bench.bench.export import export_opens2v, run_values
    from kaleido_bench.bench.leaderboard import load_results, suite_table
    from kaleido_bench.bench.protocols.opens2v import (
        compute_total,
        metrics_to_slots,
        official_total,
    )
    from kaleido_bench.bench.runner import select_metrics
    from kaleido_bench.bench.suites import load_suite
    from kaleido_bench.metrics.base import load_builtin_metrics

    installed = [name for name in DEFAULT_METRICS if name in load_builtin_metrics()]
    assert {
        "aesthetics",
        "motion_amplitude",
        "face_sim_cur",
        "gme_score",
        "motion_smoothness",
        "natural_score",
    } <= set(installed)
    weights = tmp_path / "weights"
    plain = [n for n in installed if n in ("aesthetics", "face_sim_cur")]
    write_random_weights(weights, plain, size="tiny", seed=0)
    monkeypatch.setenv("KALEIDO_BENCH_WEIGHTS", str(weights))
    data_root = tmp_path / "OpenS2V-Eval"
    _stand_in_references(shared_dir, data_root)
    suite = load_suite("opens2v", data_root).select(list(CASES))
    with ChatServer(Reply("4")) as server:
        monkeypatch.setenv("KALEIDO_BENCH_NATURAL_API_KEY", "test-key")
        options = {name: metric_options(name, "tiny") for name in plain}
        options["gme_score"] = {"model_path": str(FIXTURES / "gme" / "tiny_gme")}
        options["motion_smoothness"] = {"qalign_path": str(FIXTURES / "qalign" / "one-align-tiny")}
        options["natural_score"] = {
            "endpoint": server.url,
            "cache_dir": str(tmp_path / "natural-cache"),
        }
        if "nexus_score" in installed:
            options["nexus_score"] = nexus_options()
        metrics, skipped = select_metrics(installed, options)
        store, summary, _ = score_videos(
            shared_dir / "opens2v" / "videos", suite, metrics, out_dir=tmp_path / "run"
        )
    assert not skipped and not summary.failures, summary.failures
    export_opens2v(store.root, tmp_path / "export")
    names = {p.name for p in (tmp_path / "export").glob("*.json")}
    assert {
        "aesthetic_score.json",
        "motion_amplitude.json",
        "motion_smoothness.json",
        "facesim.json",
        "gmescore.json",
        "naturalscore_1.json",
        "naturalscore_2.json",
        "naturalscore_3.json",
    } <= names
    direct = compute_total(metrics_to_slots(run_values(store.root)), "Open-Domain", mode="official")
    back = official_total(tmp_path / "export", "Open-Domain")
    assert direct.total is not None and np.isfinite(direct.total)
    assert back.total == pytest.approx(direct.total, abs=1e-12, rel=0)
    assert (
        back.counts == direct.counts
        and back.counts["natural_score"] == back.counts["gme_score"] == 2
    )  # both videos
    table = suite_table(load_results([store.root, tmp_path / "export"]), "opens2v")
    ours, official = table.iloc[0], table.iloc[1]
    assert official["TotalScore"] == round(back.total * 100, 2)
    # the tiny GME that keeps crops: faceobj_14 has a NexusScore (singleface_3 has no label left)
    assert back.counts["nexus_score"] == 1
    assert ours["TotalScore"] == official["TotalScore"] and np.isfinite(ours["NexusScore"])
