"""The claims of the controls matched in effect, and the odd part kept by an intervention.

A control matched in norm may push the readout less than the vector, so a smaller E says little;
the control matched in effect (:mod:`hookdiff.study.controls`: random directions at each maze's
t* where |O| equals the vector's) asks whether the vector's asymmetry is more than any push that
large gives, and whether it is made in the same layers. Each builder is ``(ds, vector, seed) ->
[Claim]`` (numbers only; :mod:`hookdiff.study.wording` words them). The helpers
(:func:`ratio_of_means`, :func:`steering_kept`, :func:`index_mean`) serve the localisation's
claims too: an intervention whose odd part O drops below :data:`KILLS_STEERING` of the exact O
removes the steering, so it does not locate the even part.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from hookdiff.claim import Claim, verdict_of
from hookdiff.stats import N_BOOT, Interval, bootstrap_mean, paired_difference
from hookdiff.study.schema import CUT_READOUT, PRIMARY, RANDOM_MATCHED
from hookdiff.study.select import best, loc_values, made_between, readout_tolerance, t_loc_one

__all__ = [
    "KILLS_STEERING",
    "asymmetry_index",
    "index_mean",
    "matched_draws",
    "matched_reading",
    "per_maze_mean",
    "random_matched",
    "random_matched_made",
    "ratio_of_means",
    "steering_kept",
]

#: An intervention that keeps less than this fraction of the exact odd part O (the steering)
#: removes the steering; its change of E is then not read as locating the asymmetry.
KILLS_STEERING = 0.5


def asymmetry_index(even: np.ndarray, odd: np.ndarray) -> np.ndarray:
    """The scale-free asymmetry index (Δ₊ + Δ₋) / (|Δ₊| + |Δ₋|), Δ± = r(±t) − r(0), from the
    even part E = Δ₊ + Δ₋ and the odd part O = Δ₊ − Δ₋: E / max(|E|, |O|), in [−1, 1].

    ±1: both signs move the readout the same way (all even); 0: the two moves cancel (all odd).
    NaN where E = O = 0 (no move at all) or either is NaN.

    Example:
        >>> asymmetry_index(np.array([-1.0, 2.0, 0.0]), np.array([4.0, 1.0, 0.0])).tolist()
        [-0.25, 1.0, nan]
    """
    e, o = np.asarray(even, dtype=np.float64), np.asarray(odd, dtype=np.float64)
    scale = np.maximum(np.abs(e), np.abs(o))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, e / np.where(scale > 0, scale, 1.0), np.nan)


def ratio_of_means(
    num: np.ndarray, den: np.ndarray, *, seed: int, n_boot: int = N_BOOT
) -> Interval:
    """mean(num) / mean(den) over mazes, with a percentile bootstrap resampling mazes (each
    maze's pair kept together); mazes where either is NaN are dropped.

    Example:
        >>> iv = ratio_of_means(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0]), seed=0)
        >>> iv.estimate, iv.lo, iv.hi, iv.n
        (0.5, 0.5, 0.5, 3)
    """
    a, b = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size == 0 or not b.mean():
        return Interval(float("nan"), float("nan"), float("nan"), int(a.size))
    est = float(a.mean() / b.mean())
    if a.size < 2:
        return Interval(est, float("nan"), float("nan"), int(a.size))
    idx = np.random.default_rng(seed).integers(0, a.size, size=(n_boot, a.size))
    with np.errstate(invalid="ignore", divide="ignore"):
        boots = a[idx].mean(axis=1) / b[idx].mean(axis=1)
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return Interval(est, float(lo), float(hi), int(a.size))


def steering_kept(o_with: np.ndarray, o_exact: np.ndarray, seed: int) -> Interval:
    """O with an intervention / O exact (ratio of the means over mazes): the steering it keeps."""
    return ratio_of_means(o_with, o_exact, seed=seed)


def index_mean(even: np.ndarray, odd: np.ndarray, seed: int) -> Interval:
    """The mean over mazes of the asymmetry index E / max(|E|, |O|)
    (:func:`~hookdiff.study.controls.asymmetry_index`), with its interval."""
    return bootstrap_mean(asymmetry_index(even, odd), seed=seed)


def matched_draws(ds: xr.Dataset, name: str, vector: str, **sel: object) -> np.ndarray:
    """``(control_draw, maze)``: one ``rme_*`` variable of ``vector`` (NaN where not reached)."""
    x = ds[name].sel(vector=vector, **sel)
    reached = ds["rme_reached"].sel(vector=vector) == 1
    return x.where(reached).transpose("control_draw", "maze").values


def per_maze_mean(draws: np.ndarray) -> np.ndarray:
    """The mean over the draws each maze reached (NaN where none did): mazes are the units."""
    ok = np.isfinite(draws)
    total = np.where(ok, draws, 0.0).sum(axis=0)
    count = ok.sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def random_matched(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """The vector's E minus the matched random directions' E (log-odds, paired per maze, the
    draws averaged within each maze), with each one's asymmetry index beside it."""
    if "rme_even" not in ds or ds.sizes.get("control_draw", 0) == 0:
        return []
    t = t_loc_one(ds)
    own = loc_values(ds, "loc_even", vector, t, control="vector", readout=PRIMARY)
    own_o = loc_values(ds, "loc_odd", vector, t, control="vector", readout=PRIMARY)
    e_draws = matched_draws(ds, "rme_even", vector, readout=PRIMARY)
    o_draws = matched_draws(ds, "rme_odd", vector, readout=PRIMARY)
    e = per_maze_mean(e_draws)
    idx = per_maze_mean(asymmetry_index(e_draws, o_draws))
    ok = np.isfinite(e)
    diff = paired_difference(own[ok], e[ok], seed=seed)
    own_idx = asymmetry_index(own, own_o)
    t_star = np.abs(matched_draws(ds, "rme_t", vector))
    reached = ds["rme_reached"].sel(vector=vector).values
    has_goal = np.isfinite(ds["rme_goal"].sel(vector=vector).values)
    detail = {
        "control": RANDOM_MATCHED,
        "own": bootstrap_mean(own[ok], seed=seed),
        "matched": bootstrap_mean(e, seed=seed),
        "own_index": bootstrap_mean(own_idx[ok], seed=seed),
        "matched_index": bootstrap_mean(idx, seed=seed),
        "index_diff": paired_difference(own_idx[ok], idx[ok], seed=seed),
        "draws": int(e_draws.shape[0]),
        "draw_e": [bootstrap_mean(x, seed=seed) for x in e_draws],
        "reached": float(reached[:, has_goal].mean()) if has_goal.any() else 0.0,
        "t_median": float(np.nanmedian(t_star)) if np.isfinite(t_star).any() else None,
        "own_odd_abs": float(np.nanmean(np.abs(ds["rme_goal"].sel(vector=vector).values[ok])))
        if ok.any()
        else None,
    }
    tol = readout_tolerance(ds, vector, PRIMARY)
    detail["reading"] = matched_reading(diff, detail["own"], detail["matched"], tol)
    odd = per_maze_mean(o_draws)
    claim = Claim.of(
        "random_matched",
        vector,
        diff,
        where=RANDOM_MATCHED,
        readout=PRIMARY,
        t=t,
        odd=float(np.nanmean(odd)) if np.isfinite(odd).any() else None,
        tolerance=tol,
        detail=detail,
    )
    return [claim]


