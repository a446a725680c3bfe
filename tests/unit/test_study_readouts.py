"""The target readouts of the study (hookdiff.study.readouts.readouts) on built logits.

The margin is the log-odds linearised in the logits at the line's t = 0: recomputed here with
torch.autograd on the log-odds read from the direction probabilities, its even part is 0 on a logit
response without even part while the log-odds' is not (the softmax's curvature).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hookdiff.errors import ShapeMismatchError
from hookdiff.maze import direction_probs
from hookdiff.study.answer import READOUTS
from hookdiff.study.readouts import log_odds_gradient, readouts

TS = [-1.0, 0.0, 1.0]


def _line(seed: int, even: float) -> torch.Tensor:
    """Logits (t, maze, 15) = z0 + t·d + even·t²·q for 3 mazes, float64."""
    g = torch.Generator().manual_seed(seed)
    z0, d, q = (torch.randn(1, 3, 15, generator=g, dtype=torch.float64) for _ in range(3))
    t = torch.tensor(TS, dtype=torch.float64)[:, None, None]
    return z0 + t * d + even * t**2 * q


def _autograd_log_odds(z: torch.Tensor, target: int) -> tuple[float, torch.Tensor]:
    """l(z) = log P − log(1 − P) of the target direction, and ∂l/∂z, by autograd."""
    x = z.clone().requires_grad_(True)
    p = direction_probs(x[None])[0, target]
    lo = torch.log(p) - torch.log1p(-p)
    (w,) = torch.autograd.grad(lo, x)
    return float(lo.detach()), w


def test_margin_is_the_log_odds_linearised_at_t0_recomputed_by_autograd():
    logits, target = _line(0, 0.3), np.array([0, 3, 1])
    r = readouts(logits.numpy(), target, TS)
    assert r.shape == (len(READOUTS), 3, 3)
    m = READOUTS.index("margin")
    for i, d in enumerate(target):
        lo0, w = _autograd_log_odds(logits[1, i], int(d))
        for k in range(3):
            want = lo0 + float(w @ (logits[k, i] - logits[1, i]))
            assert r[m, k, i] == pytest.approx(want, rel=1e-10, abs=1e-12)
        assert r[READOUTS.index("logodds"), 1, i] == pytest.approx(lo0, rel=1e-10)
        grad = log_odds_gradient(logits[1, i : i + 1], torch.tensor([d]))[0]
        torch.testing.assert_close(grad, w, rtol=1e-10, atol=1e-12)


def test_margin_even_part_is_zero_on_an_odd_logit_response_and_the_log_odds_is_not():
    for even, zero in ((0.0, True), (0.5, False)):
        r = readouts(_line(1, even).numpy(), np.array([0, 1, 2]), TS)
        e = r[:, 2] + r[:, 0] - 2 * r[:, 1]  # (readout, maze)
        margin, lo = e[READOUTS.index("margin")], e[READOUTS.index("logodds")]
        if zero:
            np.testing.assert_allclose(margin, 0.0, atol=1e-12)
        else:
            assert np.abs(margin).min() > 1e-3
        assert np.abs(lo).min() > 1e-3  # the softmax's curvature, even on an odd response


def test_no_target_gives_nan_and_a_line_without_t0_is_refused():
    r = readouts(_line(2, 0.1).numpy(), np.array([0, -1, 2]), TS)
    assert np.isnan(r[:, :, 1]).all() and np.isfinite(r[:, :, [0, 2]]).all()
    with pytest.raises(ShapeMismatchError, match="t = 0"):
        readouts(_line(2, 0.1).numpy(), np.array([0, 1, 2]), [-1.0, 0.5, 1.0])


def test_target_probability_is_the_probability_of_the_target_direction_not_its_complement():
    """Hand-computed: 'left' (actions 0, 1, 2) at logit ln 8, the 12 other actions at 0:
    P(left) = 3·8 / (3·8 + 12) = 2/3, P(right) = 3 / 36 = 1/12; no target gives NaN."""
    from hookdiff.study.readouts import target_probability

    z = np.zeros((2, 15))
    z[:, :3] = np.log(8.0)
    p = target_probability(z, np.array([0, 3]))
    np.testing.assert_allclose(p, [2 / 3, 1 / 12], rtol=1e-12)
    np.testing.assert_allclose(p, direction_probs(torch.as_tensor(z))[[0, 1], [0, 3]].numpy())
    assert np.isnan(target_probability(z, np.array([0, -1]))[1])
    # readouts' p agrees (the same sign)
    r = readouts(np.stack([z, z, z]), np.array([0, 3]), TS)
    np.testing.assert_allclose(r[READOUTS.index("p"), 1], [2 / 3, 1 / 12], rtol=1e-12)
