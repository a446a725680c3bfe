"""Pure readers of a study dataset: the values, intervals and choices the answer is made of.

Every function here reads a saved :class:`xarray.Dataset` and returns numbers or intervals; none
words anything. The measuring steps that need a decision from data measured earlier (which cuts
to roll out) and the answer that words it both read it from here, so they cannot disagree.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from hookdiff.stats import Interval, bootstrap_mean, log_odds, paired_difference, rate
from hookdiff.study.claim import tolerance
from hookdiff.study.config import closest_to_one
from hookdiff.study.schema import CUT_READOUT, PRIMARY, REACH_TARGETS, SIGNS
from hookdiff.study.targets import VECTOR_SPECS

__all__ = [
    "best",
    "bootstrap_seed",
    "created_cut",
    "cut_intervals",
    "cut_maze_rates",
    "cut_rollout_rates",
    "even_of_target",
    "episodes_per_maze",
    "exact_even",
    "exact_rollout_rates",
    "later_steers",
    "layer_scan",
    "loc_values",
    "made_between",
    "maze_rates",
    "no_later_layer_steers",
    "odd_mean",
    "outcome",
    "outcomes",
    "published_t",
    "reach_targets",
    "readout_tolerance",
    "rollout_t",
    "scaled",
    "t_loc_one",
    "target_readout",
    "vectors_of",
]


def target_readout(
    ds: xr.Dataset, vector: str, readout: str, site: str = "steering"
) -> xr.DataArray:
    """The vector's target readout over (t, maze) at ``site``: P(step toward it) or its log-odds."""
    p = ds[VECTOR_SPECS[vector].target_var].sel(site=site, vector=vector)
    return p if readout == "p" else p.copy(data=log_odds(p.values))


def even_of_target(r: xr.DataArray, t: float) -> np.ndarray:
    """E(t) = r(t) + r(−t) − 2 r(0) per maze, from a readout over (t, maze)."""
    return (r.sel(t=t) + r.sel(t=-t) - 2 * r.sel(t=0.0)).values


def t_loc_one(ds: xr.Dataset) -> float:
    """The localisation's t closest to 1 (the published |t|; :func:`~.config.closest_to_one`)."""
    return closest_to_one(ds["t_loc"].values)


def loc_values(ds: xr.Dataset, name: str, vector: str, t: float, **sel: Any) -> np.ndarray:
    """One localisation variable at ``vector`` and ``t_loc = t`` (and ``sel``), over mazes."""
    return ds[name].sel(vector=vector, t_loc=t, **sel).values


def published_t(ds: xr.Dataset) -> dict[str, float]:
    """The coefficient at which each vector was published to steer (the dataset's ``effect_t``)."""
    if "effect_t" in ds.attrs:
        return {k: float(v) for k, v in json.loads(ds.attrs["effect_t"]).items()}
    return {name: spec.published_t for name, spec in VECTOR_SPECS.items()}


def bootstrap_seed(ds: xr.Dataset) -> int:
    """The bootstrap seed: the study's analysis seed (0 without one)."""
    return int(json.loads(ds.attrs.get("seeds", "{}")).get("analysis", 0))


def cut_intervals(
    ds: xr.Dataset, vector: str, variant: str, readout: str, t: float, seed: int
) -> list[tuple[str, Interval]]:
    """E(t) with the network cut at each cut (forward order) and ``variant``, with intervals."""
    return [
        (
            str(c),
            bootstrap_mean(
                loc_values(ds, "loc_even_cut", vector, t, variant=variant, cut=c, readout=readout),
                seed=seed,
            ),
        )
        for c in ds["cut"].values
    ]


def layer_scan(
    ds: xr.Dataset, name: str, vector: str, readout: str, t: float, seed: int
) -> list[tuple[str, Interval]]:
    """Per frozen layer: the paired change of E from the exact network (``name``'s E − exact E)."""
    exact = loc_values(ds, "loc_even", vector, t, control="vector", readout=readout)
    out = []
    for layer in ds["frozen_layer"].values:
        e = loc_values(ds, name, vector, t, frozen_layer=layer, readout=readout)
        out.append((str(layer), paired_difference(e, exact, seed=seed)))
    return out


