"""hookdiff.vectors without procgen: activations of given observations, batching, errors."""

from __future__ import annotations

import pytest
import torch

from hookdiff.agent import ImpalaPolicy
from hookdiff.errors import ShapeMismatchError, UnknownHookError
from hookdiff.vectors import STEERING_HOOK, activations_from_obs


@pytest.fixture(scope="module")
def policy():
    torch.manual_seed(0)
    return ImpalaPolicy(scale=1).eval()


@pytest.mark.parametrize("hook", [STEERING_HOOK, "embedder.block3.maxpool_out", "embedder.fc_out"])
def test_activations_equal_run_with_cache(policy, hook):
    obs = torch.rand(5, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    _, cache = policy.run_with_cache(obs)
    got = activations_from_obs(policy, obs, hook, batch_size=2)  # three batches: 2, 2, 1
    torch.testing.assert_close(got, cache[hook], rtol=1e-5, atol=1e-6)


def test_unknown_hook_names_the_closest(policy):
    with pytest.raises(UnknownHookError, match="block2.res1.resadd_out"):
        activations_from_obs(policy, torch.rand(1, 3, 64, 64), "embedder.block2.res1.resad_out")


def test_no_observations_is_an_error(policy):
    with pytest.raises(ShapeMismatchError, match="no observations"):
        activations_from_obs(policy, torch.rand(0, 3, 64, 64), STEERING_HOOK)
