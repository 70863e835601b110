"""The sampler of the Wan releases (VACE, Phantom-Wan) as a diffusers scheduler.

Both releases sample with Wan2.1's `FlowUniPCMultistepScheduler` (`wan/utils/fm_solvers_unipc.py`:
VACE imports it from the `wan` package, Phantom ships a copy in `phantom_wan/utils/` that differs
only in an import's line breaks), built with `shift=1` and given the real shift
in `set_timesteps` (VACE `vace/models/wan/wan_vace.py` `generate`; Phantom
`phantom_wan/subject2video.py` `generate`). diffusers' `UniPCMultistepScheduler(prediction_type=
"flow_prediction", use_flow_sigmas=True, flow_shift=s)` is its port with one difference: Wan's
grid is `linspace(sigma_max, 0, N + 1)[:-1]` with sigma_max = float32(1 - 1/1000) (the first of
its training sigmas `1 - linspace(1, 1/1000, 1000)[::-1]`), diffusers' is
`linspace(1, 1/1000, N + 1)[:-1]`. `WanReleaseUniPCScheduler` hands diffusers the release's
grid, so sigmas and integer timesteps are the release's; the update itself (order 2, bh2,
x0-prediction, lower-order final step, final sigma 0) is diffusers' code with Wan's defaults.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from diffusers import UniPCMultistepScheduler


class WanReleaseUniPCScheduler(UniPCMultistepScheduler):
    """diffusers' flow UniPC on the sigma grid of Wan's `FlowUniPCMultistepScheduler.set_timesteps`."""

    def set_timesteps(self, num_inference_steps: int | None = None, device: Any = None, sigmas: Any = None,
                      mu: float | None = None) -> None:  # fmt: skip
        if sigmas is None:
            # fm_solvers_unipc.py: sigma_max = self.sigmas[0].item() of a float32 tensor, sigma_min = 0
            sigma_max = float(np.float32(1.0 - 1.0 / self.config.num_train_timesteps))
            sigmas = np.linspace(sigma_max, 0.0, num_inference_steps + 1).copy()[:-1]
        super().set_timesteps(num_inference_steps, device=device, sigmas=sigmas, mu=mu)


def wan_release_scheduler(shift: float) -> WanReleaseUniPCScheduler:
    """The release's sampler with `shift` (VACE's default 16, Phantom-Wan's 5)."""
    return WanReleaseUniPCScheduler(
        num_train_timesteps=1000,
        solver_order=2,
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        flow_shift=float(shift),
        predict_x0=True,
        solver_type="bh2",
        lower_order_final=True,
        final_sigmas_type="zero",
    )
