"""A small hand-built study Dataset with the localisation schema and known answers (no model).

Used by the answer, report and figure tests. The numbers are built so each claim has one right
answer: noise is symmetric (z and −z), so a quantity built to be 0 has a mean of exactly 0.

cheese vector: E(1) of P(toward cheese) = r(+1) + r(−1) − 2r(0) = −0.25 (r(0) = 0.6, r(−1) = 0.3,
r(+1) = 0.65); symmetrised E reaches 0 at ``CUTS[3]``, linearised at ``CUTS[2]``; the softmax-only E
is 0 (the softmax explains none of it); knock-out of ``L2`` drops it most, knock-in keeps most with
``L3`` (``L1`` keeps more in size, with the opposite sign: not "most" of E); kinks mostly in
``L2``; the base swap flips its sign; +v interpolates.
top-right vector: E of P(toward top-right) is 0 (r(t) = r(0) + 0.1 t + b·t² with b symmetric);
the localisation's E = 0.3 everywhere, symmetrised included (the softmax explains all of it);
the base swap keeps its sign.
margin readout (the log-odds linearised in the logits): 4× P like the log-odds, except for the
top-right vector, whose logits carry no asymmetry (margin E is noise alone, exact and cut): the
softmax makes all of its E.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from hookdiff.study.schema import CONTROL_LINES, READOUTS, VARIABLES

N = 40
ROLLOUT_MAZES = 30
TS = [-1.0, -0.5, 0.0, 0.5, 1.0]
T_LOC = [0.5, 1.0, 2.0]
CUTS = [
    "embedder.block2.res2.resadd_out",
    "embedder.block3.maxpool_out",
    "embedder.block3.res1.resadd_out",
    "embedder.fc_out",
    "fc_policy_out",
]
LAYERS = ["L1", "L2", "L3"]
CONTROLS = list(CONTROL_LINES)
READOUT_SCALE = dict(zip(READOUTS, (1.0, 4.0, 4.0)))  # p, log-odds, margin
#: Rollouts of the cheese vector: how many of the 30 mazes reach cheese at t = −1, 0, +1.
REACH_CHEESE = {-1.0: 10, 0.0: 25, 1.0: 26}
#: Seeded episodes per maze: episode 0 as counted above, episode 1 the same outcomes moved by
#: one maze (so each maze's rate is 0, 1/2 or 1 and the pooled counts are twice the above).
EPISODES = 2


def _episodes(x: np.ndarray, rolled: int) -> np.ndarray:
    """``x`` over (..., maze) with an ``episode`` axis appended: episode 1 is episode 0 moved
    by one maze within the first ``rolled`` mazes."""
    second = x.copy()
    second[..., :rolled] = np.roll(x[..., :rolled], 1, axis=-1)
    return np.stack([x, second], axis=-1)


def noise(rng: np.random.Generator, sd: float = 0.02, n: int = N) -> np.ndarray:
    """Symmetric noise: its mean is exactly 0."""
    z = rng.normal(0.0, sd, n // 2)
    return np.concatenate([z, -z])


def targets(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """p_toward_cheese / p_toward_top_right over (site, vector, t, maze)."""
    t = np.array(TS)[:, None]
    r0 = 0.6 + noise(rng, 0.05)
    cheese = np.stack([r0 - 0.3, r0 - 0.1, r0, r0 + 0.02, r0 + 0.05])  # t = −1 … +1
    b = noise(rng, 0.05)
    top_right = 0.4 + 0.1 * t + b * t**2
    out = {}
    for name, own in (("p_toward_cheese", cheese), ("p_toward_top_right", top_right)):
        arr = np.full((2, 2, len(TS), N), 0.5)
        arr[:, 0 if name == "p_toward_cheese" else 1] = own
        out[name] = arr
    return out


def reach() -> dict[str, np.ndarray]:
    """Rollout outcomes over (site, vector, t, maze): the first ROLLOUT_MAZES mazes, NaN after."""
    shape = (2, 2, len(TS), N)
    out = {k: np.full(shape, np.nan) for k in ("reached_cheese", "reached_top_right")}
    for k in out:
        out[k][..., :ROLLOUT_MAZES] = 0.0
    for t, k in REACH_CHEESE.items():
        out["reached_cheese"][:, 0, TS.index(t), :k] = 1.0
    out["reached_top_right"][:, 1, :, :15] = 1.0
    return {k: _episodes(v, ROLLOUT_MAZES) for k, v in out.items()}


#: Rollouts with the network cut: the first CUT_ROLL_MAZES mazes at t = ±1, symmetrised. Per
#: vector and chosen cut, how many reach the vector's own target at (+t, −t).
CUT_ROLL_MAZES = 20
CUT_ROLL = {
    "cheese": {CUTS[2]: (15, 5), CUTS[3]: (12, 12), CUTS[4]: (14, 4)},
    "top_right": {CUTS[0]: (16, 3), CUTS[4]: (9, 8)},
}
#: Their t = 0 arm: how many of the CUT_ROLL_MAZES reach the vector's own target at t = 0.
CUT_ROLL_BASE = {"cheese": 11, "top_right": 6}


def cut_rollouts() -> dict[str, np.ndarray]:
    """loc_roll_* over (vector, variant, cut, sign, maze, episode), their t = 0 arm
    loc_roll_base_* (no sign) and loc_roll_cut_chosen (vector, cut)."""
    shape = (2, 2, len(CUTS), 2, N)
    reach = {k: np.full(shape, np.nan) for k in ("cheese", "top_right")}
    chosen = np.zeros((2, len(CUTS)), dtype=np.int8)
    for vi, vector in enumerate(("cheese", "top_right")):
        for cut, counts in CUT_ROLL[vector].items():
            ci = CUTS.index(cut)
            chosen[vi, ci] = 1
            for k in reach:
                reach[k][vi, 1, ci, :, :CUT_ROLL_MAZES] = 0.0
            for si, count in enumerate(counts):
                reach[vector][vi, 1, ci, si, :count] = 1.0
    base = {k: v[:, :, :, 0].copy() for k, v in reach.items()}  # (vector, variant, cut, maze)
    for vi, vector in enumerate(("cheese", "top_right")):
        for cut in CUT_ROLL[vector]:
            ci = CUTS.index(cut)
            base[vector][vi, 1, ci, :CUT_ROLL_MAZES] = 0.0
            base[vector][vi, 1, ci, : CUT_ROLL_BASE[vector]] = 1.0
    return {
        "loc_roll_reached_cheese": _episodes(reach["cheese"], CUT_ROLL_MAZES),
        "loc_roll_reached_top_right": _episodes(reach["top_right"], CUT_ROLL_MAZES),
        "loc_roll_base_reached_cheese": _episodes(base["cheese"], CUT_ROLL_MAZES),
        "loc_roll_base_reached_top_right": _episodes(base["top_right"], CUT_ROLL_MAZES),
        "loc_roll_cut_chosen": chosen,
    }


#: Later layers matched to a common effect (steering layer first). Cheese: still steers at the
#: last with decision-square pairs (t = −2.5), the later scan's symmetrised E reaches 0 at
#: LATER_CUTS[1]; top-right: no later layer steers.
MATCHED_LAYERS = [
    "embedder.block2.res1.resadd_out",
    "embedder.block3.res1.resadd_out",
    "embedder.block3.res2.resadd_out",
]
LATER_CUTS = ["embedder.relu3_out", "embedder.fc_out", "fc_policy_out"]


def matched(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """matched_* / still_steers / later_* with the known answers above."""
    t = np.full((3, 2, 2), np.nan)
    t[0, 0] = [-1.0, 1.0]
    t[2, 1, 0] = -2.5
    t[1, :, 0] = [-4.0, -3.0]
    still = np.isfinite(t).astype(np.int8)
    still[1, :, 0] = 0  # reached, but the effect's interval holds 0
    effect = np.where(np.isfinite(t)[..., None], 0.2 + noise(rng, 0.05), np.nan)
    even_cut = np.full((2, 2, 3, len(READOUTS), N), np.nan)
    for k, e in enumerate([-0.2, 0.0, 0.0]):
        even_cut[0, :, k] = e + noise(rng)
    even = np.full((2, len(READOUTS), N), np.nan)
    even[0] = -0.3 + noise(rng)
    return {
        "matched_t": t,
        "matched_effect": effect,
        "still_steers": still,
        # adjusted over the matching: small where it still steers, large where it was reached only
        "still_steers_p": np.where(np.isfinite(t), np.where(still == 1, 0.004, 0.3), np.nan),
        "matched_goal": np.array([0.25, 0.1]),
        "later_even": even,
        "later_even_cut": even_cut,
        "later_scan_layer": np.array([MATCHED_LAYERS[2], ""]),
        "later_scan_position": np.array(["decision_square", ""]),
        "later_scan_t": np.array([2.5, np.nan]),
    }


def _by_readout(per_maze: np.ndarray) -> np.ndarray:
    """(…, maze) values in p → (readout, t_loc, …, maze), log-odds 4× and E ∝ t_loc²."""
    s = np.array([READOUT_SCALE[r] for r in READOUTS])
    tl = np.array(T_LOC) ** 2
    return s[:, None, *([None] * per_maze.ndim)] * tl[None, :, *([None] * per_maze.ndim)] * per_maze


def localisation(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The loc_* / kink_* / base_swap_distance variables with the known answers above."""
    z = {v: noise(rng) for v in ("cheese", "top_right")}
    exact = {"cheese": -0.25 + z["cheese"], "top_right": 0.3 + z["top_right"]}
    # one line per CONTROL_LINES entry: vector, random, other_maze, leave_one_out, base_swap,
    # base_swap_other_maze, base_swap_leave_one_out, untrained
    control = {
        "cheese": [exact["cheese"], noise(rng), -0.1 + noise(rng), -0.2 + noise(rng)]
        + [0.2 + noise(rng), -0.1 + noise(rng), 0.15 + noise(rng), noise(rng)],
        "top_right": [exact["top_right"], noise(rng), noise(rng), 0.25 + noise(rng)]
        + [0.3 + noise(rng), noise(rng), 0.3 + noise(rng), noise(rng)],
    }
    sym = {"cheese": [-0.25, -0.2, -0.1, 0.0, 0.0], "top_right": [0.3] * 5}
    lin = {"cheese": [-0.25, -0.15, 0.0, 0.0, 0.0], "top_right": [0.3] * 5}
    ko, ki = [1.0, 0.2, 0.9], [-1.2, 0.3, 0.9]
    loc_even = np.stack([np.stack(control[v]) for v in ("cheese", "top_right")])
    cut = np.stack(
        [
            np.stack([np.array(lin[v])[:, None] + z[v], np.array(sym[v])[:, None] + z[v]])
            for v in ("cheese", "top_right")
        ]
    )  # (vector, variant, cut, maze)
    knockout = np.stack([np.array(ko)[:, None] * exact[v] for v in ("cheese", "top_right")])
    knockin = np.stack([np.array(ki)[:, None] * exact[v] for v in ("cheese", "top_right")])
    kinks = np.stack([np.array([0.1, -0.5, 0.05])[:, None, None] * np.ones((1, 3, 4))] * 2)
    total = kinks.sum(axis=1)
    # (source, vector, sign, maze): own 0.4 / 1.6, leave-one-out 0.9 / 1.1, other maze 1.0 / 1.0
    dist = np.stack(
        [np.stack([np.stack([a + noise(rng), b + noise(rng)])] * 2) for a, b in DISTANCES.values()]
    )
    m = READOUTS.index("margin")
    loc_even, cut = _by_readout(loc_even), _by_readout(cut)  # (readout, t_loc, ..., maze)
    loc_even[m, :, 1, 0] = _by_readout(z["top_right"])[m]  # top-right logits: no asymmetry
    cut[m, :, 1] = _by_readout(z["top_right"])[m][:, None, None]
    return {
        "loc_even": loc_even.transpose(3, 2, 0, 1, 4),
        "loc_even_cut": cut.transpose(2, 3, 4, 0, 1, 5),
        "loc_even_knockout": _by_readout(knockout).transpose(2, 3, 0, 1, 4),
        "loc_even_knockin": _by_readout(knockin).transpose(2, 3, 0, 1, 4),
        "kink_even": kinks,
        "kink_even_total": total,
        "kink_even_direct": total + 1e-12,
        "base_swap_distance": dist,
    }


