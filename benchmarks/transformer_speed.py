"""Forward time and peak memory of the Kaleido DiT against diffusers' `WanTransformer3DModel`.

Why: Kaleido is Wan2.1 plus reference tokens; on a video-only input our transformer must cost
what diffusers' costs (target ratio ours / diffusers <= 1.05), and each reference adds one latent
frame of tokens (1,792 at 512x896), so its cost should track the token count.

Both models share ONE set of random weights (diffusers' is built on the meta device and
assigned our tensors), so the real 14B shape fits twice on one GPU. Examples:

    # CPU, small shape (a few seconds)
    python benchmarks/transformer_speed.py --config small
    # GPU, the real 14B shape in bf16 at 512x896x81 with 0-3 references, plus one sampling step
    python benchmarks/transformer_speed.py --config 14b --device cuda --dtype bf16 \\
        --height 512 --width 896 --frames 81 --step
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace

import torch

from kaleido_bench.kaleido.config import KALEIDO_14B, KALEIDO_TINY, TransformerConfig
from kaleido_bench.kaleido.transformer import build_transformer

CONFIGS = {
    "tiny": KALEIDO_TINY.transformer,
    # the 14B block (head dim 128) at a width and depth a laptop CPU runs in seconds
    "small": replace(
        KALEIDO_14B.transformer, num_layers=2, num_attention_heads=4, ffn_dim=1536, text_dim=256
    ),
    "14b": KALEIDO_14B.transformer,
}
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def shared_diffusers_model(ours, config: TransformerConfig):
    """diffusers' WanTransformer3DModel holding the very same parameter tensors as `ours`."""
    from diffusers import WanTransformer3DModel

    with torch.device("meta"):
        wan = WanTransformer3DModel(**config.diffusers_kwargs())
    wan.load_state_dict(ours.state_dict(), strict=True, assign=True)
    # Wan's own RoPE buffers were created on meta: rebuild them on the device
    from diffusers.models.transformers.transformer_wan import WanRotaryPosEmbed

    device = next(ours.parameters()).device
    wan.rope = WanRotaryPosEmbed(
        config.attention_head_dim, config.patch_size, config.rope_max_seq_len
    ).to(device)
    return wan.eval()


