"""Action sampling for rollouts: one shared stream, or each env its own (common random numbers).

With one seed per env, env i draws one uniform per step from its own stream and takes the action
whose cumulative probability first exceeds it (inverse-CDF sampling). An env's actions then do
not depend on the other envs of its batch, and envs given the same seed share their draws: two
conditions rolled out on the same maze with the same seed (e.g. t = −1, 0, +1) differ only where
their action probabilities differ, which makes paired comparisons of them far less noisy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["draw", "sampler"]


def sampler(seed: int | Sequence[int], n: int, max_steps: int) -> torch.Generator | np.ndarray:
    """A shared torch generator for an int ``seed``; for one seed per env, their uniforms
    ``(n, max_steps)``, row i from env i's own stream (one per step).

    Example:
        >>> u = sampler([7, 7, 8], 3, 4)
        >>> u.shape, bool((u[0] == u[1]).all()), bool((u[0] == u[2]).any())
        ((3, 4), True, False)
    """
    if isinstance(seed, int | np.integer):
        return torch.Generator().manual_seed(int(seed))
    if len(seed) != n:
        raise ValueError(f"per-env seeds need one seed per env ({n}); got {len(seed)}")
    return np.stack([np.random.default_rng(int(s)).random(max_steps) for s in seed])


def draw(probs: Tensor, gen: torch.Generator | np.ndarray, rows: np.ndarray, step: int) -> Tensor:
    """One action per row of ``probs`` (the live envs ``rows``) at ``step`` (from 1): sampled
    from the shared generator, or by inverse CDF from each env's own uniform."""
    if not isinstance(gen, np.ndarray):
        return torch.multinomial(probs, 1, generator=gen)[:, 0]
    cum = torch.cumsum(probs.double(), dim=-1)
    u = torch.as_tensor(gen[rows, step - 1], dtype=torch.float64)[:, None] * cum[:, -1:]
    return torch.clamp((cum <= u).sum(-1), max=probs.shape[-1] - 1)
