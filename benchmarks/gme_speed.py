"""GmeScore speed: the official OpenS2V loop against ours, same model files, same videos.

Three steps, the first in the official environment (transformers 4.51.3; how to build it:
`tests/fixtures/gme/make_fixtures.py`), the others in the project's:

    /work/scratch/gme/venv/bin/python benchmarks/gme_speed.py official \\
        --eval /work/scratch/gme/official/eval --model tests/fixtures/gme/tiny_gme \\
        --shared ../shared --out /tmp/gme_official.json
    python benchmarks/gme_speed.py ours --model tests/fixtures/gme/tiny_gme --shared ../shared \\
        --out /tmp/gme_ours.json
    python benchmarks/gme_speed.py table /tmp/gme_official.json /tmp/gme_ours.json \\
        --out results/benchmarks/gme_speed_cpu.md

Per video, each round times what `get_gmescore.py` does for one video (lines 84-108): decode
the 32 frames (decord there, PyAV here), embed the prompt and the frames, reduce. Model loading
is timed apart. Official: `GmeQwen2VL` with sdpa and right padding (the script's flash-attn
needs CUDA), cast to fp32 on the CPU, frames at `batch_size=4` a call (its vision sdpa builds a
dense mask over the whole batch: 32 frames need 34 GB), the prompt 32 times as the script does.
Ours: `gme_score` with a fresh prompt cache each round (one case per video, as in a run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

INSTRUCTION = "Find an image that matches the given text."


def run_official(args: argparse.Namespace) -> dict:
    import torch

    sys.path.insert(0, str(args.eval))
    from get_gmescore import sample_video_frames  # official
    from utils.gme.gme_model import GmeQwen2VL  # official

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    gme = GmeQwen2VL(str(args.model), attn_model=None, device="cpu")
    gme.base.float()
    load = time.perf_counter() - start
    prompts = json.loads(args.suite.read_text())
    videos: dict = {}
    for path in sorted((args.shared / "opens2v" / "videos").glob("*.mp4")):
        seconds = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            frames = sample_video_frames(str(path), num_frames=32)
            e_query = gme.get_text_embeddings(
                texts=[prompts[path.stem]["prompt"]] * len(frames), instruction=INSTRUCTION
            )
            e_corpus = gme.get_image_embeddings(
                images=frames, is_query=False, show_progress_bar=False, batch_size=4
            )
            value = (e_query * e_corpus).sum(-1).mean().detach().item()
            seconds.append(time.perf_counter() - start)
        videos[path.stem] = {"seconds": seconds, "value": value}
    import transformers

    return {
        "who": "official",
        "load_s": load,
        "videos": videos,
        "threads": args.threads,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }


def run_ours(args: argparse.Namespace) -> dict:
    import torch
    import transformers

    from kaleido_bench.core.cases import Case
    from kaleido_bench.core.video import decode_video
    from kaleido_bench.metrics.gme_score import GmeScore

    torch.set_num_threads(args.threads)
    from kaleido_bench.metrics.context import ScoringContext

    context = ScoringContext.create(args.device)
    metric = GmeScore(model_path=str(args.model))
    start = time.perf_counter()
    metric.setup(context)
    load = time.perf_counter() - start
    prompts = json.loads(args.suite.read_text())
    videos: dict = {}
    for path in sorted((args.shared / "opens2v" / "videos").glob("*.mp4")):
        seconds = []
        for _ in range(args.rounds):
            metric.embedder.text_cache.clear()
            start = time.perf_counter()
            result = metric.score(
                decode_video(path), Case(path.stem, prompts[path.stem]["prompt"], ()), context
            )
            seconds.append(time.perf_counter() - start)
        videos[path.stem] = {"seconds": seconds, "value": result.value}
    return {
        "who": "ours",
        "load_s": load,
        "videos": videos,
        "threads": args.threads,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }


def write_table(official: dict, ours: dict, out: Path, title: str) -> str:
    lines = [
        f"# {title}",
        "",
        f"Official: OpenS2V-Nexus `eval/get_gmescore.py` + `gme_model.py` (210eb08), torch "
        f"{official['versions']['torch']}, transformers {official['versions']['transformers']}; ours: "
        f"`gme_score`, torch {ours['versions']['torch']}, transformers {ours['versions']['transformers']}. "
        f"Same model folder, fp32, {ours['threads']} torch threads, median of the rounds "
        f"({len(next(iter(ours['videos'].values()))['seconds'])} a video). Seconds a video: decode 32 "
        "frames, embed prompt and frames, reduce (model load apart).",
        "",
        "| video | official s | ours s | speed-up | official value | ours value | abs diff |",
        "|---|---|---|---|---|---|---|",
    ]
    total_o = total_u = 0.0
    for name, ref in official["videos"].items():
        mine = ours["videos"][name]
        o, u = statistics.median(ref["seconds"]), statistics.median(mine["seconds"])
        total_o, total_u = total_o + o, total_u + u
        lines.append(
            f"| {name} | {o:.2f} | {u:.2f} | {o / u:.1f}x | {ref['value']:.8f} | {mine['value']:.8f} | "
            f"{abs(ref['value'] - mine['value']):.1e} |"
        )
    lines.append(f"| **all** | {total_o:.2f} | {total_u:.2f} | {total_o / total_u:.1f}x | | | |")
    lines += [
        "",
        f"Model load: official {official['load_s']:.2f} s, ours {ours['load_s']:.2f} s.",
        "",
    ]
    text = "\n".join(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    for name in ("official", "ours"):
        p = sub.add_parser(name)
        p.add_argument("--model", type=Path, required=True)
        p.add_argument("--shared", type=Path, required=True)
        p.add_argument("--suite", type=Path, default=None)
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--rounds", type=int, default=2)
        p.add_argument("--threads", type=int, default=2)
        if name == "official":
            p.add_argument(
                "--eval", type=Path, required=True, help="OpenS2V-Nexus eval/ folder at 210eb08"
            )
        else:
            p.add_argument("--device", default="cpu")
    t = sub.add_parser("table")
    t.add_argument("official", type=Path)
    t.add_argument("ours", type=Path)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--title", default="GmeScore speed on this CPU (tiny random GME, real videos)")
    args = parser.parse_args()
    if args.step == "table":
        print(
            write_table(
                json.loads(args.official.read_text()),
                json.loads(args.ours.read_text()),
                args.out,
                args.title,
            )
        )
        return
    if args.suite is None:
        args.suite = args.shared / "opens2v" / "suites" / "Open-Domain_Eval.json"
    result = run_official(args) if args.step == "official" else run_ours(args)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "versions"}, indent=1))


if __name__ == "__main__":
    main()