def created_cut(scan: list[tuple[str, Interval]]) -> tuple[int | None, list[str]]:
    """Where a cut scan says the asymmetry is created, and the cuts that break monotonicity.

    The creation cut is the first measured cut from which on every measured cut's E is
    indistinguishable from 0: the asymmetry is made before it, and nothing after it adds any. A
    cut before it whose E is also indistinguishable from 0 is named as non-monotone (E comes back
    after it), not taken as the answer. ``None`` when the last measured cut's E is still
    distinguishable from 0 (part of the asymmetry is made after the last cut).

    Example:
        >>> z, e = Interval(0.0, -1.0, 1.0, 9), Interval(2.0, 1.0, 3.0, 9)
        >>> created_cut([("a", e), ("b", z), ("c", e), ("d", z), ("e", z)])
        (3, ['b'])
    """
    measured = [i for i, (_, iv) in enumerate(scan) if iv.n]
    first = None
    for i in reversed(measured):
        if scan[i][1].excludes(0.0):
            break
        first = i
    if first is None:
        return None, []
    dips = [scan[i][0] for i in measured if i < first and not scan[i][1].excludes(0.0)]
    return first, dips


def made_between(ds: xr.Dataset, vector: str, t: float, seed: int) -> list[tuple[str, Interval]]:
    """The margin's asymmetry made between consecutive cuts, paired per maze.

    With the network symmetrised at cut c, E(c) is the asymmetry made after c (the exact E: after
    the steering layer). So E(c_prev) − E(c) is what the layers between c_prev and c make; the
    steps telescope to the exact E, since E with the logits symmetrised is 0. Entries are
    ``("c_prev → c", paired interval)`` in forward order, the first from the steering layer.
    """
    exact = loc_values(ds, "loc_even", vector, t, control="vector", readout=CUT_READOUT)
    before, name, out = exact, str(ds.attrs.get("steering_hook", "the steering layer")), []
    for cut in [str(c) for c in ds["cut"].values]:
        e = loc_values(
            ds, "loc_even_cut", vector, t, variant="symmetrize", cut=cut, readout=CUT_READOUT
        )
        out.append((f"{name} → {cut}", paired_difference(before, e, seed=seed)))
        before, name = e, cut
    return out


def best(
    scan: list[tuple[str, Interval]], key: Callable[[Interval], float]
) -> tuple[str, Interval] | None:
    """The entry of ``scan`` with the largest ``key``, among those measured (None: none is)."""
    measured = [x for x in scan if x[1].n]
    return max(measured, key=lambda x: key(x[1])) if measured else None


def scaled(iv: Interval, s: float) -> Interval:
    """The interval of ``s`` times the quantity (bounds reordered for a negative ``s``)."""
    lo, hi = sorted((s * iv.lo, s * iv.hi))
    return Interval(s * iv.estimate, lo, hi, iv.n)


def exact_even(
    ds: xr.Dataset,
    vector: str,
    t: float,
    seed: int,
    control: str = "vector",
    readout: str = PRIMARY,
) -> Interval:
    """E(t) of ``readout`` (default the primary one) for ``control`` (the exact network)."""
    e = loc_values(ds, "loc_even", vector, t, control=control, readout=readout)
    return bootstrap_mean(e, seed=seed)


def odd_mean(ds: xr.Dataset, vector: str, t: float, control: str, readout: str) -> float | None:
    """The mean odd part O(t) = r(t) − r(−t) over mazes for ``control`` (None: not recorded)."""
    if "loc_odd" not in ds or control not in ds["control"].values:
        return None
    o = loc_values(ds, "loc_odd", vector, t, control=control, readout=readout)
    o = o[np.isfinite(o)]
    return float(o.mean()) if o.size else None


def readout_tolerance(ds: xr.Dataset, vector: str, readout: str | None) -> float:
    """The numerical tolerance of a claim on ``readout``: :data:`~hookdiff.study.claim.
    TOLERANCE_REL` times the readout's scale, its largest |r(0)| over mazes (1 at least)."""
    if readout is None or "loc_base" not in ds:
        return tolerance()
    return tolerance(ds["loc_base"].sel(control="vector", vector=vector, readout=readout).values)


def rollout_t(ds: xr.Dataset) -> float:
    """The |t| of the rollouts with the network cut (the localisation's t closest to 1 if unset)."""
    return float(ds.attrs.get("loc_roll_t", t_loc_one(ds)))


def outcomes() -> dict[str, str]:
    """``{outcome: rollout variable}`` (``"cheese"``: ``"reached_cheese"``): rollout outcomes
    are what was reached, not vectors (two vectors may share one; :data:`REACH_TARGETS`)."""
    return dict(REACH_TARGETS)


def outcome(vector: str) -> str:
    """The rollout outcome of ``vector``: reaching its own target (a key of :func:`outcomes`)."""
    var = VECTOR_SPECS[vector].reach_var
    return next(target for target, v in REACH_TARGETS.items() if v == var)


def reach_targets(ds: xr.Dataset, loc: bool = False) -> list[str]:
    """The rollout outcomes the dataset records (``loc``: with the network cut)."""
    return [o for o, var in outcomes().items() if (f"loc_roll_{var}" if loc else var) in ds]


