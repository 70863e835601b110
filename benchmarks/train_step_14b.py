"""Seconds and peak GPU memory of one Kaleido-14B training step (bf16, gradient checkpointing).

Why: issue 17 asks what one fine-tuning step of the real 14B network costs. The step is the
trainer's (`kaleido.train.objective.flow_matching_loss`: shifted logit-normal sigma, target
noise - x0, loss on the video tokens only), then gradient clipping at 0.1 and AdamW (lr 5e-6,
betas 0.9 / 0.95, wd 1e-4), on random weights at the real size. Not included: the frozen
VAE and umT5 (latents and text states are random tensors of the right shapes: a training step
encodes them under no_grad, a small share of the time), the data loader, and FSDP.

Memory on one GPU: the release trains with float32 master weights sharded over many GPUs
(16 bytes a parameter with AdamW: 229 GB for 14.29 B, more than one GPU holds). `--param-dtype
bf16` (default) keeps weights, gradients and AdamW states in bf16 (8 bytes a parameter, about
114 GB; the time embedding, modulation tables and affine norms stay fp32 as in inference), so
the whole step fits one 141 GB H200; it measures the cost, not a recipe (an lr of 5e-6 is
below bf16's resolution for most weights). `--param-dtype fp32` uses autocast bf16 with fp32
weights (the trainer's precision) for a smaller `--layers` count. `--optimizer none` times
forward + backward only.

    # CPU smoke run (seconds): the same code at the tiny size
    python benchmarks/train_step_14b.py --size tiny --device cpu
    # GPU: the real size, 480x832, 81 frames, 3 references
    python benchmarks/train_step_14b.py --size 14b --device cuda --json train_step_14b.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import torch

from kaleido_bench.kaleido.config import KALEIDO_14B, KALEIDO_TINY
from kaleido_bench.kaleido.train.objective import (
    flow_matching_loss,
    patches_per_frame,
    sample_sigmas,
)
from kaleido_bench.kaleido.transformer import build_transformer

SIZES = {"14b": KALEIDO_14B, "tiny": KALEIDO_TINY}
GIB = 1024**3


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="14b")
    parser.add_argument("--layers", type=int, help="override the number of layers")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--param-dtype",
        choices=("bf16", "fp32"),
        default=None,
        help="weights/gradients/AdamW states (default: bf16 on GPU, fp32 on CPU)",
    )
    parser.add_argument("--height", type=int, help="pixels (default: 480 for 14b, 32 for tiny)")
    parser.add_argument("--width", type=int, help="pixels (default: 832 for 14b, 32 for tiny)")
    parser.add_argument(
        "--frames", type=int, help="video frames, 4k+1 (default: 81 for 14b, 5 for tiny)"
    )
    parser.add_argument(
        "--refs", type=int, default=3, help="reference images (one latent frame each)"
    )
    parser.add_argument(
        "--text-len", type=int, help="text tokens (default: the config's, 512 for 14b)"
    )
    parser.add_argument(
        "--steps", type=int, default=3, help="steps to run; the first is reported apart (warm-up)"
    )
    parser.add_argument("--optimizer", choices=("adamw", "none"), default="adamw")
    parser.add_argument(
        "--no-checkpointing", action="store_true", help="keep every block's activations"
    )
    parser.add_argument("--json", help="write the results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    device = torch.device(args.device)
    config = SIZES[args.size]
    transformer_config = (
        replace(config.transformer, num_layers=args.layers) if args.layers else config.transformer
    )
    big = args.size == "14b"
    height = args.height or (480 if big else 32)
    width = args.width or (832 if big else 32)
    frames = args.frames or (81 if big else 5)
    text_len = args.text_len or config.text_encoder.text_len
    param_dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[
        args.param_dtype or ("bf16" if device.type == "cuda" else "fp32")
    ]
    autocast = device.type == "cuda" and param_dtype == torch.float32
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    started = time.perf_counter()
    transformer = build_transformer(
        transformer_config, dtype=param_dtype, device=device, seed=0
    ).train()
    if not args.no_checkpointing:
        transformer.enable_gradient_checkpointing()
    optimizer = None
    if args.optimizer == "adamw":
        optimizer = torch.optim.AdamW(
            transformer.parameters(),
            lr=5e-6,
            betas=(0.9, 0.95),
            weight_decay=1e-4,
            foreach=device.type != "cuda",
        )  # per-tensor on GPU: no big temporaries
    sync()
    build_seconds = time.perf_counter() - started

    s, c = config.vae.scale_factor_spatial, transformer_config.in_channels
    latent = ((frames - 1) // config.vae.scale_factor_temporal + 1, height // s, width // s)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, c, *latent, generator=g).to(device)
    refs = torch.randn(1, c, args.refs, *latent[1:], generator=g).to(device) if args.refs else None
    text = torch.randn(1, text_len, transformer_config.text_dim, generator=g).to(
        device, param_dtype
    )
    patches = patches_per_frame(latent[1], latent[2], transformer_config.patch_size)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    held = torch.cuda.memory_allocated(device) / GIB if device.type == "cuda" else None
    step_seconds, losses = [], []
    for step in range(args.steps):
        sync()
        start = time.perf_counter()
        sigma = sample_sigmas(1, patches, g).to(device)
        noise = torch.randn(x0.shape, generator=g).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = flow_matching_loss(
                transformer,
                x0.to(param_dtype),
                noise.to(param_dtype),
                sigma,
                text,
                None if refs is None else refs.to(param_dtype),
            )
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(transformer.parameters(), 0.1)
        if optimizer is not None:
            optimizer.step()
        transformer.zero_grad(set_to_none=True)
        sync()
        step_seconds.append(time.perf_counter() - start)
        losses.append(float(loss.detach()))
        print(
            f"step {step}: {step_seconds[-1]:.2f} s, loss {losses[-1]:.4f}, grad norm {float(grad_norm):.3f}",
            file=sys.stderr,
        )

    p_t, p_h, p_w = transformer_config.patch_size
    results = {
        "size": args.size,
        "layers": transformer_config.num_layers,
        "params": sum(p.numel() for p in transformer.parameters()),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "param_dtype": str(param_dtype).replace("torch.", ""),
        "compute": "bf16" if param_dtype == torch.bfloat16 or autocast else "fp32",
        "gradient_checkpointing": not args.no_checkpointing,
        "optimizer": args.optimizer,
        "video": f"{height}x{width}x{frames} -> latent {latent[0]}x{latent[1]}x{latent[2]}",
        "tokens": (latent[0] // p_t + args.refs) * (latent[1] // p_h) * (latent[2] // p_w),
        "references": args.refs,
        "build_seconds": build_seconds,
        "first_step_seconds": step_seconds[0],
        "step_seconds": step_seconds[1:] or step_seconds,
        "losses": losses,
        "torch": torch.__version__,
    }
    if device.type == "cuda":
        results["held_before_steps_gib"] = held
        results["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / GIB
        results["peak_reserved_gib"] = torch.cuda.max_memory_reserved(device) / GIB
    print(json.dumps(results, indent=1))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
