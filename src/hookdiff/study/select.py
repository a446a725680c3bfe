"""Pure readers of a study dataset: the values, intervals and choices the answer is made of.

Every function here reads a saved :class:`xarray.Dataset` and returns numbers or intervals; none
words anything. The measuring steps that need a decision from data measured earlier (which cuts
to roll out) and the answer that words it both read it from here, so they cannot disagree.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from hookdiff.claim import ALPHA, tolerance
from hookdiff.stats import (
    Interval,
    bootstrap_mean,
    holm,
    log_odds,
    paired_difference,
    rate,
    tost_p,
    zero_p,
)
from hookdiff.study.config import StudyConfig, closest_to_one
from hookdiff.study.schema import CUT_READOUT, PRIMARY, REACH_TARGETS, SIGNS
from hookdiff.study.targets import VECTOR_SPECS

__all__ = [
    "best",
    "bootstrap_seed",
    "ScanTests",
    "creation_cut",
    "cut_intervals",
    "cut_maze_rates",
    "cut_rollout_rates",
    "equivalence_margin",
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
    "scan_tests",
    "later_scan_tests",
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


def creation_cut(equivalent: list[bool | None]) -> tuple[int | None, list[int]]:
    """The first cut from which on every measured cut is equivalent to 0, and the earlier cuts
    that are equivalent to 0 too (non-monotone: E comes back after them).

    ``equivalent[i]``: whether cut i's E is shown equivalent to 0 (None: not measured, skipped).
    ``(None, [])`` when the last measured cut is not shown equivalent to 0.

    Example:
        >>> creation_cut([False, True, False, True, None, True])
        (3, [1])
    """
    measured = [i for i, e in enumerate(equivalent) if e is not None]
    first = None
    for i in reversed(measured):
        if not equivalent[i]:
            break
        first = i
    if first is None:
        return None, []
    return first, [i for i in measured if i < first and equivalent[i]]


def equivalence_margin(ds: xr.Dataset) -> float:
    """The equivalence margin's fraction of the exact |E| the study ran with (its config; the
    default where the dataset does not record one)."""
    config = json.loads(ds.attrs.get("config", "{}"))
    return float(config.get("equivalence_margin", StudyConfig().equivalence_margin))


@dataclass(frozen=True)
class ScanTests:
    """One vector's cut scan tested against 0 and for equivalence to 0, Holm-adjusted.

    The family is every measured (variant, cut, readout, t_loc) of the vector's scan: one Holm
    adjustment over its TOST p-values (:func:`~hookdiff.stats.tost_p`, margin
    ``fraction`` × |mean exact E| at the same readout and t), one over its p-values against 0
    (:func:`~hookdiff.stats.zero_p`) together with the exact network's at every readout and t.
    """

    margin: xr.DataArray
    """(readout, t_loc): the equivalence margin."""
    p_equivalent: xr.DataArray
    """(variant, cut, readout, t_loc): the adjusted TOST p (NaN: not measured)."""
    p_zero: xr.DataArray
    """(variant, cut, readout, t_loc): the adjusted p against 0."""
    p_zero_exact: xr.DataArray
    """(readout, t_loc): the exact E's adjusted p against 0 (same family as ``p_zero``)."""
    fraction: float
    """The margin as a fraction of the exact |E|."""

    @property
    def family(self) -> str:
        """The family and the correction, in words (a claim's ``detail``, the report)."""
        n = int(np.isfinite(self.p_equivalent.values).sum())
        return (
            f"Holm over the vector's {n} scan points (cuts × variants × readouts × t); margin "
            f"{self.fraction:g} × |exact E| at each readout and t"
        )

    def point(self, variant: str, cut: str, readout: str, t: float) -> dict[str, float | None]:
        """``{"margin", "p_equivalent", "p_zero"}`` of one scan point (None: not tested)."""
        at = dict(readout=readout, t_loc=t)
        values = (
            self.margin.sel(at),
            self.p_equivalent.sel(variant=variant, cut=cut, **at),
            self.p_zero.sel(variant=variant, cut=cut, **at),
        )
        return {
            k: (float(v) if np.isfinite(v) else None)
            for k, v in zip(("margin", "p_equivalent", "p_zero"), values)
        }

    def equivalent(self, variant: str, readout: str, t: float) -> list[bool | None]:
        """Per cut, whether its E is shown equivalent to 0 (None: not measured)."""
        p = self.p_equivalent.sel(variant=variant, readout=readout, t_loc=t).values
        return [bool(x < ALPHA) if np.isfinite(x) else None for x in p]


