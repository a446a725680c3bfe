"""Matching a coefficient to an effect: the smallest t at which a push reaches a given size.

Controls are compared with a vector at equal *effect*, not equal norm: a random direction is
scaled until its odd effect O equals the vector's, a later layer's vector until it moves the
readout as much as the steering layer's. :func:`matched_t` is that search, for any effect
function of t.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["matched_t"]


def matched_t(
    effect: Callable[[Sequence[float]], np.ndarray],
    target: float,
    t_max: float,
    steps: int,
    grid: int = 16,
    rtol: float = 1e-5,
) -> float:
    """The smallest t in (0, t_max] where ``effect`` reaches ``target`` (to within the bisection's
    precision); NaN if no grid point reaches it.

    ``effect`` maps several t to their effects at once. The first of ``grid`` evenly spaced t
    (one batched call) that reaches ``target`` closes a bracket [lo, hi] with ``effect(lo) <
    target <= effect(hi)`` (lo = 0, where there is no effect, at the start), which is then halved
    ``steps`` times; the returned ``hi`` reaches the target and lies within
    ``t_max / grid / 2**steps`` of a crossing. The grid keeps a non-monotone effect (one that
    overshoots and falls back) from being matched at a later crossing. ``target`` counts as
    reached within ``rtol`` (float32 rounding differs between batches).

    Example:
        >>> round(matched_t(lambda ts: np.square(ts), 2.0, 4.0, 20), 4)
        1.4142
    """
    goal = target * (1.0 - rtol)
    ts = np.linspace(0.0, float(t_max), grid + 1)[1:]
    hit = np.flatnonzero(np.asarray(effect(ts)) >= goal)
    if not hit.size:
        return float("nan")
    hi = float(ts[hit[0]])
    lo = float(ts[hit[0] - 1]) if hit[0] else 0.0
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if effect([mid])[0] >= goal else (mid, hi)
    return hi
