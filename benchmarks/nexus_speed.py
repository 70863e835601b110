"""NexusScore's detector stage: the official loop against ours, seconds per video, same random model.

The official `get_nexusscore.py` (OpenS2V-Nexus 210eb08) runs, for every sampled frame and every
(reference, label), `yoloworld_inference`: the reference is re-opened and re-embedded with CLIP,
the frame goes through mmyolo's pipeline and the WHOLE detector, one image at a time. Ours
(`metrics/nexus_score.py`, `metrics/yolo_world.py`) embeds each reference once, letterboxes the
32 frames once, runs the backbone once on the batch and only neck + head per prompt. Both end
with the script's NMS 0.7 / score 0.5 / top-100 filter. GME (crop similarity) is not timed: its
port is `metrics/gme.py`, benchmarked on its own.

    python benchmarks/nexus_speed.py --official-python /work/scratch/nexus/venv_lite/bin/python \\
        --eval /path/to/OpenS2V-Nexus/eval --ops torchvision [--size tiny|full] [--out results/benchmarks/nexus_speed_cpu.md]

`--official-python` is a Python with the official stack (see tests/fixtures/nexus/make_fixtures.py);
the official side runs there in a subprocess (this file with `--side official`). Models: the
fixture's tiny random YOLO-World v2 and tiny CLIP (`--size tiny`), or the released v2-L shape
with random weights written by the official code (`--size full`; CLIP stays tiny). The table
also reports the largest box / score difference between the two, which must stay within 1e-4.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _paths  # noqa: F401  (tests/support on the path)
import numpy as np
from support.nexus_fixtures import NEXUS as FIXTURES
from support.nexus_fixtures import fixture_arch, import_official, write_full_size_checkpoint

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "opens2v" / "videos"
PROMPTS = (("chelsea", "Cat"), ("coffee", "Cup"))  # a two-subject case


def official_side(args: argparse.Namespace) -> None:
    """Runs under the official environment: time `yoloworld_inference` over frames x prompts."""
    import functools

    import torch
    from PIL import Image

    official, helpers = import_official(args.eval, args.ops)

    scratch = Path(tempfile.mkdtemp(prefix="nexus-speed-"))
    clip_dir = scratch / "clip"
    helpers.write_tiny_clip(clip_dir)
    options = helpers.tiny_options() if args.size == "tiny" else {}
    checkpoint = FIXTURES / "yolo_world_tiny.pth"
    if args.size == "full":
        checkpoint = Path(args.checkpoint)
        write_full_size_checkpoint(
            helpers, args.eval, clip_dir, sorted(VIDEOS.glob("*.mp4"))[0], checkpoint
        )
    run_args = argparse.Namespace(
        model_config=str(args.eval / helpers.CONFIG),
        cfg_options=options,
        work_dir=str(scratch / "work"),
        yolo_model_path=str(checkpoint),
    )
    vision, processor, runner, txt_feats = official.load_model_and_config(
        run_args, str(clip_dir), "cpu"
    )
    official.generate_image_embeddings = functools.partial(
        official.generate_image_embeddings, device="cpu"
    )
    torch.set_num_threads(args.threads)
    results = {"videos": {}}
    for video in sorted(VIDEOS.glob("*.mp4")):
        start, cpu = time.perf_counter(), time.process_time()
        all_frames = helpers.decode_rgb(video)
        frames = all_frames[np.linspace(0, len(all_frames) - 1, 32, dtype=int)][: args.frames]
        boxes = {}
        for t, frame in enumerate(frames):
            for name, _ in PROMPTS:
                prompt_image = Image.open(FIXTURES / "refs" / f"{name}.jpg")
                pred = official.yoloworld_inference(
                    runner, vision, processor, txt_feats, Image.fromarray(frame), prompt_image
                )
                boxes[f"{name}/{t}"] = np.concatenate(
                    [pred["bboxes"], pred["scores"][:, None]], 1
                ).tolist()
        results["videos"][video.stem] = {
            "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu,
            "boxes": boxes,
        }
    Path(args.json).write_text(json.dumps(results))


def our_side(args: argparse.Namespace, checkpoint: Path) -> dict:
    import torch

    from kaleido_bench.core.cases import ReferenceImage, Role
    from kaleido_bench.core.video import decode_video
    from kaleido_bench.metrics.clip_vision import load_hf_clip_vision
    from kaleido_bench.metrics.context import ScoringContext
    from kaleido_bench.metrics.nexus_score import NEXUS_POSTPROCESS, NexusModels, script_filter
    from kaleido_bench.metrics.yolo_world import (
        YOLO_WORLD_V2_L,
        detect,
        load_yolo_world,
    )

    torch.set_num_threads(args.threads)
    arch = fixture_arch() if args.size == "tiny" else YOLO_WORLD_V2_L
    context = ScoringContext.create("cpu")
    start = time.perf_counter()
    models = NexusModels(
        load_yolo_world(context, checkpoint, arch),
        load_hf_clip_vision(context, FIXTURES / "clip_b32_tiny"),
        embedder=None,
    )
    setup = time.perf_counter() - start
    references = [
        ReferenceImage(f"refs/{n}.jpg", FIXTURES / "refs" / f"{n}.jpg", Role.OBJECT, label)
        for n, label in PROMPTS
    ]
    context.cache.clear()
    results = {"setup": setup, "videos": {}}
    for video_path in sorted(VIDEOS.glob("*.mp4")):
        start, cpu = time.perf_counter(), time.process_time()
        frames = decode_video(video_path).linspace(32)[: args.frames]
        prompts = models.prompt_embeddings(references, context.cache)
        raw = detect(
            models.detector, frames, prompts, cfg=NEXUS_POSTPROCESS, frame_batch=args.frame_batch
        )
        boxes = {}
        for (name, _), per_frame in zip(PROMPTS, raw):
            for t, dets in enumerate(per_frame):
                final = script_filter(dets)
                boxes[f"{name}/{t}"] = np.concatenate(
                    [final.boxes, final.scores[:, None]], 1
                ).tolist()
        results["videos"][video_path.stem] = {
            "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu,
            "boxes": boxes,
        }
    return results


def max_difference(a: dict, b: dict) -> float:
    worst = 0.0
    for key, rows in a.items():
        x, y = (
            np.asarray(rows, np.float64).reshape(-1, 5),
            np.asarray(b[key], np.float64).reshape(-1, 5),
        )
        if x.shape != y.shape:
            return float("inf")
        if x.size:
            worst = max(worst, float(np.abs(x - y).max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", choices=("both", "official"), default="both")
    parser.add_argument("--official-python", default=sys.executable)
    parser.add_argument(
        "--eval", type=Path, required=True, help="OpenS2V-Nexus checkout's eval/ (210eb08)"
    )
    parser.add_argument("--ops", choices=("mmcv", "torchvision"), default="mmcv")
    parser.add_argument("--size", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--checkpoint", default="")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frame-batch", type=int, default=4)
    parser.add_argument(
        "--frames", type=int, default=32, help="time only the first N of the 32 sampled frames"
    )
    parser.add_argument("--json", default="")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.side == "official":
        official_side(args)
        return

    scratch = Path(tempfile.mkdtemp(prefix="nexus-speed-"))
    checkpoint = (
        FIXTURES / "yolo_world_tiny.pth"
        if args.size == "tiny"
        else scratch / "yolo_world_v2_l_random.pth"
    )
    official_json = scratch / "official.json"
    command = [
        args.official_python,
        __file__,
        "--side",
        "official",
        "--eval",
        str(args.eval),
        "--ops",
        args.ops,
        "--size",
        args.size,
        "--checkpoint",
        str(checkpoint),
        "--threads",
        str(args.threads),
        "--json",
        str(official_json),
        "--frames",
        str(args.frames),
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    official = json.loads(official_json.read_text())
    ours = our_side(args, checkpoint)
    lines = [
        f"# NexusScore detector stage: official loop vs ours ({args.size} random YOLO-World v2, CPU, {args.threads} threads)",
        "",
        f"`python benchmarks/nexus_speed.py --size {args.size} --ops {args.ops} --frames {args.frames} ...`; 2 prompts",
        f"(chelsea/Cat, coffee/Cup), the first {args.frames} of the 32 sampled frames of each video; GME crop similarity",
        "not included. Official: `yoloworld_inference` per frame and prompt (mmyolo pipeline, mmcv ops: "
        f"{args.ops}). Ours: one CLIP pass per reference, backbone once per {args.frame_batch} frames, neck + head",
        "per prompt, post-processing from score 0.5. CPU seconds are the process's own (`time.process_time`);",
        "wall seconds depend on the other jobs of this shared machine.",
        "",
        "| video | official CPU s | ours CPU s | speed-up (CPU) | official wall s | ours wall s | max abs diff (boxes px, scores) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for video, theirs in official["videos"].items():
        mine = ours["videos"][video]
        diff = max_difference(theirs["boxes"], mine["boxes"])
        lines.append(
            f"| {video} | {theirs['cpu_seconds']:.2f} | {mine['cpu_seconds']:.2f} | "
            f"{theirs['cpu_seconds'] / mine['cpu_seconds']:.1f}x | {theirs['seconds']:.2f} | {mine['seconds']:.2f} | {diff:.2e} |"
        )
    lines += [
        "",
        f"Our one-time setup (load detector + CLIP): {ours['setup']:.2f} s wall. Machine: shared 2-core CPU.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
