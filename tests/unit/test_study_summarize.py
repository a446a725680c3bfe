"""``summarize`` on a hand-built study Dataset whose headline numbers are known.

(The behavioural claims moved to :mod:`hookdiff.study.answer`, tested in test_study_answer.py;
``summarize`` keeps the descriptive medians checked here.)

The Dataset has the study's schema (site, vector, position, maze, t, t_pos, depth, candidate) and
values chosen so that each number has one right answer and the plausible wrong readings differ:
+t and −t radii differ, the first nonlinear depth is not the last nor the smallest-radius one,
medians differ from means and from medians that drop NaN ("beyond the grid"), the −t effect
differs from the +t one, and +t and −t diverge at the larger |t| only.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import xarray as xr

from hookdiff.study.report import summarize

NAN = np.nan
SITES = ["steering", "later"]
VECTORS = ["cheese", "top_right"]
POSITIONS = ["decision_square", "start"]
DEPTHS = ["a", "b", "fc_policy_out"]
TS = [-2.0, -1.0, 0.0, 1.0, 2.0]
T_POS = [1.0, 2.0]
N_MAZE = 4

# Linear radii at the decision square, per site and depth: (+t per maze, -t per maze).
RADII = {
    "steering": {
        "a": ([NAN] * 4, [NAN] * 4),  # linear on the whole grid
        "b": ([1.5, NAN, 0.5, 1.5], [2.0, 2.0, NAN, 2.0]),  # medians 1.5, 2.0
        "fc_policy_out": ([0.5, 0.25, 1.0, 0.5], [1.0, NAN, 2.0, 3.0]),  # medians 0.5, 2.5
    },
    "later": {  # depth "a" lies before the later hook: no baseline there
        "a": ([NAN] * 4, [NAN] * 4),
        "b": ([NAN] * 4, [0.75] * 4),
        "fc_policy_out": ([3.0] * 4, [NAN] * 4),
    },
}

# Target probability at the decision square per t (cheese vector: P(toward cheese); top-right
# vector: P(toward top-right)), steering site. Effects (mean over mazes, minus t = 0):
#   cheese:    t=1: +0.02 / -0.04 (gap 0.02);  t=2: +0.05 / -0.30 (gap 0.25) -> diverges at 2
#   top_right: t=1: +0.30 / -0.10 (gap 0.20) -> diverges at 1
BASE = np.array([0.4, 0.6, 0.5, 0.5])
TARGET = {
    "cheese": {
        -2.0: BASE - [0.2, 0.4, 0.3, 0.3],
        -1.0: BASE - [0.02, 0.06, 0.04, 0.04],
        0.0: BASE,
        1.0: BASE + [0.0, 0.04, 0.02, 0.02],
        2.0: BASE + [0.05, 0.05, 0.05, 0.05],
    },
    "top_right": {
        -2.0: BASE - 0.2,
        -1.0: BASE - 0.1,
        0.0: BASE,
        1.0: BASE + 0.3,
        2.0: BASE + 0.4,
    },
}


def _zeros(*dims: str) -> xr.DataArray:
    sizes = {
        "site": SITES,
        "vector": VECTORS,
        "position": POSITIONS,
        "maze": np.arange(N_MAZE),
        "t": TS,
        "t_pos": T_POS,
        "depth": DEPTHS,
        "candidate": ["h1", "h2"],
    }
    coords = {d: sizes[d] for d in dims}
    return xr.DataArray(np.zeros([len(coords[d]) for d in dims]), coords=coords, dims=dims)


def study_dataset(gap: float = 0.05) -> xr.Dataset:
    """The hand-built Dataset (values at the "start" position and unused slots are decoys)."""
    nl = ("site", "vector", "position", "maze", "depth")
    base = _zeros(*nl) + 1.0
    base.loc[dict(site="later", depth="a")] = NAN
    rp, rn = _zeros(*nl) + 0.01, _zeros(*nl) + 0.01  # decoys: "start" is nonlinear everywhere
    for site, per_depth in RADII.items():
        for depth, (pos, neg) in per_depth.items():
            sel = dict(site=site, position="decision_square", depth=depth)
            for vec in VECTORS:
                rp.loc[dict(sel, vector=vec)] = pos
                rn.loc[dict(sel, vector=vec)] = neg
    residual = _zeros("site", "vector", "position", "maze", "t", "depth") + 9.0
    out = dict(position="decision_square", depth="fc_policy_out")
    residual.loc[dict(out, t=1.0)] = [0.1, 0.2, 0.3, 0.2]  # median 0.2
    residual.loc[dict(out, t=-1.0)] = [0.4, 0.5, 0.9, 0.5]  # median 0.5
    # breakpoints: mazes 0-2 walked, maze 3 not (NaN: unknown, not "no breakpoint")
    pieces = _zeros(*nl) + 99.0
    first_pos, first_neg = _zeros(*nl) + 0.001, _zeros(*nl) + 0.001
    pieces.loc[out] = [3.0, 5.0, 7.0, NAN]  # median 5
    first_pos.loc[out] = [0.2, 0.6, 0.4, NAN]  # median of the walked 0.4
    first_neg.loc[out] = [NAN, 0.3, 0.1, NAN]  # no break on one: [inf, 0.3, 0.1] -> 0.3
    asym = _zeros("site", "vector", "position", "maze", "t_pos", "depth") + 9.0
    asym.loc[dict(out, t_pos=1.0)] = [0.1, -0.3, 0.2, NAN]  # median 0.1
    beh = ("site", "vector", "t", "maze")
    p_cheese, p_corner = _zeros(*beh) + 0.9, _zeros(*beh) + 0.9  # decoys: the other target
    for t in TS:
        p_cheese.loc[dict(site="steering", vector="cheese", t=t)] = TARGET["cheese"][t]
        p_corner.loc[dict(site="steering", vector="top_right", t=t)] = TARGET["top_right"][t]
        p_cheese.loc[dict(site="later", vector="cheese", t=t)] = BASE
        p_corner.loc[dict(site="later", vector="top_right", t=t)] = BASE
    reached_cheese, reached_corner = _zeros(*beh) + NAN, _zeros(*beh) + NAN
    timed_out = _zeros(*beh) + NAN
    sel = dict(site="steering", vector="cheese")
    reached_cheese.loc[dict(sel, t=-1.0)] = [0, 0, 1, NAN]  # 1/3
    reached_cheese.loc[dict(sel, t=1.0)] = [1, 1, 1, NAN]
    reached_corner.loc[dict(sel, t=-1.0)] = [1, 1, 0, NAN]  # 2/3
    reached_corner.loc[dict(sel, t=1.0)] = [0, 0, 0, NAN]
    timed_out.loc[dict(sel, t=-1.0)] = [0, 0, 0, NAN]
    timed_out.loc[dict(sel, t=1.0)] = [0, 0, 0, NAN]
    effect = _zeros("candidate", "vector")
    effect.loc[dict(candidate="h1")] = [0.3, 0.1]
    effect.loc[dict(candidate="h2")] = [0.2, 0.15]
    return xr.Dataset(
        {
            "base_norm": base,
            "linear_radius_pos": rp,
            "linear_radius_neg": rn,
            "residual": residual,
            "n_pieces": pieces,
            "first_break_pos": first_pos,
            "first_break_neg": first_neg,
            "asymmetry": asym,
            "p_toward_cheese": p_cheese,
            "p_toward_top_right": p_corner,
            "reached_cheese": reached_cheese,
            "reached_top_right": reached_corner,
            "timed_out": timed_out,
            "candidate_effect": effect,
            "candidate_score": effect.mean("vector"),
            "site_hook": ("site", np.array(["hook.steer", "hook.later"])),
        },
        attrs={
            "config": json.dumps({}),
            "threshold": 0.1,
            "agent": "hand-made",
            "untrained": 0,
            "later_hook": "h2",
        },
    )


@pytest.fixture(scope="module")
def summary() -> dict:
    return summarize(study_dataset())


def test_linear_radii_at_the_logits_per_side(summary):
    for vec in VECTORS:
        e = summary["sites"]["steering"][vec]
        assert (e["radius_logits_pos"], e["radius_logits_neg"]) == (0.5, 2.5)
        assert (e["residual_logits_t+1"], e["residual_logits_t-1"]) == (0.2, 0.5)
    e = summary["sites"]["later"]["cheese"]
    assert (e["radius_logits_pos"], e["radius_logits_neg"]) == (3.0, "inf")


def test_breakpoints_count_walked_mazes_only(summary):
    e = summary["sites"]["steering"]["top_right"]
    assert e["breakpoint_mazes"] == 3
    assert e["first_break_logits_pos"] == pytest.approx(0.4)
    assert e["first_break_logits_neg"] == pytest.approx(0.3)


def test_candidates_and_json(summary):
    h1 = summary["candidates"]["h1"]
    assert h1["effect"] == pytest.approx({"cheese": 0.3, "top_right": 0.1})
    assert h1["score"] == pytest.approx(0.2)
    assert summary["later_hook"] == "h2" and summary["t_max"] == 2.0
    json.dumps(summary)  # JSON-able: inf written as "inf"
    assert not any(isinstance(x, float) and math.isinf(x) for x in _leaves(summary))


def _leaves(x):
    if isinstance(x, dict):
        for v in x.values():
            yield from _leaves(v)
    elif isinstance(x, list):
        for v in x:
            yield from _leaves(v)
    else:
        yield x
