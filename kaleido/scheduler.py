"""Kaleido's sampler: rectified flow, Euler steps on a time-shifted sigma grid.

The release's `make_hunyuan_timesteps` (SPEC.md section 1): with s = 1 - i/N, i = 0..N,
sigma_i = shift * s / (1 + (shift - 1) * s) (shift 7: 7s / (1 + 6s)), N + 1 values from 1 down
to 0; the network sees timestep 1000 * sigma_i and returns the velocity v (noise - x0), and
x <- x + (sigma_{i+1} - sigma_i) * v. diffusers' `FlowMatchEulerDiscreteScheduler` builds a
slightly different grid (it stops at 1/1000 before appending 0), so this one is written out.
The training-time shift of sampled sigmas is here too, for completeness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FlowEulerScheduler:
    """The sigma grid and the Euler update; stateless, so a pipeline can share it."""

    num_steps: int = 50
    shift: float = 7.0

    def sigmas(self) -> torch.Tensor:
        """(num_steps + 1,) float64, sigma_0 = 1, sigma_N = 0."""
        s = 1.0 - torch.arange(self.num_steps + 1, dtype=torch.float64) / self.num_steps
        return self.shift * s / (1.0 + (self.shift - 1.0) * s)

    def timesteps(self) -> torch.Tensor:
        """(num_steps,) network timesteps 1000 * sigma_i, float32."""
        return (1000.0 * self.sigmas()[:-1]).float()

    def step(self, sample: torch.Tensor, velocity: torch.Tensor, index: int) -> torch.Tensor:
        """One Euler step from sigma_index to sigma_{index+1}, computed in float32."""
        sigmas = self.sigmas()
        dt = float(sigmas[index + 1] - sigmas[index])
        return (sample.float() + dt * velocity.float()).to(sample.dtype)


def training_sigma_shift(sigma: torch.Tensor, patches_per_frame: int) -> torch.Tensor:
    """sigma' = e^mu / (e^mu + 1/sigma - 1), mu = 0.5 + (L - 256) * 0.65 / 3840 (the release's training)."""
    mu = 0.5 + (patches_per_frame - 256) * 0.65 / 3840
    return math.exp(mu) / (math.exp(mu) + 1.0 / sigma - 1.0)