#: Distances of a + v and a − v from the paired state, relative to the base's, per source.
DISTANCES = {"own": (0.4, 1.6), "leave_one_out": (0.9, 1.1), "other_maze": (1.0, 1.0)}
#: Odd parts: the exact O (p units, ×4 for log-odds and margin, as E); the share of it each
#: knock-out / knock-in keeps (``L2``'s knock-out keeps 30 %: it kills the steering).
ODD = 1.0
KO_KEEPS, KI_KEEPS = [1.0, 0.3, 0.9], [0.2, 0.5, 0.8]
#: The control matched in effect: 3 draws; draw 2 does not reach maze 0. Cheese: its E of the
#: log-odds is RME_E (the vector's: −1.0 at t = 1), all of its margin asymmetry made before the
#: first cut (the vector's in later spans); top-right: E as the vector's own (0 difference).
RME_DRAWS = 3
RME_E = {"cheese": -2.0, "top_right": 1.2}


def odd_parts(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """loc_odd / loc_odd_cut / loc_odd_knockout / loc_odd_knockin with the known answers above."""
    s = np.array([READOUT_SCALE[r] for r in READOUTS])[:, None, None]
    o = s * np.ones((1, len(T_LOC), N)) * (ODD + noise(rng, 0.01))  # (readout, t_loc, maze)
    loc_odd = np.broadcast_to(o, (len(CONTROLS), 2, *o.shape)).copy()
    cut = np.broadcast_to(o, (2, 2, len(CUTS), *o.shape)).copy()
    ko = np.stack([np.array(KO_KEEPS)[:, None, None, None] * o] * 2)
    ki = np.stack([np.array(KI_KEEPS)[:, None, None, None] * o] * 2)
    return {"loc_odd": loc_odd, "loc_odd_cut": cut, "loc_odd_knockout": ko, "loc_odd_knockin": ki}


def random_matched(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """rme_* with the known answers above (E ∝ readout scale, O = the vector's)."""
    scale = np.array([READOUT_SCALE[r] for r in READOUTS]) / 4.0
    reached = np.ones((2, RME_DRAWS, N), dtype=np.int8)
    reached[:, 2, 0] = 0
    even = np.stack([RME_E[v] + noise(rng, 0.05) for v in ("cheese", "top_right")])
    even = even[:, None, None, :] * np.ones((1, RME_DRAWS, 1, 1)) * scale[:, None]
    odd = np.full(even.shape, 4.0 * ODD) * scale[:, None]
    even_cut = np.zeros((2, RME_DRAWS, len(CUTS), len(READOUTS), N))
    even_cut[1] = even[1][:, None]  # top-right: nothing made before the logits
    t = np.where(reached == 1, 3.0, np.nan)
    even[:, 2, :, 0] = odd[:, 2, :, 0] = even_cut[:, 2, ..., 0] = np.nan
    return {
        "rme_goal": np.full((2, N), 4.0 * ODD),
        "rme_t": t,
        "rme_reached": reached,
        "rme_even": even,
        "rme_odd": odd,
        "rme_even_cut": even_cut,
    }


#: The dense sweep's t and, per (vector, source), the line along it: the cheese vector's own
#: line stops just past the paired state's readout (+1 at t = 1, flat from 1.05), every other
#: line goes straight on.
SWEEP_T = np.linspace(-4.0, 4.0, 17)
PAIRED_R = {"cheese": 1.0, "top_right": 2.0}


def sweeps(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``sweep_r`` (source, vector, t_sweep, maze) and ``loc_base`` (control, vector, readout,
    maze), the base-swap line's base being the paired state's readout."""
    lines = []
    for _source in DISTANCES:
        per_vector = []
        for vector, paired in PAIRED_R.items():
            straight = paired * SWEEP_T
            line = (
                np.minimum(straight, 1.05 * paired)
                if (vector, _source) == ("cheese", "own")
                else straight
            )
            per_vector.append(line[:, None] + noise(rng, 0.001)[None, :])
        lines.append(np.stack(per_vector))
    base = np.zeros((len(CONTROLS), 2, len(READOUTS), N))
    for j, paired in enumerate(PAIRED_R.values()):
        base[CONTROLS.index("base_swap"), j] = paired
    return {"sweep_r": np.stack(lines), "loc_base": base}


def synthetic_study(
    *, localised: bool = True, later_hook: str = "embedder.block3.res2.resadd_out"
) -> xr.Dataset:
    """The hand-built study Dataset (``localised=False``: without the localisation variables)."""
    rng = np.random.default_rng(7)
    data = {k: (v) for k, v in {**targets(rng), **reach()}.items()}
    coords = {
        "site": ["steering", "later"],
        "vector": ["cheese", "top_right"],
        "t": TS,
        "maze": np.arange(N),
        "episode": np.arange(EPISODES),
        "level_seed": ("maze", np.arange(N) + 40500),
    }
    if localised:
        data |= localisation(rng) | cut_rollouts() | matched(rng)
        data |= odd_parts(rng) | random_matched(rng) | sweeps(rng)
        coords |= {
            "t_loc": T_LOC,
            "cut": CUTS,
            "variant": ["linearize", "symmetrize"],
            "frozen_layer": LAYERS,
            "readout": list(READOUTS),
            "control": CONTROLS,
            "kink_maze": np.arange(4),
            "sign": ["+t", "-t"],
            "matched_layer": MATCHED_LAYERS,
            "pair_position": ["start", "decision_square"],
            "later_cut": LATER_CUTS,
            "control_draw": np.arange(RME_DRAWS),
            "source": list(DISTANCES),
            "t_sweep": SWEEP_T,
        }
    attrs = {
        "steering_hook": "embedder.block2.res1.resadd_out",
        "later_hook": later_hook,
        "effect_t": json.dumps({"cheese": -1.0, "top_right": 1.0}),
        "seeds": json.dumps({"analysis": 0}),
        "loc_roll_t": 1.0,
        "config": json.dumps({"later_max_t": 8.0}),
    }
    dims = {k: VARIABLES[k] for k in data}  # the study's own dims (hookdiff.study.schema)
    return xr.Dataset({k: (dims[k], v) for k, v in data.items()}, coords=coords, attrs=attrs)
