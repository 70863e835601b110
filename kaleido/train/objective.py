"""Kaleido's training objective: rectified-flow matching on the video latents (SPEC.md section 1).

For clean video latents x0 and Gaussian noise: sigma = sigmoid(N(0, 1)) shifted towards noise
by sigma' = e^mu / (e^mu + 1/sigma - 1), mu = 0.5 + (L - 256) * 0.65 / 3840 with L the latent
patches per frame; x_sigma = (1 - sigma') x0 + sigma' noise; the network sees timestep
1000 sigma' (the inference convention of `scheduler.FlowEulerScheduler.timesteps`, which the
pipeline passes unchanged) and is trained with plain L2 towards noise - x0 (the velocity the
Euler sampler integrates).

References are never noised and never dropped: they enter as clean latent frames in front of
the video, and the transformer slices their tokens off before its final layer, so its output
has the video's shape only. `flow_matching_loss` checks that shape, so a loss over reference
tokens cannot happen silently. The caption is replaced by "" with probability 0.1 (then
encoded like any prompt).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from kaleido_bench.kaleido.scheduler import training_sigma_shift


def patches_per_frame(latent_height: int, latent_width: int, patch_size: Sequence[int]) -> int:
    """L of the sigma shift: latent patches in one frame (32 x 56 = 1792 at 512x896)."""
    return (latent_height // patch_size[1]) * (latent_width // patch_size[2])


def shift_mu(patches: int) -> float:
    """mu = 0.5 + (L - 256) * 0.65 / 3840."""
    return 0.5 + (patches - 256) * 0.65 / 3840


def sample_sigmas(batch: int, patches: int, generator: torch.Generator) -> torch.Tensor:
    """(batch,) float32 sigmas: sigmoid of a standard normal, then the resolution shift."""
    u = torch.randn(batch, generator=generator, dtype=torch.float64)
    return training_sigma_shift(torch.sigmoid(u), patches).float()


def drop_captions(
    captions: Sequence[str], probability: float, generator: torch.Generator
) -> list[str]:
    """Each caption replaced by "" with `probability` (seeded by `generator`)."""
    draws = torch.rand(len(captions), generator=generator, dtype=torch.float64)
    return ["" if float(d) < probability else c for c, d in zip(captions, draws)]


def noisy_latents(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x_sigma = (1 - sigma) x0 + sigma noise, sigma per batch element."""
    s = sigma.view(-1, *([1] * (x0.ndim - 1))).to(x0.dtype)
    return (1.0 - s) * x0 + s * noise


def flow_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The velocity the network predicts: noise - x0."""
    return noise - x0


def flow_matching_loss(
    transformer: torch.nn.Module,
    x0: torch.Tensor,
    noise: torch.Tensor,
    sigma: torch.Tensor,
    text_states: torch.Tensor,
    reference_latents: torch.Tensor | None,
) -> torch.Tensor:
    """Mean squared error of the predicted velocity over the VIDEO latents only (float32).

    x0, noise: (B, C, F, H, W); sigma: (B,); text_states: umT5 states (B, L, text_dim);
    reference_latents: (B or 1, C, K, H, W) clean, or None.
    """
    x_sigma = noisy_latents(x0, noise, sigma)
    prediction = transformer(x_sigma, 1000.0 * sigma, text_states, reference_latents).sample
    target = flow_target(x0, noise)
    if prediction.shape != target.shape:
        raise RuntimeError(
            f"the transformer returned {tuple(prediction.shape)} for video latents {tuple(target.shape)}: "
            "its output must be the video tokens only (references sliced off before the final layer)"
        )
    return F.mse_loss(prediction.float(), target.float())
