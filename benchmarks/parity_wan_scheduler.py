"""Our Wan-release sampler (`baselines/wan/scheduler.py`) against the release's own scheduler file.

VACE and Phantom-Wan sample with Wan2.1's `FlowUniPCMultistepScheduler`
(`wan/utils/fm_solvers_unipc.py` in Wan2.1, which VACE imports; a copy in Phantom's
`phantom_wan/utils/`). This script imports that file from a checkout you give it (nothing of it ships here),
runs both schedulers over the same trajectory (same start, the same made-up velocity field) and
reports the differences in timesteps, sigmas and final sample. Example:

    python benchmarks/parity_wan_scheduler.py --official /path/to/Phantom --shift 5 --steps 50
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import torch

from kaleido_bench.baselines.wan.scheduler import wan_release_scheduler

CANDIDATES = ("phantom_wan/utils/fm_solvers_unipc.py", "wan/utils/fm_solvers_unipc.py")


def load_official(checkout: Path):
    for relative in CANDIDATES:
        path = checkout / relative
        if path.is_file():
            spec = importlib.util.spec_from_file_location("official_fm_solvers_unipc", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module.FlowUniPCMultistepScheduler, path
    raise SystemExit(f"none of {', '.join(CANDIDATES)} in {checkout}")


def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A smooth, deterministic stand-in for the network's output."""
    return torch.sin(x * 0.7 + float(t) / 250.0) - 0.3 * x


def trajectory(
    scheduler, steps: int, shift: float | None, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if shift is None:
        scheduler.set_timesteps(steps)
    else:
        scheduler.set_timesteps(steps, shift=shift)
    for t in scheduler.timesteps:
        x = scheduler.step(velocity(x, t), t, x, return_dict=False)[0]
    return scheduler.timesteps.clone(), scheduler.sigmas.clone(), x


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--official", type=Path, required=True, help="checkout of Phantom-video/Phantom or Wan2.1"
    )
    parser.add_argument(
        "--shift", type=float, action="append", help="shifts to compare (default 5 and 16)"
    )
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument(
        "--label", help="how to name the checkout in the report (e.g. its repository and commit)"
    )
    args = parser.parse_args(argv)
    official_cls, path = load_official(args.official)
    report: dict = {"official_file": f"{args.label}: {path.relative_to(args.official)}" if args.label else str(path),
                    "steps": args.steps, "runs": []}  # fmt: skip
    for shift in args.shift or [5.0, 16.0]:
        start = torch.randn(1, 16, 5, 8, 8, generator=torch.Generator().manual_seed(0))
        official = official_cls(num_train_timesteps=1000, shift=1, use_dynamic_shifting=False)
        t_ref, s_ref, x_ref = trajectory(official, args.steps, shift, start.clone())
        t_our, s_our, x_our = trajectory(
            wan_release_scheduler(shift), args.steps, None, start.clone()
        )
        report["runs"].append({
            "shift": shift,
            "timesteps_equal": bool(torch.equal(t_ref.cpu(), t_our.cpu())),
            "max_abs_sigma_diff": float((s_ref.float() - s_our.float()).abs().max()),
            "max_abs_sample_diff": float((x_ref - x_our).abs().max()),
            "sample_abs_mean": float(x_ref.abs().mean()),
        })  # fmt: skip
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
