"""MotionSmoothness speed: the official Q-Align loop against ours, same random model, same frames.

    python benchmarks/qalign_speed.py --official /path/to/OpenS2V-Nexus@210eb08 \\
        --official-python /work/scratch/qalign/venv/bin/python [--preset mid] [--repeats 2] \\
        [--out results/benchmarks/qalign_speed_cpu.md]

1. In the official environment (`--official-python`: transformers 4.36.1 etc., see
   `tests/fixtures/qalign/make_fixtures.py`), `make_fixtures.py --preset mid` writes a random
   mPLUG-Owl2 in the one-align layout to a temporary folder and times the official loop per
   video: `load_video_sliding_window` (decord stand-in on PyAV) + `QAlignVideoScorer.forward`
   (64 windows a batch, 3 frames encoded per window) + `get_artifacts_frames`.
2. Here, the same folder through `load_qalign` and the same videos through
   `decode_video` + `motion_smoothness.window_scores` (each frame encoded once) + the rule.
Both in fp32 on the CPU with the same torch thread count; model loading is not timed on
either side; each side's time is the best of `--repeats`. Values are compared window by window.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared" / "opens2v" / "videos"
GENERATOR = REPO / "tests" / "fixtures" / "qalign" / "make_fixtures.py"


def run_official(args: argparse.Namespace, folder: Path) -> dict:
    command = [
        str(args.official_python), str(GENERATOR), "--official", str(args.official), "--videos", str(args.videos),
        "--out", str(folder), "--preset", args.preset, "--repeats", str(args.repeats),
    ]  # fmt: skip
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    return json.loads((folder / f"official_outputs_{args.preset}_float32.json").read_text())


def run_ours(args: argparse.Namespace, folder: Path, attention: str) -> dict:
    import torch

    from kaleido_bench.core.video import decode_video
    from kaleido_bench.metrics.motion_smoothness import (
        artifact_frames,
        qalign_pixels,
        sliding_windows,
    )
    from kaleido_bench.metrics.qalign import (
        frame_tokens,
        load_qalign,
        quality_scores,
        window_label_logits,
    )

    torch.set_num_threads(args.threads)
    model = load_qalign(
        folder / f"one-align-{args.preset}", device="cpu", attn_implementation=attention
    )
    results = {}
    for path in sorted(args.videos.glob("*.mp4")):
        best: dict[str, float] = {}
        for _ in range(args.repeats):
            times = {}
            start = time.perf_counter()
            frames = decode_video(path).frames
            pixels = qalign_pixels(frames)
            times["decode + preprocess"] = time.perf_counter() - start
            mark = time.perf_counter()
            tokens = frame_tokens(model, pixels)
            times["vision + abstractor"] = time.perf_counter() - mark
            mark = time.perf_counter()
            scores = quality_scores(
                window_label_logits(model, tokens, sliding_windows(len(frames)))
            )
            scores = scores.numpy().astype(np.float64)
            flagged = artifact_frames(scores)
            times["LLM + rule"] = time.perf_counter() - mark
            times["total"] = time.perf_counter() - start
            if not best or times["total"] < best["total"]:
                best = times
        results[path.stem] = {
            "seconds": best,
            "window_scores": scores.tolist(),
            "flagged": flagged.tolist(),
            "value": 1 - len(flagged) / len(scores),
        }
        print(
            f"ours ({attention}) {path.stem}: {results[path.stem]['value']} in {best['total']:.2f} s",
            flush=True,
        )
    return results


def frame_gflop(config) -> float:
    """GFLOP of one frame through the vision tower + abstractor (matmuls only)."""
    v, a = config.vision, config.abstractor
    tokens = (v.image_size // v.patch_size) ** 2 + 1
    vision = (
        v.num_hidden_layers
        * tokens
        * 2
        * (4 * v.hidden_size**2 + 2 * v.hidden_size * v.intermediate_size)
    )
    vision += v.num_hidden_layers * 4 * tokens**2 * v.hidden_size
    keys = tokens + a.num_learnable_queries
    abstractor = a.num_hidden_layers * (
        2 * 2 * keys * a.encoder_hidden_size * a.hidden_size
        + a.num_learnable_queries
        * 2
        * (2 * a.hidden_size**2 + 3 * a.hidden_size * a.intermediate_size)
    )
    return (vision + abstractor) / 1e9


def window_gflop(config, tokens: int) -> float:
    """GFLOP of one window of `tokens` tokens through the LLM (matmuls only; attention is small here)."""
    lang = config.language
    per_token = 2 * (4 * lang.hidden_size**2 + 3 * lang.hidden_size * lang.intermediate_size)
    return per_token * lang.num_hidden_layers * tokens / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--official", type=Path, required=True, help="OpenS2V-Nexus checkout (210eb08)"
    )
    parser.add_argument(
        "--official-python", type=Path, required=True, help="python of the official venv"
    )
    parser.add_argument("--videos", type=Path, default=VIDEOS)
    parser.add_argument("--preset", default="mid")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--out", type=Path, default=REPO / "results" / "benchmarks" / "qalign_speed_cpu.md"
    )
    args = parser.parse_args()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="qalign-speed-") as tmp:
        folder = Path(tmp)
        official = run_official(args, folder)
        ours = run_ours(args, folder, "sdpa")  # the CPU default
        from kaleido_bench.metrics.qalign import OFFICIAL_VISION_ATTENTION, QAlignConfig

        # the official's own vision attention maths (what our GPU default runs)
        ours_eager = run_ours(args, folder, OFFICIAL_VISION_ATTENTION)
        config_path = folder / f"one-align-{args.preset}" / "config.json"

        config = QAlignConfig.from_dict(json.loads(config_path.read_text()))
        prompt_tokens = sum(1 for i in official["prompt_input_ids"] if i >= 0)
    load_after = os.getloadavg()

    v, a, lang = config.vision, config.abstractor, config.language
    seq = prompt_tokens + 3 * config.tokens_per_frame
    frame_cost, window_cost = frame_gflop(config), window_gflop(config, seq)
    lines = [
        "# MotionSmoothness (Q-Align) speed: official loop vs ours (CPU, fp32, random weights)",
        "",
        f"`python benchmarks/qalign_speed.py --official CHECKOUT --official-python VENV/bin/python "
        f"--preset {args.preset} --repeats {args.repeats} --threads {args.threads}`",
        "",
        f"Model (`make_fixtures.py --preset {args.preset}`, random, one-align layout): vision "
        f"{v.num_hidden_layers} layers x {v.hidden_size} at {v.image_size}/{v.patch_size} "
        f"({(v.image_size // v.patch_size) ** 2 + 1} tokens a frame, as the release), abstractor "
        f"{a.num_hidden_layers} layers x {a.hidden_size}, {a.num_learnable_queries} queries + eos, LLM "
        f"{lang.num_hidden_layers} layers x {lang.hidden_size} (MLP {lang.intermediate_size}); "
        f"{seq} tokens a window ({prompt_tokens} prompt tokens with the test tokenizer). "
        f"{args.threads} torch threads; load average {load_before[0]:.1f} before, {load_after[0]:.1f} "
        "after (a shared 2-core machine: absolute seconds are noisy, both sides ran under the same load).",
        "",
        "Ours twice: as it runs on a CPU (vision attention sdpa) and with the official's attention "
        "maths in the vision tower (`mplug_owl2_eager`: explicit softmax, our GPU default), which "
        "isolates what sharing the frame "
        "features and the leaner loop give.",
        "",
        "| video | frames | official s/video | ours s/video | speed-up | ours, official vision attention: s/video "
        "| speed-up | official value | ours value | flagged equal | max abs diff window score |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in ours.items():
        theirs = official["videos"][name]
        diff = np.abs(np.array(result["window_scores"]) - np.array(theirs["window_scores"])).max()
        eager_diff = np.abs(np.array(ours_eager[name]["window_scores"]) - theirs["window_scores"])
        diff = max(diff, eager_diff.max())
        official_s, ours_s = min(theirs["seconds"]), result["seconds"]["total"]
        eager_s = ours_eager[name]["seconds"]["total"]
        lines.append(
            f"| {name} | {theirs['frames']} | {official_s:.2f} | {ours_s:.2f} | {official_s / ours_s:.2f}x "
            f"| {eager_s:.2f} | {official_s / eager_s:.2f}x "
            f"| {theirs['motion_smoothness']:.6f} | {result['value']:.6f} "
            f"| {result['flagged'] == theirs['flagged'] == ours_eager[name]['flagged']} | {diff:.1e} |"
        )
    lines += [
        "",
        "Where our time goes (s/video): "
        + "; ".join(
            f"{name} ({kind}): " + ", ".join(f"{k} {v:.2f}" for k, v in result["seconds"].items())
            for kind, runs in (("sdpa", ours), ("official attention", ours_eager))
            for name, result in runs.items()
        )
        + ".",
        "",
        "## What bounds the speed-up",
        "",
        "Each frame's vision tower + abstractor output is shared by the 3 windows that contain it "
        "(the official encodes 3T frames, we encode T), and both sides batch 64 windows. The LLM "
        "pass cannot be shared: every window is a different token sequence under causal "
        "attention. So the speed-up is at most (3 V + L) / (V + L), V = one frame's vision + "
        "abstractor cost, L = one window's LLM cost.",
        "",
        f"- this model: V = {frame_cost:.1f} GFLOP, L = {window_cost:.1f} GFLOP -> bound "
        f"{(3 * frame_cost + window_cost) / (frame_cost + window_cost):.2f}x",
    ]
    release = QAlignConfig.from_dict(
        {"rms_norm_eps": 1e-5}
    )  # the official defaults = one-align's shapes
    real_frame, real_window = frame_gflop(release), window_gflop(release, 223)
    real_bound = (3 * real_frame + real_window) / (real_frame + real_window)
    lines += [
        f"- the release (ViT-L/14 at 448, 6-layer abstractor, LLaMA-2-7B, about 223 tokens a window): "
        f"V = {real_frame:.0f} GFLOP, L = {real_window:.0f} GFLOP -> bound {real_bound:.2f}x",
        "",
        f"The issue's target of 3x would need the vision tower to cost far more than the LLM; with "
        f"one-align's shapes the LLM is {real_window / (real_frame + real_window):.0%} of our "
        f"remaining work, so about {real_bound:.1f}x is what sharing the frame features alone can "
        "give on compute-bound hardware. Measured speed-ups above that bound come from the rest of "
        "the official loop's per-window work: it runs the CLIP processor (transformers 4.36, numpy) "
        "on 3T frames, we preprocess T frames once, and the multimodal input loop and "
        "`MultiwayNetwork` gathers run per sample there; the second column of ours keeps the "
        "official's vision attention maths so the kernel choice is not counted as sharing. Not measured on a "
        "GPU (none in this session).",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