def matched_reading(diff: Interval, own: Interval, matched: Interval, tol: float) -> str:
    """What vector − matched random E says: ``"same"`` (not distinguishable at this n), else
    ``"larger"`` (the vector's mean |E| exceeds the matched push's: more than a generic push of
    the same size gives) or ``"smaller"`` (a generic push of that size makes a larger |E|: the
    vector's asymmetry is not specific to it); ``"_opposite"`` is appended where both E are
    distinguishable from 0 and of opposite signs.

    Example:
        >>> from hookdiff.stats import Interval
        >>> matched_reading(Interval(8.0, 3.0, 13.0, 9), Interval(-2.6, -6.0, -0.1, 9),
        ...                 Interval(-10.5, -18.0, -2.8, 9), 1e-6)
        'smaller'
    """
    if verdict_of(diff.estimate, (diff.lo, diff.hi), diff.n, tol) not in ("positive", "negative"):
        return "same"
    size = "larger" if abs(own.estimate) > abs(matched.estimate) else "smaller"
    both = all(
        verdict_of(x.estimate, (x.lo, x.hi), x.n, tol) in ("positive", "negative")
        for x in (own, matched)
    )
    return size + ("_opposite" if both and own.estimate * matched.estimate < 0 else "")


def _drops(exact: np.ndarray, by_cut: list[np.ndarray]) -> list[np.ndarray]:
    """What each span between consecutive cuts makes: E(c_prev) − E(c) with the network
    symmetrised, the first span from the steering layer (the exact E)."""
    before, out = exact, []
    for e in by_cut:
        out.append(before - e)
        before = e
    return out