def scan_tests(ds: xr.Dataset, vector: str, seed: int, fraction: float | None = None) -> ScanTests:
    """The Holm-adjusted tests of ``vector``'s cut scan (:class:`ScanTests`; ``fraction``: the
    margin's fraction of the exact |E|, default :func:`equivalence_margin`). A point whose
    values are all 0 within the readout's numerical tolerance is 0: equivalent (p = 0) when the
    margin exceeds the tolerance, and not different from 0 (p = 1)."""
    fraction = equivalence_margin(ds) if fraction is None else fraction
    cut = ds["loc_even_cut"].sel(vector=vector)
    exact = ds["loc_even"].sel(control="vector", vector=vector)
    readouts_, ts = list(cut["readout"].values), list(cut["t_loc"].values)
    margin = xr.full_like(exact.isel(maze=0, drop=True), np.nan, dtype=float)
    p_exact = margin.copy()
    p_eq = xr.full_like(cut.isel(maze=0, drop=True), np.nan, dtype=float)
    p_zero = p_eq.copy()
    for readout in readouts_:
        tol = readout_tolerance(ds, vector, readout)
        for t in ts:
            e = exact.sel(readout=readout, t_loc=t).values
            m = fraction * abs(float(np.nanmean(e))) if np.isfinite(e).any() else np.nan
            margin.loc[dict(readout=readout, t_loc=t)] = m
            p_exact.loc[dict(readout=readout, t_loc=t)] = _zero_p(e, tol, seed)
            for variant in cut["variant"].values:
                for c in cut["cut"].values:
                    at = dict(variant=variant, cut=c, readout=readout, t_loc=t)
                    x = cut.sel(at).values
                    p_eq.loc[at] = _tost_p(x, m, tol, seed)
                    p_zero.loc[at] = _zero_p(x, tol, seed)
    p_eq.values = holm(p_eq.values)
    both = holm(np.concatenate([p_zero.values.reshape(-1), p_exact.values.reshape(-1)]))
    p_zero.values = both[: p_zero.size].reshape(p_zero.shape)
    p_exact.values = both[p_zero.size :].reshape(p_exact.shape)
    return ScanTests(margin, p_eq, p_zero, p_exact, fraction)


def later_scan_tests(ds: xr.Dataset, vector: str, seed: int) -> ScanTests:
    """:func:`scan_tests` of the cut scan at the latest later layer that still steers (its
    ``later_cut`` read as ``cut``, at its one matched t; cuts before the layer are not tested)."""
    t = float(ds["later_scan_t"].sel(vector=vector))
    cut = ds["later_even_cut"].rename(later_cut="cut").expand_dims(t_loc=[t], axis=-2)
    exact = ds["later_even"].expand_dims(t_loc=[t], axis=-2).expand_dims(control=["vector"])
    sub = xr.Dataset({"loc_even_cut": cut, "loc_even": exact}, attrs=ds.attrs)
    if "loc_base" in ds:
        sub["loc_base"] = ds["loc_base"]
    return scan_tests(sub, vector, seed)


def _finite_values(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[np.isfinite(x)]


def _tost_p(x: np.ndarray, margin: float, tol: float, seed: int) -> float:
    """:func:`~hookdiff.stats.tost_p`, with values 0 within ``tol`` read as exactly 0."""
    v = _finite_values(x)
    if v.size >= 2 and np.max(np.abs(v)) <= tol:
        return 0.0 if margin > tol else 1.0
    return tost_p(v, margin, seed=seed) if np.isfinite(margin) else float("nan")


def _zero_p(x: np.ndarray, tol: float, seed: int) -> float:
    """:func:`~hookdiff.stats.zero_p`, with values 0 within ``tol`` read as exactly 0."""
    v = _finite_values(x)
    if v.size >= 2 and np.max(np.abs(v)) <= tol:
        return 1.0
    return zero_p(v, seed=seed)


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
    """The numerical tolerance of a claim on ``readout``: :data:`~hookdiff.claim.
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
