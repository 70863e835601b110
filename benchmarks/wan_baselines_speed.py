"""Seconds per video and peak GPU memory of VACE-1.3B, Phantom-1.3B and Kaleido-14B, whole pipelines.

Why: a benchmark run costs (models x cases x seeds) videos; this says what one video of each
baseline costs next to Kaleido on the same GPU, at the same size, with the same references.
Every component is built at its REAL size with random weights (no download needed): the DiT
(VACE: `WanVACETransformer3DModel` with VACE blocks; Phantom: Wan2.1-T2V-1.3B's
`WanTransformer3DModel`; Kaleido: the 14B `KaleidoTransformer3DModel`), Wan's VAE and umT5-XXL
(5.7 B parameters), each in the dtype its pipeline uses (DiT and umT5 bf16; VAE fp32 for VACE
and Phantom as their releases, bf16 for Kaleido as its release). Prompts go through a byte-level
stand-in tokenizer (umT5 always runs on 512 padded tokens, so the cost is the same). Each video
runs the model's own pipeline code: `baselines/wan/vace.py` (diffusers' `WanVACEPipeline`),
`baselines/wan/phantom.py`, `kaleido/pipeline.py`.

A full video is 50 sampling steps. `--measure-steps 2,4` instead times videos of 2 and 4 steps
and extrapolates linearly (fixed cost + 50 x per-step cost; printed as such), which fits a
short GPU lease; peak memory does not depend on the number of steps. Examples:

    # GPU, the real sizes at 480x832x81, 2 references, extrapolated from 2- and 4-step videos
    python benchmarks/wan_baselines_speed.py --device cuda --measure-steps 2,4 --json out.json
    # CPU check of the script itself: tiny random models, tiny video
    python benchmarks/wan_baselines_speed.py --tiny --device cpu --height 32 --width 32 --frames 5 --steps 2
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

MODELS = ("vace-1.3b", "phantom-1.3b", "kaleido-14b")
PROMPT = "A woman in an orange space suit holds a cup of coffee and smiles at the camera."


def references(count: int) -> list[Image.Image]:
    """Real photos shipped in scikit-image (astronaut, coffee, chelsea), as the mini suite uses."""
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea()]
    return [Image.fromarray(photos[i % len(photos)]) for i in range(count)]


def _umt5(tiny: bool, device: torch.device, dtype: torch.dtype):
    from transformers import UMT5EncoderModel

    from kaleido_bench.kaleido.config import KALEIDO_TINY, TextEncoderConfig

    config = KALEIDO_TINY.text_encoder if tiny else TextEncoderConfig()
    with torch.device(device):
        model = UMT5EncoderModel(config.umt5_config())
    return model.to(dtype).eval(), config


def _vae(tiny: bool, device: torch.device, dtype: torch.dtype):
    from kaleido_bench.kaleido.config import KALEIDO_TINY, VaeConfig
    from kaleido_bench.kaleido.vae import build_vae

    with torch.device(device):
        model = build_vae(KALEIDO_TINY.vae if tiny else VaeConfig(), seed=1)
    for param in model.parameters():  # the whole VAE in one dtype, as the pipelines load it
        param.data = param.data.to(dtype)
    return model.eval()


def build_vace(
    tiny: bool, device: torch.device, dtype: torch.dtype
) -> Callable[[int, int, int, int, list], np.ndarray]:
    from diffusers import WanVACEPipeline, WanVACETransformer3DModel

    from kaleido_bench.baselines.wan import vace
    from kaleido_bench.baselines.wan.scheduler import wan_release_scheduler
    from kaleido_bench.kaleido.transformer import parameter_dtype

    kwargs = vace.tiny_transformer_kwargs() if tiny else vace.release_transformer_kwargs("1.3B")
    torch.manual_seed(0)
    with torch.device(device):
        transformer = WanVACETransformer3DModel(**kwargs)
    for (
        name,
        param,
    ) in transformer.named_parameters():  # what from_pretrained(torch_dtype=bf16) keeps in fp32
        param.data = param.data.to(parameter_dtype(name, dtype))
    text_encoder, text_config = _umt5(tiny, device, dtype)
    vae = _vae(tiny, device, torch.float32)
    pipe = WanVACEPipeline(
        vace.tiny_tokenizer(), text_encoder, vae, wan_release_scheduler(16.0), transformer.eval()
    )
    pipe.set_progress_bar_config(disable=True)

    def run(height: int, width: int, frames: int, steps: int, refs: list) -> np.ndarray:
        return vace.generate(pipe, PROMPT, refs, height=height, width=width, num_frames=frames, num_steps=steps,
                             guidance_scale=5.0, seed=0, max_sequence_length=text_config.text_len)  # fmt: skip

    return run


def build_phantom(tiny: bool, device: torch.device, dtype: torch.dtype) -> Callable:
    from kaleido_bench.baselines.wan import phantom
    from kaleido_bench.kaleido.text_encoder import ByteTokenizer, UMT5TextEncoder

    config = phantom.PHANTOM_TINY if tiny else phantom.PHANTOM_1_3B
    transformer = phantom.build_wan_transformer(
        config.transformer, dtype=dtype, device=device, seed=0
    )
    umt5, text_config = _umt5(tiny, device, dtype)
    text_encoder = UMT5TextEncoder(umt5, ByteTokenizer(), text_config.text_len)
    pipe = phantom.PhantomPipeline(
        transformer, _vae(tiny, device, torch.float32), text_encoder, config, device
    )

    def run(height: int, width: int, frames: int, steps: int, refs: list) -> np.ndarray:
        return pipe(
            PROMPT, refs, height=height, width=width, num_frames=frames, num_steps=steps, seed=0
        )

    return run


def build_kaleido(tiny: bool, device: torch.device, dtype: torch.dtype) -> Callable:
    from kaleido_bench.kaleido.config import KALEIDO_14B, KALEIDO_TINY
    from kaleido_bench.kaleido.pipeline import KaleidoPipeline
    from kaleido_bench.kaleido.text_encoder import ByteTokenizer, UMT5TextEncoder
    from kaleido_bench.kaleido.transformer import build_transformer

    config = KALEIDO_TINY if tiny else KALEIDO_14B
    transformer = build_transformer(config.transformer, dtype=dtype, device=device, seed=0)
    umt5, text_config = _umt5(tiny, device, dtype)
    text_encoder = UMT5TextEncoder(umt5, ByteTokenizer(), text_config.text_len)
    vae_dtype = torch.float32 if device.type == "cpu" else torch.bfloat16  # the release: bf16
    pipe = KaleidoPipeline(transformer, _vae(tiny, device, vae_dtype), text_encoder, config, device)

    def run(height: int, width: int, frames: int, steps: int, refs: list) -> np.ndarray:
        return pipe(
            PROMPT, refs, height=height, width=width, num_frames=frames, num_steps=steps, seed=0
        )

    return run


BUILDERS = {"vace-1.3b": build_vace, "phantom-1.3b": build_phantom, "kaleido-14b": build_kaleido}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_video(
    run: Callable, device: torch.device, steps: int, args
) -> tuple[float, float | None, tuple]:
    """Seconds for one video of `steps` steps, and the peak GPU memory while it ran (GiB)."""
    refs = references(args.refs)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = time.perf_counter()
    frames = run(args.height, args.width, args.frames, steps, refs)
    _sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 1024**3 if device.type == "cuda" else None
    return seconds, peak, frames.shape


def measure(name: str, args, device: torch.device, dtype: torch.dtype) -> dict:
    start = time.perf_counter()
    run = BUILDERS[name](args.tiny, device, dtype)
    _sync(device)
    out: dict = {"model": name, "build_seconds": round(time.perf_counter() - start, 2)}
    if device.type == "cuda":
        out["resident_gib"] = round(torch.cuda.memory_allocated(device) / 1024**3, 2)
    for _ in range(
        args.warmup
    ):  # kernels, allocator and cuDNN autotuning, at the smallest step count
        run(args.height, args.width, args.frames, 1, references(args.refs))
    if args.measure_steps:
        (a, b) = args.measure_steps
        t_a, peak_a, shape = time_video(run, device, a, args)
        t_b, peak_b, _ = time_video(run, device, b, args)
        per_step = (t_b - t_a) / (b - a)
        fixed = t_a - a * per_step
        out.update({"measured": {str(a): round(t_a, 3), str(b): round(t_b, 3)}, "seconds_per_step": round(per_step, 4),
                    "fixed_seconds": round(fixed, 3), "seconds_per_video": round(fixed + args.steps * per_step, 2),
                    "seconds_per_video_is": f"extrapolated from {a}- and {b}-step videos"})  # fmt: skip
        peak = max(p for p in (peak_a, peak_b) if p is not None) if device.type == "cuda" else None
    else:
        seconds, peak, shape = time_video(run, device, args.steps, args)
        out.update({"seconds_per_video": round(seconds, 2), "seconds_per_video_is": "measured"})
    out["frames"] = list(shape)
    if peak is not None:
        out["peak_gib"] = round(peak, 2)
    del run
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def markdown(report: dict) -> str:
    head = (f"{report['device']}, {report['dtype']}, {report['video']}, {report['refs']} reference(s), "
            f"{report['steps']} steps{' (tiny random models)' if report['tiny'] else ' (real sizes, random weights)'}")  # fmt: skip
    lines = [
        head,
        "",
        "| model | s / video | how | s / step | peak GiB | resident GiB |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["results"]:
        lines.append(f"| {row['model']} | {row['seconds_per_video']} | {row['seconds_per_video_is']} | "
                     f"{row.get('seconds_per_step', '')} | {row.get('peak_gib', '')} | {row.get('resident_gib', '')} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--tiny", action="store_true", help="tiny random models (a CPU check of this script)"
    )
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument(
        "--refs", type=int, default=2, help="reference images per video (VACE takes up to 3)"
    )
    parser.add_argument(
        "--steps", type=int, default=50, help="sampling steps of the reported video"
    )
    parser.add_argument("--measure-steps", type=lambda s: tuple(int(x) for x in s.split(",")),
                        help="time videos of these two step counts and extrapolate to --steps, e.g. 2,4")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=1, help="untimed 1-step videos before timing")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--markdown", type=Path, help="write a markdown table here")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cpu" and not args.tiny:
        parser.error(
            "the real sizes need a GPU (umT5-XXL alone is 5.7 B parameters); use --tiny on a CPU"
        )
    if args.measure_steps and (
        len(args.measure_steps) != 2 or args.measure_steps[0] >= args.measure_steps[1]
    ):
        parser.error("--measure-steps takes two increasing step counts, e.g. 2,4")
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    report = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dtype": str(dtype).replace("torch.", ""),
        "video": f"{args.height}x{args.width}x{args.frames}",
        "refs": args.refs,
        "steps": args.steps,
        "tiny": args.tiny,
        "torch": torch.__version__,
        "results": [],
    }
    for name in args.models.split(","):
        if name not in BUILDERS:
            parser.error(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
        report["results"].append(measure(name, args, device, dtype))
        print(json.dumps(report["results"][-1]), flush=True)
    print(markdown(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(report) + "\n")
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
