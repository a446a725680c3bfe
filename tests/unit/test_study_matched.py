"""The matched coefficient's search (hookdiff.study.measure.matched_t) on known functions, and
the matching's pure parts on hand-built numbers: the common effect size, the latest layer that
still steers, and what "still steers" requires."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

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


# --------------------------------------------------------------------------------------------
# The common effect size, the latest layer that still steers, "still steers"
# --------------------------------------------------------------------------------------------


def test_the_common_effect_size_is_the_mean_of_the_absolute_changes():
    """Mazes pushed up and down by the same amount: mean |Δ| = 0.2, while |mean Δ| = 0."""
    from hookdiff.study.later import mean_abs_change

    p0, p1 = np.array([0.5, 0.5, 0.4, np.nan]), np.array([0.7, 0.3, 0.4, 0.9])
    assert mean_abs_change(p1, p0) == pytest.approx((0.2 + 0.2 + 0.0) / 3)
    # over several t at once: one value per row
    rows = mean_abs_change(np.stack([p1, p0]), p0)
    assert rows == pytest.approx([0.4 / 3, 0.0])


def _matched(still: dict[tuple[str, str], int]) -> xr.Dataset:
    """A matching record over three layers (the first is the steering layer) for one vector."""
    from hookdiff.study.later import VECTOR_ORIGINS

    layers, origins = ["steer", "mid", "late"], list(VECTOR_ORIGINS)
    arr = np.zeros((3, len(origins), 1), dtype=np.int8)
    for (layer, pos), v in still.items():
        arr[layers.index(layer), origins.index(pos), 0] = v
    return xr.Dataset(
        {"still_steers": (("matched_layer", "pair_position", "vector"), arr)},
        coords={"matched_layer": layers, "pair_position": origins, "vector": ["cheese"]},
    )


def test_latest_steering_takes_the_latest_layer_a_leave_one_out_vector_steers():
    """Only vectors the maze was not built from count (decision-square pairs first): a maze's
    own decision-square pair steers at every layer by construction."""
    from hookdiff.study.later import latest_steering

    ds_loo, start_loo = "decision_square_leave_one_out", "start_leave_one_out"
    both = _matched({("mid", ds_loo): 1, ("late", start_loo): 1})
    assert latest_steering(both, "steer", "cheese") == ("late", start_loo)
    same_layer = _matched({("late", start_loo): 1, ("late", ds_loo): 1})
    assert latest_steering(same_layer, "steer", "cheese") == ("late", ds_loo)
    only_steering = _matched({("steer", ds_loo): 1})
    assert latest_steering(only_steering, "steer", "cheese") is None
    own_only = _matched({("late", "decision_square"): 1, ("mid", "start"): 1})
    assert latest_steering(own_only, "steer", "cheese") is None


def test_leave_one_out_is_the_mean_of_the_other_mazes_rows():
    import torch

    from hookdiff.study.later import leave_one_out

    v = torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(0))
    got = leave_one_out(v)
    for i in range(5):
        others = torch.cat([v[:i], v[i + 1 :]])
        torch.testing.assert_close(got[i], others.mean(dim=0), atol=1e-6, rtol=1e-6)
    assert torch.equal(leave_one_out(v[:1]), v[:1])


def test_still_steers_needs_the_interval_above_zero_not_only_the_estimate():
    """Per (layer, position, vector): effects whose mean is positive but whose 95 % interval
    reaches below 0 do not still steer; a clearly positive one does; no matched t never does."""
    from hookdiff.study.config import StudyConfig
    from hookdiff.study.later import _matched_dataset

    effects = np.array(
        [
            [[[0.5, 0.6, 0.55, 0.52, 0.58, 0.61]]],  # clearly above 0
            [[[-1.0, 2.0, -1.0, 2.0, -0.9, 0.1]]],  # mean > 0, interval across 0
        ]
    )  # (matched_layer, pair_position=1, vector=1, maze)
    t_found = np.array([[[1.0]], [[1.0]]])
    shape = t_found.shape
    effects2 = np.concatenate([effects, effects], axis=1)  # both pair positions
    t2 = np.concatenate([t_found, np.array([[[np.nan]], [[1.0]]])], axis=1)
    assert effects2[1, 0, 0].mean() > 0
    ds = _matched_dataset(
        ["a", "b"],
        t2,
        effects2,
        np.ones((2, 2, 1)),
        {"cheese": 0.1},
        StudyConfig(),
        origins=["start", "decision_square"],
    )
    still = ds["still_steers"].values
    assert still.shape == (shape[0], 2, 1)
    assert still[0, 0, 0] == 1  # interval above 0
    assert still[1, 0, 0] == 0  # estimate above 0, interval not
    assert still[0, 1, 0] == 0  # no matched t


def test_still_steers_is_decided_over_the_whole_matching_not_cell_by_cell():
    """A cell whose interval lies above 0 (unadjusted p ≈ 0.01) still steers when it is the
    matching's only test, and no longer when twenty such cells are searched: the search for
    the latest layer that steers is one Holm family (all p equal: adjusted = 20 × p)."""
    from hookdiff.stats import bootstrap_mean
    from hookdiff.study.config import StudyConfig
    from hookdiff.study.later import _matched_dataset

    z = np.linspace(-1.0, 1.0, 50)
    z = (z - z.mean()) / z.std()
    cell = 0.05 + 0.137 * z  # mean 0.05, bootstrap SE ≈ 0.019: p ≈ 0.01
    config = StudyConfig()
    single = bootstrap_mean(cell, seed=config.seeds()["analysis"])
    assert single.lo > 0 and 0.005 < single.p_zero < 0.02

    def matching(n_layers):
        return _matched_dataset(
            [f"layer{i}" for i in range(n_layers)],
            np.ones((n_layers, 1, 1)),
            np.broadcast_to(cell, (n_layers, 1, 1, cell.size)).copy(),
            np.ones((n_layers, 1, 1)),
            {"cheese": 0.1},
            config,
            origins=["start_leave_one_out"],
        )

    alone, searched = matching(1), matching(20)
    assert int(alone["still_steers"].values.item()) == 1
    assert alone["still_steers_p"].values.item() == pytest.approx(single.p_zero)
    assert not searched["still_steers"].values.any()
    np.testing.assert_allclose(searched["still_steers_p"].values, 20 * single.p_zero)