def measure(
    candidates: dict, device: torch.device, warmup: int, repeats: int
) -> dict[str, dict[str, float]]:
    """Median and min seconds of each `fn()`, timed round-robin (so load drift hits all alike),
    and on CUDA the peak memory each allocates above what was held before it ran."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    out: dict[str, dict[str, float]] = {name: {} for name in candidates}
    for name, fn in candidates.items():
        for _ in range(warmup):
            fn()
        sync()
        if device.type == "cuda":
            torch.cuda.empty_cache()
            base = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            fn()
            sync()
            out[name]["peak_gib"] = (torch.cuda.max_memory_allocated(device) - base) / 1024**3
            out[name]["total_peak_gib"] = torch.cuda.max_memory_allocated(device) / 1024**3
    times: dict[str, list[float]] = {name: [] for name in candidates}
    cpu_times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
            cpu_times[name].append(time.process_time() - cpu_start)
    for name, values in times.items():
        out[name]["seconds"] = statistics.median(values)
        out[name]["min_seconds"] = min(values)
        if (
            device.type == "cpu"
        ):  # CPU time of this process: less sensitive to other processes' load
            out[name]["cpu_seconds"] = statistics.median(cpu_times[name])
    return out


def compare_outputs(ours, wan, video, timestep, text, refs) -> dict[str, float | bool]:
    """Same weights, same input: ours with no references must give diffusers' output; with 3 it must stay finite."""
    expected = wan(video, timestep, text).sample.float()
    got = ours(video, timestep, text, None).sample.float()
    with_refs = ours(video, timestep, text, refs).sample.float()
    return {
        "max_abs_diff_0ref_vs_diffusers": float((got - expected).abs().max()),
        "output_abs_mean": float(expected.abs().mean()),
        "finite_3ref": bool(torch.isfinite(with_refs).all()),
        "shape_3ref_equals_video": tuple(with_refs.shape) == tuple(expected.shape),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="small")
    parser.add_argument(
        "--layers", type=int, help="override the number of layers (e.g. to fit memory)"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--dtype", choices=sorted(DTYPES), default=None, help="default: bf16 on GPU, fp32 on CPU"
    )
    parser.add_argument(
        "--height", type=int, default=128, help="video height in pixels (latent = /8)"
    )
    parser.add_argument("--width", type=int, default=224)
    parser.add_argument(
        "--frames", type=int, default=17, help="video frames (latent = (F-1)/4 + 1)"
    )
    parser.add_argument("--refs", default="0,1,2,3", help="reference counts to time")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--step", action="store_true", help="also time one sampling step (batched CFG, 3 refs)"
    )
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads (1 gives steadier CPU timings)"
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also report max |ours - diffusers| with 0 references and whether 3-reference outputs are finite",
    )
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = DTYPES[args.dtype or ("bf16" if device.type == "cuda" else "fp32")]
    config = CONFIGS[args.config]
    if args.layers:
        config = replace(config, num_layers=args.layers)
    torch.manual_seed(0)
    ours = build_transformer(config, dtype=dtype, device=device, seed=0)
    wan = shared_diffusers_model(ours, config)

    latent = (args.frames - 1) // 4 + 1, args.height // 8, args.width // 8
    p_t, p_h, p_w = config.patch_size
    tokens_per_frame = (latent[1] // p_h) * (latent[2] // p_w)
    g = torch.Generator(device="cpu").manual_seed(0)
    video = torch.randn(args.batch, config.in_channels, *latent, generator=g).to(device, dtype)
    text = torch.randn(args.batch, 512, config.text_dim, generator=g).to(device, dtype)
    timestep = torch.full((args.batch,), 500.0, device=device)
    refs = torch.randn(1, config.in_channels, 3, *latent[1:], generator=g).to(device, dtype)

    results: dict = {
        "config": args.config,
        "layers": config.num_layers,
        "params": sum(p.numel() for p in ours.parameters()),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dtype": str(dtype).replace("torch.", ""),
        "video": f"{args.height}x{args.width}x{args.frames} -> latent {latent[0]}x{latent[1]}x{latent[2]}",
        "video_tokens": latent[0] // p_t * tokens_per_frame,
        "tokens_per_reference": tokens_per_frame,
        "torch": torch.__version__,
        "runs": {},
    }
    with torch.inference_mode():
        candidates = {"diffusers": lambda: wan(video, timestep, text)}
        ref_counts = [int(x) for x in args.refs.split(",") if x.strip()]
        for k in ref_counts:
            r = refs[:, :, :k] if k else None
            candidates[f"ours_{k}ref"] = lambda r=r: ours(video, timestep, text, r)
        if args.step:
            # one sampling step as the pipeline runs it: CFG batched (2), text embedded once outside
            embedded = ours.embed_text(torch.cat([text[:1], text[:1]]))
            x2, t2 = video[:1].expand(2, -1, -1, -1, -1), timestep[:1].expand(2)
            candidates["sampling_step_3ref_cfg"] = lambda: ours(
                x2, t2, embedded, refs, text_embedded=True
            )
        runs = results["runs"] = measure(candidates, device, args.warmup, args.repeats)
        if args.compare:
            results["check"] = compare_outputs(ours, wan, video, timestep, text, refs)
        for k in ref_counts:
            runs[f"ours_{k}ref"]["tokens"] = results["video_tokens"] + k * tokens_per_frame
        for stat in ("seconds", "min_seconds", "cpu_seconds"):
            if stat not in runs["diffusers"]:
                continue
            if "ours_0ref" in runs:
                results[f"ratio_ours_over_diffusers_{stat}"] = (
                    runs["ours_0ref"][stat] / runs["diffusers"][stat]
                )
                for k in ref_counts:
                    if k:
                        results[f"added_cost_{k}ref_{stat}"] = (
                            runs[f"ours_{k}ref"][stat] / runs["ours_0ref"][stat] - 1
                        )
    print(json.dumps(results, indent=1))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
