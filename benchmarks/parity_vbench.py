"""VBench's own subject/background_consistency code vs ours, with the SAME random weights.

No real weights can be downloaded here, so this isolates everything except the weights: one set
of random full-size weights is written in the real on-disk formats, VBench's code loads them its
way and ours loads them ours, and both score the same real videos on CPU in fp32.

- DINO ViT-B/16: `backbones.dino_vision_transformer()` random state dict (facebookresearch/dino
  key names) saved as `<hub>/checkpoints/dino_vitbase16_pretrain.pth`, where
  `torch.hub.load_state_dict_from_url` (called by dino's `hubconf.dino_vitb16`) finds it, and
  where our `load_dino_v1` reads it.
- OpenAI CLIP ViT-B/32: the official `clip.model.CLIP` randomly initialised, `convert_weights`
  applied (OpenAI's released weights are partly fp16) and saved as a TorchScript archive
  (`torch.jit.trace`), the format of OpenAI's `ViT-B-32.pt`: `clip.load(path)` reads it and,
  with `jit=False` (VBench's call), rebuilds the model with `build_model(model.state_dict())`.
  A plain state-dict file does not load through `clip.load` (see `write_weights`). The same
  tensors, converted by open_clip's own `build_model_from_openai_state_dict` and saved fp32 as
  `open_clip_model.safetensors` (the hub's format): what our `load_open_clip` reads. Every
  tensor of the two files is checked equal.
- VBench: `vbench.subject_consistency.compute_subject_consistency` and
  `vbench.background_consistency.compute_background_consistency`, entered at the top with a
  VBench full-info json listing the videos and the local-mode `submodules_list`
  (`torch.hub.load(repo_or_dir=<dino checkout>, source="local", model="dino_vitb16", ...)`,
  `clip.load(<file>)`); they read the videos with decord (`vbench.utils.load_video`). Where
  decord does not import, a PyAV-backed `decord.VideoReader` stand-in is installed instead and
  the report says so (SPEC: PyAV rgb24 frames are bit-identical to decord's).
- Ours: `SubjectConsistency` / `BackgroundConsistency` with default options on `decode_video`.

`--vbench`, `--dino` and `--clip-site` take a source folder or a bare git mirror (then `HEAD` is
extracted to a temp folder, never into this repo); nothing of theirs is copied here.

    python benchmarks/parity_vbench.py --vbench /work/.mirror/Vchitect+VBench/repo \\
        --dino /work/.mirror/facebookresearch+dino/repo --clip-site /work/.mirror/openai+CLIP/repo \\
        --decord-site /tmp/decord-site --out results/parity/vbench_random_weights.md

Prints dimension, video, VBench, ours, |diff|; exits 1 if any |diff| > --tol (1e-6).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import decord_standin

REPO = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = REPO.parent / "shared/opens2v/videos"
DEFAULT_VIDEOS = ("faceobj_14", "singleface_3")
DIMENSIONS = ("subject_consistency", "background_consistency")
DINO_FILE = "dino_vitbase16_pretrain.pth"  # the name hubconf.dino_vitb16's URL ends in


# ----------------------------------------------------------------------------- sources


def is_bare_git(path: Path) -> bool:
    return (
        (path / "HEAD").is_file() and (path / "objects").is_dir() and not (path / ".git").exists()
    )


def git_commit(path: Path) -> str:
    """HEAD of a bare mirror or a checkout; 'unknown' for a plain folder."""
    args = ["git", f"--git-dir={path}"] if is_bare_git(path) else ["git", "-C", str(path)]
    try:
        out = subprocess.run(
            [*args, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown (not a git folder)"
    return out.stdout.strip()


def source_folder(path: Path, members: list[str], scratch: Path, name: str) -> Path:
    """`path` itself, or for a bare git mirror its HEAD's `members` extracted under `scratch`.

    No `members`: the top-level `*.py` files (dino's hubconf.py, vision_transformer.py, utils.py).
    """
    if not is_bare_git(path):
        return path
    target = scratch / name
    target.mkdir(parents=True)
    if not members:  # every top-level Python file (mirrors may lack large binary blobs)
        listing = subprocess.run(
            ["git", f"--git-dir={path}", "ls-tree", "--name-only", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        members = [name for name in listing.stdout.split() if name.endswith(".py")]
    archive = subprocess.run(
        ["git", f"--git-dir={path}", "archive", "--format=tar", "HEAD", *members],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


# ----------------------------------------------------------------------------- weights


def write_weights(root: Path, seed: int) -> dict[str, Path]:
    """Random DINO ViT-B/16 and OpenAI CLIP ViT-B/32 files (CLIP in both formats, same tensors)."""
    import clip.model as clip_model
    import open_clip
    import torch
    from safetensors.torch import load_file, save_file

    from kaleido_bench.metrics import backbones

    dino_path = root / "hub" / "checkpoints" / DINO_FILE
    dino_path.parent.mkdir(parents=True)
    torch.manual_seed(seed)
    torch.save(backbones.dino_vision_transformer().state_dict(), dino_path)

    torch.manual_seed(seed + 1)
    model = clip_model.CLIP(
        embed_dim=512,
        image_resolution=224,
        vision_layers=12,
        vision_width=768,
        vision_patch_size=32,
        context_length=77,
        vocab_size=49408,
        transformer_width=512,
        transformer_heads=8,
        transformer_layers=12,
    )
    clip_model.convert_weights(model)  # fp16 where OpenAI's released files are fp16
    model.eval()
    openai_state = model.state_dict()
    openai_path = root / "clip" / "ViT-B-32.pt"
    openai_path.parent.mkdir()
    # A TorchScript archive, as OpenAI publishes ViT-B-32.pt. (A torch.save'd state dict does not
    # load: clip.load tries torch.jit.load on the open file first, then torch.load on the same
    # file object left at its end -> EOFError; openai/CLIP issue #396, PR #462, still open.)
    with torch.no_grad():
        example = (
            torch.zeros(1, 3, 224, 224, dtype=torch.float16),
            torch.zeros(1, 77, dtype=torch.long),
        )
        torch.jit.save(torch.jit.trace(model, example, check_trace=False), str(openai_path))
    archived = torch.jit.load(str(openai_path), map_location="cpu").state_dict()
    if set(archived) != set(openai_state) or any(
        not torch.equal(archived[k], v) or archived[k].dtype != v.dtype
        for k, v in openai_state.items()
    ):
        raise SystemExit("the TorchScript archive does not hold the model's tensors")

    converted = open_clip.model.build_model_from_openai_state_dict(dict(openai_state)).float()
    open_clip_path = root / "open_clip" / "open_clip_model.safetensors"
    open_clip_path.parent.mkdir()
    save_file({k: v.contiguous() for k, v in converted.state_dict().items()}, str(open_clip_path))

    stored = load_file(str(open_clip_path))
    if set(stored) != set(openai_state):
        raise SystemExit(
            f"CLIP files hold different keys: {sorted(set(stored) ^ set(openai_state))}"
        )
    unequal = [k for k in stored if not torch.equal(stored[k], openai_state[k].float())]
    if unequal:
        raise SystemExit(f"CLIP files hold different tensors: {unequal}")
    return {"dino": dino_path, "clip_openai": openai_path, "clip_open_clip": open_clip_path}


# ----------------------------------------------------------------------------- the two sides


def run_vbench(videos: list[Path], weights: dict[str, Path], dino_dir: Path, scratch: Path) -> dict:
    """VBench's compute_* functions, local mode, CPU; returns {dim: (overall, {video: value})}."""
    import torch
    from vbench.background_consistency import compute_background_consistency
    from vbench.subject_consistency import compute_subject_consistency

    info = scratch / "vbench_full_info.json"
    info.write_text(
        json.dumps(
            [
                {"prompt_en": v.stem, "dimension": list(DIMENSIONS), "video_list": [str(v)]}
                for v in videos
            ]
        )
    )
    device = torch.device("cpu")
    dino_submodules = {  # vbench.utils.init_submodules(..., local=True) for subject_consistency
        "repo_or_dir": str(dino_dir),
        "path": str(weights["dino"]),
        "model": "dino_vitb16",
        "source": "local",
        "read_frame": False,
    }
    out = {}
    timings = {}
    started = time.perf_counter()
    overall, per_video = compute_subject_consistency(str(info), device, dino_submodules)
    timings["subject_consistency"] = time.perf_counter() - started
    out["subject_consistency"] = (
        overall,
        {Path(r["video_path"]).stem: r["video_results"] for r in per_video},
    )
    started = time.perf_counter()
    # as VBench's evaluate.py calls it: autograd left on (background_consistency has no no_grad)
    overall, per_video = compute_background_consistency(
        str(info), device, [str(weights["clip_openai"]), False]
    )
    timings["background_consistency"] = time.perf_counter() - started
    out["background_consistency"] = (
        overall,
        {Path(r["video_path"]).stem: r["video_results"] for r in per_video},
    )
    return out, timings


def run_ours(videos: list[Path], weights: dict[str, Path]) -> dict:
    from kaleido_bench.bench.engine import Engine, Job
    from kaleido_bench.core.cases import Case
    from kaleido_bench.metrics.context import ScoringContext
    from kaleido_bench.metrics.vbench_consistency import BackgroundConsistency, SubjectConsistency

    metrics = {
        "subject_consistency": SubjectConsistency(model_path=str(weights["dino"])),
        "background_consistency": BackgroundConsistency(model_path=str(weights["clip_open_clip"])),
    }
    results = {name: {} for name in metrics}
    timings = dict.fromkeys(metrics, 0.0)
    with ScoringContext.create("cpu") as context:
        jobs = [Job(Case(path.stem, "", ()), path, list(metrics)) for path in videos]
        for outcome in Engine(list(metrics.values()), context).score(jobs):
            if outcome.error is not None:
                raise outcome.error
            results[outcome.metric.name][outcome.case.id] = outcome.result
            timings[outcome.metric.name] += outcome.seconds
    out = {
        name: (metrics[name].aggregate(list(per.values())), {k: r.value for k, r in per.items()})
        for name, per in results.items()
    }
    return out, timings


def sensitivity(videos: list[Path], weights: dict[str, Path], num_frames: int) -> list[tuple]:
    """How far plausible pipeline mistakes move OUR value, so the tolerance means something.

    Random weights give values near 1; this shows that the mistakes a port could make still
    move them far beyond 1e-6. On the first `num_frames` frames of each video: the value (mean
    of the terms) with our pipeline vs with one step changed; the largest |change| over videos.
    """
    import open_clip
    import torch
    from torchvision import transforms
    from torchvision.transforms import InterpolationMode

    from kaleido_bench.core.video import decode_video
    from kaleido_bench.metrics import backbones
    from kaleido_bench.metrics.backbones import (
        IMAGENET_MEAN,
        IMAGENET_STD,
        OPENAI_CLIP_MEAN,
        OPENAI_CLIP_STD,
    )
    from kaleido_bench.metrics.vbench_consistency import (
        consistency_terms,
        float_frames,
        vbench_clip_transform,
        vbench_dino_transform,
    )

    def pipeline(resize, mean, std, crop=None, requantise=False):
        steps = [resize]
        if crop:
            steps.append(transforms.CenterCrop(crop))
        if requantise:
            steps.append(transforms.Lambda(lambda x: x.round().clamp(0, 255)))
        steps += [transforms.Lambda(lambda x: x / 255.0), transforms.Normalize(mean, std)]
        return transforms.Compose(steps)

    from kaleido_bench.metrics.context import ScoringContext

    ctx = ScoringContext.create("cpu")
    dino = backbones.load_dino_v1(ctx, weights["dino"]).model
    clip_ours = backbones.load_open_clip(ctx, "ViT-B-32", weights["clip_open_clip"]).model
    clip_gelu, _, _ = open_clip.create_model_and_transforms(
        "ViT-B-32", pretrained=str(weights["clip_open_clip"])
    )  # QuickGELU not forced: exact GELU
    clip_gelu.eval()
    bilinear, bicubic = InterpolationMode.BILINEAR, InterpolationMode.BICUBIC
    variants = {
        "subject_consistency": {
            "ours": (vbench_dino_transform(), dino),
            "resize antialias=True": (
                pipeline(transforms.Resize(224, antialias=True), IMAGENET_MEAN, IMAGENET_STD),
                dino,
            ),
            "resize BICUBIC": (
                pipeline(
                    transforms.Resize(224, bicubic, antialias=False), IMAGENET_MEAN, IMAGENET_STD
                ),
                dino,
            ),
            "uint8 re-quantised after resize": (
                pipeline(
                    transforms.Resize(224, antialias=False),
                    IMAGENET_MEAN,
                    IMAGENET_STD,
                    requantise=True,
                ),
                dino,
            ),
            "square 224x224 resize": (
                pipeline(
                    transforms.Resize((224, 224), antialias=False), IMAGENET_MEAN, IMAGENET_STD
                ),
                dino,
            ),
        },
        "background_consistency": {
            "ours": (vbench_clip_transform(), clip_ours.encode_image),
            "resize antialias=True": (
                pipeline(
                    transforms.Resize(224, bicubic, antialias=True),
                    OPENAI_CLIP_MEAN,
                    OPENAI_CLIP_STD,
                    crop=224,
                ),
                clip_ours.encode_image,
            ),
            "resize BILINEAR": (
                pipeline(
                    transforms.Resize(224, bilinear, antialias=False),
                    OPENAI_CLIP_MEAN,
                    OPENAI_CLIP_STD,
                    crop=224,
                ),
                clip_ours.encode_image,
            ),
            "ImageNet mean/std": (
                pipeline(
                    transforms.Resize(224, bicubic, antialias=False),
                    IMAGENET_MEAN,
                    IMAGENET_STD,
                    crop=224,
                ),
                clip_ours.encode_image,
            ),
            "exact GELU (QuickGELU not forced)": (vbench_clip_transform(), clip_gelu.encode_image),
        },
    }
    changes: dict[tuple[str, str], float] = {}
    for path in videos:
        frames = float_frames(decode_video(path).frames[:num_frames])
        for dim, named in variants.items():
            values = {}
            for name, (transform, forward) in named.items():
                with torch.inference_mode():
                    terms = consistency_terms(forward(transform(frames)))
                values[name] = sum(terms) / len(terms)
            for name, value in values.items():
                if name != "ours":
                    change = abs(value - values["ours"])
                    changes[dim, name] = max(changes.get((dim, name), 0.0), change)
    return [(dim, name, change) for (dim, name), change in changes.items()]


def feature_diffs(video: Path, weights: dict[str, Path], dino_dir: Path) -> dict[str, float]:
    """Max |difference| of the L2-normalised features of the two sides' models on identical pixels.

    A diagnostic beside the scores: VBench's models are built again here exactly as its
    compute_* functions build them (`torch.hub.load`, `clip.load`).
    """
    import clip
    import torch
    import torch.nn.functional as F

    from kaleido_bench.core.video import decode_video
    from kaleido_bench.metrics import backbones
    from kaleido_bench.metrics.context import ScoringContext
    from kaleido_bench.metrics.vbench_consistency import (
        vbench_clip_transform,
        vbench_dino_transform,
    )

    ctx = ScoringContext.create("cpu")

    frames = decode_video(video).frames[:8]
    pixels = torch.Tensor(frames).permute(0, 3, 1, 2)
    diffs = {}
    with torch.no_grad():
        official = torch.hub.load(
            repo_or_dir=str(dino_dir),
            source="local",
            model="dino_vitb16",
            path=str(weights["dino"]),
            read_frame=False,
        ).eval()
        ours = backbones.load_dino_v1(ctx, weights["dino"]).model
        state = torch.load(weights["dino"], map_location="cpu", weights_only=True)
        if any(not torch.equal(v, state[k]) for k, v in official.state_dict().items()):
            raise SystemExit("torch.hub's dino_vitb16 did not load the random weights")
        x = vbench_dino_transform()(pixels)
        a = F.normalize(torch.cat([official(x[i : i + 1]) for i in range(len(x))]), dim=-1)
        b = F.normalize(ours(x), dim=-1)
        diffs["subject_consistency"] = float((a - b).abs().max())
        official, _ = clip.load(str(weights["clip_openai"]), device="cpu")
        ours = backbones.load_open_clip(ctx, "ViT-B-32", weights["clip_open_clip"]).model
        x = vbench_clip_transform()(pixels)
        a = F.normalize(official.encode_image(x), dim=-1)
        b = F.normalize(ours.encode_image(x), dim=-1)
        diffs["background_consistency"] = float((a - b).abs().max())
    return diffs


# ----------------------------------------------------------------------------- report


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import clip
    import decord
    import open_clip
    import torch
    import torchvision

    def dist(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed as a distribution"

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "open_clip": open_clip.__version__,
        "clip": f"{clip.__file__} (distribution openai-clip: {dist('openai-clip')})",
        "decord": f"{getattr(decord, '__version__', '?')} ({getattr(decord, '__file__', 'in memory')})",
        "numpy": importlib.import_module("numpy").__version__,
        "av": importlib.import_module("av").__version__,
    }


def table(vbench: dict, ours: dict, videos: list[Path]) -> tuple[list[tuple], float]:
    rows, worst = [], 0.0
    for dim in DIMENSIONS:
        for name in [v.stem for v in videos] + ["(frame-weighted)"]:
            if name == "(frame-weighted)":
                a, b = vbench[dim][0], ours[dim][0]
            else:
                a, b = vbench[dim][1][name], ours[dim][1][name]
            diff = abs(a - b)
            worst = max(worst, diff)
            rows.append((dim, name, a, b, diff))
    return rows, worst


def markdown_table(rows: list[tuple]) -> str:
    lines = ["| dimension | video | VBench | ours | abs diff |", "|---|---|---|---|---|"]
    lines += [f"| {d} | {v} | {a:.10f} | {b:.10f} | {diff:.3e} |" for d, v, a, b, diff in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--vbench", type=Path, required=True, help="VBench checkout or bare git mirror"
    )
    parser.add_argument(
        "--dino", type=Path, help="facebookresearch/dino checkout or mirror (hubconf.py)"
    )
    parser.add_argument(
        "--clip-site",
        type=Path,
        help="folder holding OpenAI's `clip` package, or openai/CLIP's mirror",
    )
    parser.add_argument(
        "--decord-site", type=Path, help="folder holding `decord` (pip install --target)"
    )
    parser.add_argument(
        "--videos", type=Path, nargs="+", help=f"default: {', '.join(DEFAULT_VIDEOS)} from shared/"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument(
        "--sensitivity-frames",
        type=int,
        default=8,
        help="frames per video for the mistake-sensitivity diagnostic (0: skip it)",
    )
    parser.add_argument("--out", type=Path, help="write the report (markdown) here")
    args = parser.parse_args(argv)

    videos = args.videos or [SHARED_VIDEOS / f"{name}.mp4" for name in DEFAULT_VIDEOS]
    with tempfile.TemporaryDirectory(prefix="parity-vbench-") as tmp:
        scratch = Path(tmp)
        vbench_dir = source_folder(args.vbench, ["vbench"], scratch, "vbench")
        if args.dino is None:
            raise SystemExit(
                "--dino: give facebookresearch/dino (VBench loads dino_vitb16 from it with torch.hub)"
            )
        dino_dir = source_folder(args.dino, [], scratch, "dino")
        if not (dino_dir / "hubconf.py").is_file():
            raise SystemExit(f"{dino_dir} has no hubconf.py")
        sources = {
            "VBench": f"{args.vbench} @ {git_commit(args.vbench)}",
            "DINO (hubconf.py, vision_transformer.py)": f"{args.dino} @ {git_commit(args.dino)}",
        }
        if args.clip_site is not None:
            clip_dir = source_folder(args.clip_site, ["clip"], scratch, "clip")
            sys.path.insert(0, str(clip_dir))
            sources["OpenAI clip"] = f"{args.clip_site} @ {git_commit(args.clip_site)}"
        if args.decord_site is not None:
            sys.path.insert(0, str(args.decord_site))
        sys.path.insert(0, str(vbench_dir))
        try:
            import decord  # noqa: F401

            sources["frames"] = "decord (vbench.utils.load_video, unmodified)"
        except ImportError:
            decord_standin.install()
            sources["frames"] = (
                "decord NOT importable: a PyAV rgb24 `decord.VideoReader` stand-in under vbench.utils.load_video"
            )
        try:
            import clip  # noqa: F401
        except ImportError as exc:
            raise SystemExit(
                f"OpenAI's clip package does not import ({exc}); give --clip-site"
            ) from None

        import torch

        weights = write_weights(scratch / "weights", args.seed)
        # where dino's hubconf (load_state_dict_from_url) finds dino_vitbase16_pretrain.pth
        torch.hub.set_dir(str(weights["dino"].parent.parent))
        with contextlib.redirect_stderr(io.StringIO()):  # tqdm bars
            vbench, vbench_time = run_vbench(videos, weights, dino_dir, scratch)
        ours, ours_time = run_ours(videos, weights)
        diffs = feature_diffs(videos[0], weights, dino_dir)
        mistakes = (
            sensitivity(videos, weights, args.sensitivity_frames) if args.sensitivity_frames else []
        )
        info = versions()

    rows, worst = table(vbench, ours, videos)
    passed = worst <= args.tol
    print(f"{'dimension':<24} {'video':<18} {'VBench':>14} {'ours':>14} {'|diff|':>10}")
    for dim, video, a, b, diff in rows:
        print(f"{dim:<24} {video:<18} {a:>14.10f} {b:>14.10f} {diff:>10.3e}")
    print(f"max |diff| = {worst:.3e} (tolerance {args.tol:g}): {'PASS' if passed else 'FAIL'}")
    for dim, diff in diffs.items():
        print(
            f"features, max |diff| of the L2-normalised embeddings on 8 frames, {dim}: {diff:.3e}"
        )
    for dim, name, change in mistakes:
        print(f"sensitivity, {dim}, {name}: value moves by {change:.3e}")
    for key, value in {**sources, **info}.items():
        print(f"{key}: {value}")

    if args.out:
        report = [
            "# VBench subject/background_consistency: VBench's code vs ours, same random weights",
            "",
            f"Command: `python benchmarks/parity_vbench.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
            f"(CPU, fp32, {platform.machine()}, {torch.get_num_threads()} threads, seed {args.seed}).",
            "",
            "Random full-size weights in the real formats: DINO ViT-B/16 `dino_vitbase16_pretrain.pth`",
            "(`backbones.dino_vision_transformer()` state dict, found by dino's `hubconf.dino_vitb16`",
            "through `torch.hub.load_state_dict_from_url`'s cache, and read by our `load_dino_v1`);",
            "OpenAI CLIP ViT-B/32 from the official `clip.model.CLIP` with `convert_weights`, saved as",
            "a TorchScript archive like OpenAI's `ViT-B-32.pt` (what `clip.load(path)` reads; a plain",
            "state dict hits openai/CLIP#396) and, converted by open_clip's",
            "`build_model_from_openai_state_dict`, as `open_clip_model.safetensors` (fp32) for our",
            "`load_open_clip`; every tensor of the two CLIP files checked equal.",
            "VBench side: `compute_subject_consistency` / `compute_background_consistency` entered at the",
            "top (full-info json, local-mode `submodules_list`), reading the videos itself.",
            "Ours: `SubjectConsistency` / `BackgroundConsistency`, default options (batch 32).",
            "",
            markdown_table(rows),
            "",
            f"Max |diff| {worst:.3e}, tolerance {args.tol:g}: **{'PASS' if passed else 'FAIL'}**.",
            "",
            "Diagnostic: max |difference| of the L2-normalised features of the two sides' models on the",
            f"same 8 preprocessed frames of {videos[0].name}: "
            + ", ".join(f"{dim} {diff:.3e}" for dim, diff in diffs.items())
            + ".",
            "",
            *(
                [
                    f"Sensitivity: how far one plausible pipeline mistake moves our value (first {args.sensitivity_frames}",
                    "frames of each video, largest |change| over the videos). Random weights put the values",
                    "near 1; these show the tolerance still catches such mistakes.",
                    "",
                    "| dimension | changed step | abs change |",
                    "|---|---|---|",
                    *[f"| {dim} | {name} | {change:.3e} |" for dim, name, change in mistakes],
                    "",
                ]
                if mistakes
                else []
            ),
            "Seconds (CPU): "
            + ", ".join(
                f"{dim} VBench {vbench_time[dim]:.1f} / ours {ours_time[dim]:.1f}"
                for dim in DIMENSIONS
            )
            + ".",
            "",
            "## Sources and versions",
            "",
            *[f"- {key}: {value}" for key, value in {**sources, **info}.items()],
            "",
        ]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(report))
    return 0 if passed else 1


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
