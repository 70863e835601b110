"""The release's sigma grid (make_hunyuan_timesteps, shift 7) and the Euler update."""

from __future__ import annotations

import math

import torch

from kaleido_bench.kaleido.scheduler import FlowEulerScheduler, training_sigma_shift


def test_sigmas_follow_7s_over_1_plus_6s():
    scheduler = FlowEulerScheduler(50, 7.0)
    sigmas = scheduler.sigmas()
    assert sigmas.shape == (51,)
    for i in (0, 1, 25, 49, 50):
        s = 1 - i / 50
        assert math.isclose(float(sigmas[i]), 7 * s / (1 + 6 * s), rel_tol=0, abs_tol=1e-15)
    assert float(sigmas[0]) == 1.0 and float(sigmas[-1]) == 0.0
    assert torch.allclose(scheduler.timesteps(), (1000 * sigmas[:-1]).float())


def test_euler_step_adds_dsigma_times_velocity():
    scheduler = FlowEulerScheduler(4, 7.0)
    x, v = torch.ones(2, 3), torch.full((2, 3), 2.0)
    sig = scheduler.sigmas()
    out = scheduler.step(x, v, 1)
    assert torch.allclose(out, x + float(sig[2] - sig[1]) * v)


def test_euler_integrates_a_straight_path_exactly():
    # with the exact velocity (noise - x0), Euler lands on x0 whatever the grid
    x0, noise = torch.randn(5), torch.randn(5)
    scheduler = FlowEulerScheduler(7, 7.0)
    x = noise.clone()
    for i in range(7):
        x = scheduler.step(x, noise - x0, i)
    assert torch.allclose(x, x0, atol=1e-5)


def test_training_shift_formula():
    # L = 256 patches per frame: mu = 0.5
    assert math.isclose(training_sigma_shift(0.5, 256), math.exp(0.5) / (math.exp(0.5) + 1.0))
