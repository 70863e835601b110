"""Bootstrap 95% intervals over cases (percentile method, a fixed seed so tables are stable).

A leaderboard value is a mean over the cases a run scored; its interval says how much that
mean moves when the same number of cases is drawn again with replacement (Efron & Tibshirani,
"An Introduction to the Bootstrap", 1993, ch. 13: percentile intervals). Every statistic of
one run uses the same resample counts `weights(n, reps, seed)`, shape (reps, n): row r says
how often each case is drawn in replicate r.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

REPS = 1000
SEED = 0
LEVEL = 0.95


def weights(n: int, reps: int = REPS, seed: int = SEED) -> np.ndarray:
    """(reps, n) draw counts; each row sums to n."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=reps).astype(np.float64)


def interval(replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of the finite replicates (NaN, NaN when there are none).

    A replicate can be NaN when it drew no case that has a value a statistic needs (an
    OpenS2V Total whose FaceSim slot is empty in that draw); it is left out."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def mean_interval(
    values: Sequence[float], reps: int = REPS, seed: int = SEED
) -> tuple[float, float]:
    """Interval of the plain mean (vectorised: one matrix product)."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0 or reps <= 0:
        return float("nan"), float("nan")
    return interval(weights(array.size, reps, seed) @ array / array.size)


def statistic_interval(
    items: Sequence[Any],
    statistic: Callable[[list[Any]], float | None],
    reps: int = REPS,
    seed: int = SEED,
) -> tuple[float, float]:
    """Interval of any statistic of a list of items (a metric's own `aggregate`), one call per
    replicate."""
    if not items or reps <= 0:
        return float("nan"), float("nan")
    counts = weights(len(items), reps, seed).astype(int)
    out = np.empty(reps)
    for r, row in enumerate(counts):
        drawn = [item for item, times in zip(items, row) for _ in range(times)]
        value = statistic(drawn)
        out[r] = np.nan if value is None else float(value)
    return interval(out)