def random_matched_made(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """The share of the margin's asymmetry made in the vector's top span (the ``made`` claim's
    span), for the vector minus for the matched random directions (ratio of means, paired
    bootstrap over mazes): 0 when a generic push of the same size makes its asymmetry there too."""
    if "rme_even_cut" not in ds or ds.sizes.get("control_draw", 0) == 0:
        return []
    t = t_loc_one(ds)
    own = loc_values(ds, "loc_even", vector, t, control="vector", readout=CUT_READOUT)
    tol = readout_tolerance(ds, vector, CUT_READOUT)
    exact = bootstrap_mean(own, seed=seed)
    if verdict_of(exact.estimate, (exact.lo, exact.hi), exact.n, tol) not in (
        "positive",
        "negative",
    ):
        return []  # the logits carry no asymmetry to locate (the made claim says so)
    sign = float(np.sign(exact.estimate))
    found = best(made_between(ds, vector, t, seed), lambda x: sign * x.estimate)
    if found is None:
        return []
    span = found[0]
    cuts = [str(c) for c in ds["cut"].values]
    own_cut = [
        loc_values(ds, "loc_even_cut", vector, t, variant="symmetrize", cut=c, readout=CUT_READOUT)
        for c in cuts
    ]
    rnd = per_maze_mean(matched_draws(ds, "rme_even", vector, readout=CUT_READOUT))
    rnd_cut = [
        per_maze_mean(matched_draws(ds, "rme_even_cut", vector, cut=c, readout=CUT_READOUT))
        for c in cuts
    ]
    k = [x[0] for x in made_between(ds, vector, t, seed)].index(span)
    own_drop, rnd_drop = _drops(own, own_cut)[k], _drops(rnd, rnd_cut)
    ok = np.isfinite(own) & np.isfinite(rnd) & np.isfinite(own_drop) & np.isfinite(rnd_drop[k])
    shares = _share_difference(own_drop[ok], own[ok], rnd_drop[k][ok], rnd[ok], seed)
    r_sign = float(np.sign(np.nanmean(rnd))) or 1.0
    r_best = int(np.argmax([r_sign * np.nanmean(d[ok]) if ok.any() else -np.inf for d in rnd_drop]))
    detail = {
        "control": RANDOM_MATCHED,
        "own_share": shares[0],
        "matched_share": shares[1],
        "matched_span": made_between(ds, vector, t, seed)[r_best][0],
        "same_span": r_best == k,
    }
    return [
        Claim.of(
            "random_matched_made",
            vector,
            shares[2],
            where=span,
            readout=CUT_READOUT,
            t=t,
            tolerance=tol,
            detail=detail,
        )
    ]


def _share_difference(
    a_num: np.ndarray, a_den: np.ndarray, b_num: np.ndarray, b_den: np.ndarray, seed: int
) -> tuple[Interval, Interval, Interval]:
    """mean(a_num)/mean(a_den), mean(b_num)/mean(b_den) and their difference, each with a
    percentile bootstrap that resamples mazes jointly (the two shares paired on the maze)."""
    n = a_num.size
    share_a = ratio_of_means(a_num, a_den, seed=seed)
    share_b = ratio_of_means(b_num, b_den, seed=seed)
    nan = float("nan")
    if n == 0 or not (np.isfinite(share_a.estimate) and np.isfinite(share_b.estimate)):
        return share_a, share_b, Interval(nan, nan, nan, n)
    est = share_a.estimate - share_b.estimate
    if n < 2:
        return share_a, share_b, Interval(est, nan, nan, n)
    idx = np.random.default_rng(seed).integers(0, n, size=(N_BOOT, n))
    with np.errstate(invalid="ignore", divide="ignore"):
        boots = a_num[idx].mean(1) / a_den[idx].mean(1) - b_num[idx].mean(1) / b_den[idx].mean(1)
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return share_a, share_b, Interval(est, float(lo), float(hi), n)