def cut_rollout_rates(ds: xr.Dataset, vector: str) -> list[tuple[str, str, dict]]:
    """``(variant, cut, {(outcome, sign): rate})`` for each cut the vector's rollouts were cut at.

    ``outcome`` is what was reached (:func:`reach_targets`: ``"cheese"``, ``"top_right"``),
    ``sign`` ``"+t"`` / ``"-t"``; each rate is a Wilson interval over the rolled-out mazes.
    """
    chosen = ds["loc_roll_cut_chosen"].sel(vector=vector)
    out = []
    for variant in [str(v) for v in ds["variant"].values]:
        for cut in [str(c) for c in ds["cut"].values if chosen.sel(cut=c) == 1]:
            rates = {
                (o, sign): rate(
                    ds[f"loc_roll_{outcomes()[o]}"]
                    .sel(vector=vector, variant=variant, cut=cut, sign=sign)
                    .values
                )
                for o in reach_targets(ds, loc=True)
                for sign in SIGNS
            }
            if any(r.n for r in rates.values()):
                out.append((variant, cut, rates))
    return out


def exact_rollout_rates(ds: xr.Dataset, vector: str) -> dict[tuple[str, str], Interval] | None:
    """The exact network's reach rates at ±t (t of the cut rollouts) on the cut rollouts' mazes
    (None where the study's own rollouts did not cover ±t there)."""
    t = rollout_t(ds)
    done = reach_targets(ds, loc=True)
    if not done or not {t, -t} <= set(ds["t"].values.tolist()):
        return None
    first = ds[f"loc_roll_{outcomes()[done[0]]}"].sel(vector=vector)
    rolled = np.isfinite(first).any([d for d in first.dims if d != "maze"])
    rates = {
        (o, sign): rate(
            ds[outcomes()[o]].sel(site="steering", vector=vector, t=s * t).values[rolled.values]
        )
        for o in reach_targets(ds)
        for sign, s in zip(SIGNS, (1.0, -1.0))
    }
    return rates if all(r.n for r in rates.values()) else None


def maze_rates(da: xr.DataArray) -> np.ndarray:
    """Per maze, the rate of 1s over its episodes (NaN: not rolled out), from rollout outcomes
    over (maze[, episode]): the unit the paired reach-rate comparisons resample.

    Example:
        >>> da = xr.DataArray([[1.0, 0.0], [1.0, 1.0], [np.nan, np.nan]], dims=("maze", "episode"))
        >>> maze_rates(da).tolist()
        [0.5, 1.0, nan]
    """
    x = np.asarray(da.transpose("maze", ...).values, dtype=np.float64).reshape(da.sizes["maze"], -1)
    n = np.isfinite(x).sum(1)
    return np.where(n > 0, np.nansum(x, 1) / np.maximum(n, 1), np.nan)


def episodes_per_maze(ds: xr.Dataset) -> int:
    """The seeded episodes per maze of the dataset's rollouts (1 without an ``episode`` dim)."""
    return int(ds.sizes.get("episode", 1))


def cut_maze_rates(
    ds: xr.Dataset, vector: str, variant: str, cut: str, target: str
) -> dict[str, np.ndarray] | None:
    """Per-maze rates of reaching ``target`` with the network cut at ``cut``: ``{"+t", "-t",
    "0"}`` (the t = 0 arm ``loc_roll_base_*``), paired on mazes and episode seeds (None: the
    dataset has no t = 0 arm)."""
    var = outcomes()[target]
    if f"loc_roll_base_{var}" not in ds:
        return None
    at = dict(vector=vector, variant=variant, cut=cut)
    out = {sign: maze_rates(ds[f"loc_roll_{var}"].sel(sign=sign, **at)) for sign in SIGNS}
    out["0"] = maze_rates(ds[f"loc_roll_base_{var}"].sel(**at))
    return out


def later_steers(ds: xr.Dataset, vector: str) -> tuple[str, str, float] | None:
    """``(layer, pair position, matched t)`` of the latest layer that still steers ``vector``
    (the later scan's), or None when no later layer does."""
    if "later_scan_layer" not in ds:
        return None
    layer = str(ds["later_scan_layer"].sel(vector=vector).values)
    if not layer:
        return None
    pos = str(ds["later_scan_position"].sel(vector=vector).values)
    return layer, pos, float(ds["later_scan_t"].sel(vector=vector))


def no_later_layer_steers(ds: xr.Dataset) -> bool:
    """Whether no later layer still steers any vector (the report says so once)."""
    vectors = [str(v) for v in ds["vector"].values]
    return "later_scan_layer" in ds and all(later_steers(ds, v) is None for v in vectors)


def vectors_of(ds: xr.Dataset) -> list[str]:
    """The dataset's vectors (its ``vector`` coordinate; none without one)."""
    return [str(v) for v in ds["vector"].values] if "vector" in ds.coords else []
