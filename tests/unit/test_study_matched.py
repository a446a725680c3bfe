"""The matched coefficient's search (hookdiff.study.measure.matched_t) on known functions."""

from __future__ import annotations

import math

import numpy as np

from hookdiff.study.measure import matched_t


def test_bisection_finds_the_crossing_to_its_stated_precision():
    calls = []

    def effect(ts):
        calls.append(len(ts))
        return np.asarray(ts) ** 3

    t = matched_t(effect, 2.0, 8.0, 12)
    precision = 8.0 / 16 / 2**12
    assert 2.0 ** (1 / 3) <= t <= 2.0 ** (1 / 3) + precision
    assert calls == [16] + [1] * 12  # one batched grid, then one t per step


def test_a_non_monotone_effect_is_matched_at_its_first_crossing():
    # rises to 1 at t = 1, falls back to 0 at t = 2, rises again after 3: the goal 0.5 is first
    # reached at t = 0.5 (a plain bisection on [0, 8] would land on the later rise)
    def effect(ts):
        t = np.asarray(ts, dtype=float)
        return np.where(t < 1, t, np.where(t < 2, 2 - t, np.maximum(t - 3, 0.0)))

    assert abs(matched_t(effect, 0.5, 8.0, 16) - 0.5) < 1e-5


def test_an_effect_never_reached_gives_nan():
    assert math.isnan(matched_t(lambda ts: np.zeros(len(ts)), 0.1, 8.0, 5))
