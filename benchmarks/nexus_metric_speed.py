"""NexusScore as a whole, seconds per video: the official `get_nexusscore.main()` against our metric.

The issue's target is measured here on the whole metric, on the same random-weight models and
the same videos: detector prompts, detection over the 32 sampled frames, the script's filter,
GME on every crop, the keep rule and the division. (`nexus_speed.py` times the detector stage
alone.)

Official (OpenS2V-Nexus 210eb08, run under `--official-python`, the scratch environment of
`tests/fixtures/nexus/make_fixtures.py`): `main()` itself over a folder of the videos and a case
file, with the CPU adaptations of that script's end-to-end mode (device "cpu", `GmeQwen2VL`
built without flash-attn and cast to fp32, decord read through PyAV). Its image batch for GME is
`--official-gme-batch` (default 1: on a CPU its sdpa vision branch builds one dense mask over
all patches of a batch, so larger batches only cost more; the official default 32 with
flash-attn is a GPU setting). Per-video time = from one video's `sample_video_frames` call to the
next (model loading before the first is reported apart).

Ours: `nexus_score` through its public API (`NexusScore(detector_path=, clip_path=, gme_path=,
arch=)`, `setup`, `score`) on a decoded video, with COLD caches for every video (the run's
embedding cache, GME's text cache and the label rows are cleared), so the reference and label
embeddings are paid per video as the official loop pays them (it pays them per crop).

    python benchmarks/nexus_metric_speed.py --official-python /work/scratch/nexus/venv_lite/bin/python \\
        --eval /path/to/OpenS2V-Nexus/eval --ops torchvision [--size tiny|full] [--threads 1] \\
        [--out results/benchmarks/nexus_metric_speed_cpu.md]

Models: the fixture's tiny YOLO-World v2 (`--size tiny`) or the released v2-L shape with random
weights written by the official code (`--size full`), the fixture's tiny CLIP, and the tiny GME
whose `<|endoftext|>` row is a random vector (`tests/fixtures/nexus/tiny_gme_eot`: crops are kept,
so the values are not all zero).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _paths  # noqa: F401  (tests/support on the path)
from support.nexus_fixtures import GME_KEEPING_CROPS as GME
from support.nexus_fixtures import NEXUS as FIXTURES
from support.nexus_fixtures import fixture_arch, import_official, write_full_size_checkpoint

NUM_FRAMES = 32  # get_nexusscore.py samples 32 frames
ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "opens2v" / "videos"
#: two two-subject cases (no face / human in the ids: both labels are looked for)
CASES = {
    "multiobj_1": ("faceobj_14", (("chelsea", "Cat"), ("coffee", "Cup"))),
    "multiobj_2": ("singleface_3", (("chelsea", "Cat"), ("coffee", "Cup"))),
}


def median_of_rounds(rounds: list[dict]) -> dict:
    """Per video: median wall and CPU seconds over the rounds; values and counts must not move."""
    import statistics

    merged = {"setup": statistics.median(r["setup"] for r in rounds), "videos": {}}
    for case_id, first in rounds[0]["videos"].items():
        runs = [r["videos"][case_id] for r in rounds]
        for run in runs[1:]:
            assert run["value"] == first["value"] and run["gme"] == first["gme"], case_id
        merged["videos"][case_id] = {
            **first,
            "seconds": statistics.median(r["seconds"] for r in runs),
            "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
        }
    return merged


#: FLOP of the released models, for the projection below. Detector: FlopCounterMode on our
#: YOLO-World v2-L at its 640x640 input (backbone once per frame; neck + head per prompt; the
#: official runs both per frame and prompt). GME-Qwen2-VL-7B from its config: 2 x 6.53e9 decoder
#: weights (28 layers of q/k/v/o 3584-3584/512 and a 3584-18944 SwiGLU) per token, padding
#: included (dense tensors); 2 x 0.63e9 vision weights (32 blocks of 1280, MLP 5120) per patch.
BACKBONE_FLOP = 85.6e9
NECK_HEAD_FLOP = 88.9e9
GME_TOKEN_FLOP = 2 * 6.53e9
GME_PATCH_FLOP = 2 * 0.63e9


def add_gme_counts(counts: dict, inputs: dict) -> None:
    """GME work of one forward: rows, text-decoder tokens (without and with padding), patches."""
    mask = inputs["attention_mask"]
    counts["rows"] += int(mask.shape[0])
    counts["tokens"] += int(mask.sum())
    counts["padded"] += int(mask.numel())
    if inputs.get("pixel_values") is not None:
        counts["patches"] += int(inputs["pixel_values"].shape[0])


def padded_in_batches(lengths: list[int], batch: int = 32) -> int:
    """Decoder tokens, padding included, of rows of these lengths run `batch` at a time in order
    (`get_fused_embeddings`' DataLoader: the official default on a GPU is 32)."""
    return sum(
        max(lengths[i : i + batch]) * len(lengths[i : i + batch])
        for i in range(0, len(lengths), batch)
    )


def projected_flop(side: dict, frames: int, prompts: int, official: bool) -> float:
    """FLOP per video at the released sizes from the measured counts (arithmetic, not timed)."""
    gme = side["gme"]
    padded = gme["padded32"] if official else gme["padded"]
    detector = (
        frames * prompts * (BACKBONE_FLOP + NECK_HEAD_FLOP)
        if official
        else (frames * (BACKBONE_FLOP + prompts * NECK_HEAD_FLOP))
    )
    return detector + padded * GME_TOKEN_FLOP + gme["patches"] * GME_PATCH_FLOP


def official_side(args: argparse.Namespace) -> None:
    """Runs under the official environment: `get_nexusscore.main()` on CASES, timed per video."""
    import torch

    official, helpers = import_official(args.eval, args.ops)
    torch.set_num_threads(args.threads)
    scratch = Path(tempfile.mkdtemp(prefix="nexus-metric-speed-"))
    clip_dir = scratch / "clip"
    helpers.write_tiny_clip(clip_dir)
    checkpoint = Path(args.checkpoint)
    options = [f"{k}={v}" for k, v in helpers.tiny_options().items()]
    if args.size == "full":
        write_full_size_checkpoint(
            helpers, args.eval, clip_dir, VIDEOS / "faceobj_14.mp4", checkpoint
        )
        options = []
    videos = scratch / "videos"
    videos.mkdir()
    cases = {}
    for case_id, (video, refs) in CASES.items():
        (videos / f"{case_id}.mp4").symlink_to((VIDEOS / f"{video}.mp4").resolve())
        cases[case_id] = {
            "img_paths": [f"refs/{name}.jpg" for name, _ in refs],
            "class_label": [label for _, label in refs],
            "prompt": "",
        }
    (scratch / "cases.json").write_text(json.dumps(cases))

    load = official.load_model_and_config
    official.load_model_and_config = lambda a, clip, device: load(a, clip, "cpu")
    official.generate_image_embeddings = functools.partial(
        official.generate_image_embeddings, device="cpu"
    )
    base = official.GmeQwen2VL
    batch = args.official_gme_batch

    class CpuGme(base):
        def __init__(self, path, attn_model=None, device="cpu"):
            super().__init__(path, attn_model=None, device="cpu")
            self.base.float()

        def get_image_embeddings(self, images, **kwargs):
            start = len(lengths)
            out = super().get_image_embeddings(images, batch_size=batch, **kwargs)
            counts["padded32"] += padded_in_batches(lengths[start:])
            return out

        def get_text_embeddings(self, texts, **kwargs):
            start = len(lengths)
            out = super().get_text_embeddings(texts, **kwargs)
            counts["padded32"] += padded_in_batches(lengths[start:])
            return out

        def forward(self, **inputs):
            count_gme(inputs)
            lengths.extend(inputs["attention_mask"].sum(1).tolist())
            return super().forward(**inputs)

    official.GmeQwen2VL = CpuGme
    counts = {"rows": 0, "tokens": 0, "padded": 0, "padded32": 0, "patches": 0}
    lengths = []  # decoder tokens of every row, in the order the script embeds them
    count_gme = functools.partial(add_gme_counts, counts)
    marks = []  # (video, wall, cpu, GME counts so far) at each video's start, then the end
    sample = official.sample_video_frames

    def timed_sample(path, num_frames=16):
        marks.append((Path(path).stem, time.perf_counter(), time.process_time(), dict(counts)))
        return sample(path, num_frames)

    official.sample_video_frames = timed_sample
    rounds = []
    for round_ in range(args.rounds):
        sys.argv = [
            "get_nexusscore.py",
            "--input_video_folder",
            str(videos),
            "--input_image_folder",
            str(FIXTURES),
            "--input_json_file",
            str(scratch / "cases.json"),
            "--output_json_folder",
            str(scratch / f"output{round_}"),  # main() returns at once if its output exists
            "--model_config",
            str(args.eval / helpers.CONFIG),
            "--yolo_model_path",
            str(checkpoint),
            "--yolo_clip_model_path",
            str(clip_dir),
            "--gme_model_path",
            str(GME),
            "--work-dir",
            str(scratch / "work"),
        ]
        if options:
            sys.argv += ["--cfg-options", *options]
        marks.clear()
        start = time.perf_counter()
        official.main()
        marks.append(("end", time.perf_counter(), time.process_time(), dict(counts)))
        values = json.loads((scratch / f"output{round_}" / "nexusscore.json").read_text())
        videos_done = {}
        for (case_id, wall, cpu, before), (_, next_wall, next_cpu, after) in zip(marks, marks[1:]):
            videos_done[case_id] = {
                "seconds": next_wall - wall,
                "cpu_seconds": next_cpu - cpu,
                "value": values.get(case_id, {}).get("nexus_score"),
                "gme": {k: after[k] - before[k] for k in counts},
            }
        rounds.append({"setup": marks[0][1] - start, "videos": videos_done})
    results = median_of_rounds(rounds)
    Path(args.json).write_text(json.dumps(results))


def our_side(args: argparse.Namespace, checkpoint: Path) -> dict:
    import torch

    from kaleido_bench.core.cases import Case, ReferenceImage, Role
    from kaleido_bench.core.video import decode_video
    from kaleido_bench.metrics.context import ScoringContext
    from kaleido_bench.metrics.nexus_score import NexusScore
    from kaleido_bench.metrics.yolo_world import YOLO_WORLD_V2_L

    torch.set_num_threads(args.threads)
    arch = fixture_arch() if args.size == "tiny" else YOLO_WORLD_V2_L
    context = ScoringContext.create("cpu")
    metric = NexusScore(
        detector_path=str(checkpoint),
        clip_path=str(FIXTURES / "clip_b32_tiny"),
        gme_path=str(GME),
        arch=arch,
    )
    start = time.perf_counter()
    metric.setup(context)
    setup = time.perf_counter() - start
    embedder = metric.models.embedder
    counts = {"rows": 0, "tokens": 0, "padded": 0, "patches": 0}
    model_inputs = embedder.model_inputs

    def counted_inputs(prompts, images):
        inputs = model_inputs(prompts, images)
        add_gme_counts(counts, inputs)
        return inputs

    embedder.model_inputs = counted_inputs
    cases = {
        case_id: Case(
            case_id,
            "",
            tuple(
                ReferenceImage(f"refs/{n}.jpg", FIXTURES / "refs" / f"{n}.jpg", Role.OBJECT, label)
                for n, label in refs
            ),
        )
        for case_id, (video, refs) in CASES.items()
    }
    rounds = []
    for _ in range(args.rounds):
        videos_done = {}
        for case_id, (video, _refs) in CASES.items():
            context.cache.clear()  # cold: references and labels are embedded again every video
            metric.models.__dict__.pop("_labels", None)
            embedder.text_cache.clear()
            before = dict(counts)
            start, cpu = time.perf_counter(), time.process_time()
            try:
                result = metric.score(
                    decode_video(VIDEOS / f"{video}.mp4"), cases[case_id], context
                )
            except Exception as error:  # what the engine would record for this case
                value, details = None, {"error": f"{type(error).__name__}: {error}"}
            else:
                value, details = result.value, result.details
            videos_done[case_id] = {
                "seconds": time.perf_counter() - start,
                "cpu_seconds": time.process_time() - cpu,
                "value": value,
                "gme": {k: counts[k] - before[k] for k in counts},
                **{k: details.get(k) for k in ("boxes", "crops", "kept", "error")},
            }
        rounds.append({"setup": setup, "videos": videos_done})
    return median_of_rounds(rounds)


def ratio(theirs: float, ours: float) -> str:
    return f"{theirs / ours:.1f}x" if ours else "n/a"


def report(args: argparse.Namespace, official: dict, ours: dict) -> str:
    lines = [
        f"# NexusScore, whole metric: official `get_nexusscore.main()` vs ours ({args.size} random "
        f"YOLO-World v2, tiny random GME, CPU, {args.threads} thread(s))",
        "",
        f"`python benchmarks/nexus_metric_speed.py --size {args.size} --ops {args.ops} "
        f"--threads {args.threads} --official-gme-batch {args.official_gme_batch} "
        f"--rounds {args.rounds} ...`, seconds the median of {args.rounds} round(s). Two cases of "
        "two subjects (chelsea/Cat, coffee/Cup) on the two shared videos, 32 sampled frames. "
        "Official: its `main()` (per video: decode, the detector per frame and reference, GME on "
        "every crop and, once per crop, on the reference image and on the label), GME images "
        f"{args.official_gme_batch} a batch. Ours: `nexus_score`'s `score` on a decoded video, "
        "caches cold for every video. CPU seconds are the process's own (`time.process_time`); "
        "wall seconds depend on the other jobs of this shared machine.",
        "",
        "GME rows and tokens are what each side fed GME, counted in its forward (decoder tokens "
        "without padding, image tokens included). The last column projects each side to the "
        "released models (YOLO-World v2-L, GME-Qwen2-VL-7B) from these counts: FLOP of the "
        "detector passes, of the decoder tokens as run on a GPU (padding included; the official "
        "in its default batches of 32 in script order, ours as run, batches of 32 sorted by "
        "length) and of the vision patches. Arithmetic on measured counts, not a timing: at that "
        "size GME is nearly all of the cost, and the tiny GME here makes the detector and the "
        "preprocessing weigh far more than they would.",
        "",
        "| case (video) | boxes | crops embedded | kept | official CPU s | ours CPU s | speed-up "
        "(CPU) | official wall s | ours wall s | speed-up (wall) | GME rows official / ours | "
        "GME tokens official / ours | projected TFLOP at released sizes, official / ours | "
        "official value | ours value | abs diff |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    totals = dict.fromkeys(("cpu_a", "cpu_b", "wall_a", "wall_b", "flop_a", "flop_b"), 0.0)
    notes = []
    for case_id, (video, refs) in CASES.items():
        theirs, mine = official["videos"][case_id], ours["videos"][case_id]
        a, b = theirs["value"], mine["value"]
        if a is None or b is None:  # left out: not a like-for-like timing
            notes.append(
                f"- {case_id} ({video}): official {'left it out (its try/except)' if a is None else a}; "
                f"ours {mine['error'] or b}. Official {theirs['cpu_seconds']:.2f} CPU s, ours "
                f"{mine['cpu_seconds']:.2f} CPU s until then; not in the totals."
            )
            continue
        flop_a = projected_flop(theirs, NUM_FRAMES, len(refs), official=True)
        flop_b = projected_flop(mine, NUM_FRAMES, len(refs), official=False)
        row = {
            "cpu_a": theirs["cpu_seconds"],
            "cpu_b": mine["cpu_seconds"],
            "wall_a": theirs["seconds"],
            "wall_b": mine["seconds"],
            "flop_a": flop_a,
            "flop_b": flop_b,
        }
        totals = {k: totals[k] + row[k] for k in totals}
        lines.append(
            f"| {case_id} ({video}) | {mine['boxes']} | {mine['crops']} | {mine['kept']} | "
            f"{row['cpu_a']:.2f} | {row['cpu_b']:.2f} | {ratio(row['cpu_a'], row['cpu_b'])} | "
            f"{row['wall_a']:.2f} | {row['wall_b']:.2f} | {ratio(row['wall_a'], row['wall_b'])} | "
            f"{theirs['gme']['rows']} / {mine['gme']['rows']} | "
            f"{theirs['gme']['tokens']} / {mine['gme']['tokens']} | "
            f"{flop_a / 1e12:.0f} / {flop_b / 1e12:.0f} ({ratio(flop_a, flop_b)}) | "
            f"{a} | {b} | {abs(a - b):.1e} |"
        )
    t = totals
    lines += [
        f"| **all scored** | | | | {t['cpu_a']:.2f} | {t['cpu_b']:.2f} | "
        f"{ratio(t['cpu_a'], t['cpu_b'])} | {t['wall_a']:.2f} | {t['wall_b']:.2f} | "
        f"{ratio(t['wall_a'], t['wall_b'])} | | | {t['flop_a'] / 1e12:.0f} / "
        f"{t['flop_b'] / 1e12:.0f} ({ratio(t['flop_a'], t['flop_b'])}) | | | |",
        "",
        f"Model loading apart: official {official['setup']:.2f} s, ours {ours['setup']:.2f} s (wall).",
    ]
    if notes:
        lines += ["", "Videos left out by both (not timed like for like):", *notes]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", choices=("both", "official"), default="both")
    parser.add_argument("--official-python", default=sys.executable)
    parser.add_argument(
        "--eval", type=Path, required=True, help="OpenS2V-Nexus checkout's eval/ (210eb08)"
    )
    parser.add_argument("--ops", choices=("mmcv", "torchvision"), default="mmcv")
    parser.add_argument("--size", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--official-gme-batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1, help="median of N runs of each side")
    parser.add_argument("--checkpoint", default="")
    parser.add_argument("--json", default="")
    parser.add_argument(
        "--reuse",
        type=Path,
        help="a previous run's scratch folder: reuse its official.json (and full checkpoint), "
        "run our side only",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.side == "official":
        official_side(args)
        return

    scratch = Path(tempfile.mkdtemp(prefix="nexus-metric-speed-"))
    checkpoint = (
        FIXTURES / "yolo_world_tiny.pth"
        if args.size == "tiny"
        else scratch / "yolo_world_v2_l_random.pth"
    )
    if args.reuse:  # a previous run's folder: its official.json and checkpoint
        checkpoint = args.reuse / checkpoint.name if args.size == "full" else checkpoint
        official = json.loads((args.reuse / "official.json").read_text())
        finish(args, official, our_side(args, checkpoint), args.reuse)
        return
    official_json = scratch / "official.json"
    command = [
        args.official_python,
        __file__,
        "--side=official",
        f"--eval={args.eval}",
        f"--ops={args.ops}",
        f"--size={args.size}",
        f"--threads={args.threads}",
        f"--official-gme-batch={args.official_gme_batch}",
        f"--checkpoint={checkpoint}",
        f"--json={official_json}",
        f"--rounds={args.rounds}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    official = json.loads(official_json.read_text())
    finish(args, official, our_side(args, checkpoint), scratch)


def finish(args: argparse.Namespace, official: dict, ours: dict, scratch: Path) -> None:
    """Keep both sides' raw numbers (`ours.json` beside `official.json`), then the table."""
    (scratch / "ours.json").write_text(json.dumps(ours, indent=1))
    print(f"raw numbers: {scratch}/official.json, {scratch}/ours.json")
    text = report(args, official, ours)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
