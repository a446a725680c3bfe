"""Per-env action sampling (hookdiff._sampling): the right distribution, shared draws per seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hookdiff._sampling import draw, sampler


def test_inverse_cdf_draws_follow_the_probabilities():
    probs = torch.tensor([[0.1, 0.0, 0.6, 0.3]] * 20000)
    u = sampler(list(range(20000)), 20000, 1)
    got = np.bincount(draw(probs, u, np.arange(20000), 1).numpy(), minlength=4) / 20000
    np.testing.assert_allclose(got, [0.1, 0.0, 0.6, 0.3], atol=0.015)


def test_the_same_seed_gives_the_same_draws_whatever_the_batch():
    u = sampler([5, 9, 5], 3, 6)
    assert (u[0] == u[2]).all() and not (u[0] == u[1]).all()
    alone = sampler([9], 1, 6)
    np.testing.assert_array_equal(alone[0], u[1])
    # the live rows pick their own env's uniforms at the step asked for
    probs = torch.full((2, 5), 0.2)
    np.testing.assert_array_equal(
        draw(probs, u, np.array([1, 2]), 4).numpy(), np.floor(u[[1, 2], 3] * 5)
    )
    with pytest.raises(ValueError, match="one seed per env"):
        sampler([1, 2], 3, 4)
    assert isinstance(sampler(3, 2, 4), torch.Generator)
