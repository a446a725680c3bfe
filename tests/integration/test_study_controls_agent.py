"""The control matched in effect, measured on the shipped agent and real procgen mazes
(hookdiff.study.controls): the matched t reaches the vector's odd part, and blocks agree."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def measured():
    from hookdiff.agent import load_default
    from hookdiff.study import quick_config
    from hookdiff.study.controls import random_matched_effect
    from hookdiff.study.inputs import study_mazes, study_vectors

    policy = load_default()
    config = dataclasses.replace(
        quick_config(), n_mazes=3, random_matched_draws=2, random_matched_steps=10
    )
    mazes = study_mazes(config)
    vectors = study_vectors(policy, config, mazes.states, [config.hook])
    whole = random_matched_effect(policy, mazes, vectors, config)
    blocks = [
        random_matched_effect(policy, mazes.block(a, b), vectors.block(a, b), config)
        for a, b in ((0, 1), (1, 3))
    ]
    return whole, blocks, config


def test_the_matched_t_reaches_the_vectors_odd_part_with_its_sign(measured):
    whole, _, config = measured
    goal = whole["rme_goal"].values[:, None, :]
    odd = whole["rme_odd"].sel(readout="logodds").values
    reached = whole["rme_reached"].values == 1
    assert reached.any()
    # |O(t*)| equals the vector's |O| to within the bisection's precision in t
    assert np.abs(odd)[reached] == pytest.approx(
        np.broadcast_to(goal, odd.shape)[reached], rel=0.01
    )
    # the orientation makes O carry the vector's sign (E is even: unchanged by it)
    assert np.all(np.sign(odd[reached]) == np.sign(np.broadcast_to(goal, odd.shape)[reached]))
    assert np.all(np.abs(whole["rme_t"].values[reached]) <= config.random_matched_max_t)
    assert whole.sizes["control_draw"] == 2 and "cut" in whole["rme_even_cut"].dims


def test_the_matched_control_does_not_depend_on_the_blocks(measured):
    whole, blocks, _ = measured
    for name in ("rme_goal", "rme_t", "rme_even", "rme_odd", "rme_even_cut"):
        split = np.concatenate([b[name].values for b in blocks], axis=-1)
        np.testing.assert_array_equal(whole[name].values, split, err_msg=name)
