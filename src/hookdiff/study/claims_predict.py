"""The interpolation rule put to a prediction test, maze by maze, as claims (no words here).

The explanation under test: adding or subtracting a vector acts more when it moves the maze's
activation toward the paired real state (interpolation) than when it moves it away
(extrapolation). Stated as a rule fixed before looking: on each maze, the sign s whose
a + s·v lies nearer the paired state's activation (``base_swap_distance``) is predicted to act
more, and the sign that acts more is read from the same maze's E and O at the localisation's t
(|Δ₊| > |Δ₋| exactly when E·O > 0, since Δ± = (E ± O) / 2). The rule is scored for every vector
source (:data:`~hookdiff.study.schema.VECTOR_SOURCES`: the maze's own vector, the leave-one-out
vector, another maze's), beside two trivial rules that need no activations: the published sign
always, and the sign that raises the target readout (the sign of O).

A rule that scores no better than the trivial ones explains nothing they do not; a score near
0.5 on vectors the base was not built from says the own vector's agreement came from the line's
construction.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

from hookdiff.claim import Claim
from hookdiff.stats import bootstrap_mean, paired_difference, tost_p, wilson
from hookdiff.study.schema import PRIMARY, VECTOR_SOURCES
from hookdiff.study.select import equivalence_margin, loc_values, published_t, t_loc_one

__all__ = [
    "CHANCE_MARGIN",
    "RULES",
    "acts_more",
    "continuation",
    "continuations",
    "prediction",
    "predictions",
    "saturation",
]

Rule = Callable[[xr.Dataset, str, str, np.ndarray], np.ndarray]


def acts_more(even: np.ndarray, odd: np.ndarray) -> np.ndarray:
    """Per maze, the sign that moves the readout more: +1 (adding), −1 (subtracting), NaN
    (a tie or not measured).

    Example:
        >>> acts_more(np.array([-4.0, 3.0, 0.0]), np.array([5.0, 4.0, 1.0])).tolist()
        [-1.0, 1.0, nan]
    """
    s = np.sign(np.asarray(even, dtype=np.float64) * np.asarray(odd, dtype=np.float64))
    return np.where(s == 0, np.nan, s)


def _interpolation(ds: xr.Dataset, vector: str, source: str, odd: np.ndarray) -> np.ndarray:
    """The sign whose a + s·v lies nearer the paired real state (NaN: equally near)."""
    d = ds["base_swap_distance"].sel(source=source, vector=vector)
    s = np.sign((d.sel(sign="-t") - d.sel(sign="+t")).values)
    return np.where(s == 0, np.nan, s)


def _published(ds: xr.Dataset, vector: str, source: str, odd: np.ndarray) -> np.ndarray:
    return np.full(odd.shape, np.sign(published_t(ds)[vector]))


def _raises(ds: xr.Dataset, vector: str, source: str, odd: np.ndarray) -> np.ndarray:
    s = np.sign(odd)
    return np.where(s == 0, np.nan, s)


#: The rules scored, the one under test first: name → per-maze predicted sign.
RULES: dict[str, Rule] = {
    "interpolation": _interpolation,
    "published_sign": _published,
    "raises_target": _raises,
}


def predictions(ds: xr.Dataset, vector: str, source: str) -> dict[str, np.ndarray]:
    """Per maze, 1.0 where each rule of :data:`RULES` predicts the sign that acts more, 0.0
    where not, NaN where either side is undefined; and ``"observed"``, that sign."""
    t, line = t_loc_one(ds), VECTOR_SOURCES[source][0]
    even = loc_values(ds, "loc_even", vector, t, control=line, readout=PRIMARY)
    odd = loc_values(ds, "loc_odd", vector, t, control=line, readout=PRIMARY)
    seen = acts_more(even, odd)
    out = {"observed": seen}
    for name, rule in RULES.items():
        guess = rule(ds, vector, source, odd)
        ok = np.isfinite(seen) & np.isfinite(guess)
        out[name] = np.where(ok, (guess == seen).astype(float), np.nan)
    return out


#: The margin of "at chance" for an accuracy, per unit of the study's equivalence margin: with
#: the default 0.2, an accuracy within 0.5 ± 0.1 is equivalent to a coin.
CHANCE_MARGIN = 0.5


def prediction(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """Per vector source (``where``): the interpolation rule's accuracy minus chance (0.5),
    over mazes (bootstrap; positive: better than a coin; ``equivalent``: shown to be at chance
    within :data:`CHANCE_MARGIN` × the study's margin, TOST), with each rule's accuracy
    (Wilson) and the rule's paired advantage over each trivial rule in ``detail``."""
    if "base_swap_distance" not in ds or "loc_odd" not in ds:
        return []
    have = set(ds["control"].values.tolist())
    out = []
    for source in [str(s) for s in ds["base_swap_distance"]["source"].values]:
        if VECTOR_SOURCES[source][0] not in have:
            continue
        hits = predictions(ds, vector, source)
        rule = hits["interpolation"]
        accuracy = {
            name: wilson(int(np.nansum(hits[name])), int(np.isfinite(hits[name]).sum()))
            for name in RULES
        }
        beats = {
            name: paired_difference(rule, hits[name], seed=seed)
            for name in RULES
            if name != "interpolation"
        }
        detail = {"accuracy": accuracy, "advantage": beats, "source": source}
        iv = bootstrap_mean(rule - 0.5, seed=seed)
        ok = rule[np.isfinite(rule)] - 0.5
        margin = CHANCE_MARGIN * equivalence_margin(ds)
        p_eq = tost_p(ok, margin, seed=seed) if ok.size >= 2 else None
        at = dict(where=source, t=t_loc_one(ds), margin=margin, p_equivalent_unadjusted=p_eq)
        out.append(Claim.of("prediction", vector, iv, **at, detail=detail))
    return out


def continuation(r: np.ndarray, ts: np.ndarray, paired: float, sign: float) -> tuple[float, float]:
    """How far one maze's response keeps going past the paired state's readout.

    Along u = sign·t ≥ 0 (``sign``: the direction toward the paired state), R(u) = r(sign·u);
    u* is the first u where R reaches ``paired`` (linear between grid points). The return is
    ``(u*, c)`` with c = [R(2u*) − R(u*)] / [R(u*) − R(0)]: 0 when the response stops at the
    paired state, 1 when it goes on as far again (a straight line), negative when it turns
    back. NaN where R never reaches the paired readout, or 2u* lies beyond the sweep.

    Example:
        >>> ts = np.linspace(-4, 4, 17)
        >>> continuation(-ts, ts, paired=-1.0, sign=1.0)  # a straight line: goes on as far
        (1.0, 1.0)
        >>> u_star, c = continuation(-np.clip(ts, -1.0, 1.0), ts, -1.0, 1.0)  # stops there
        >>> u_star, c == 0
        (1.0, True)
    """
    order = np.argsort(sign * ts)
    u, big_r = sign * ts[order], r[order]
    keep = u >= 0
    u, big_r = u[keep], big_r[keep]
    if u.size < 2 or u[0] != 0 or not np.isfinite(big_r).all():
        return float("nan"), float("nan")
    gap = big_r - paired
    start = np.sign(gap[0])
    crossed = np.nonzero(np.sign(gap[1:]) != start)[0]
    if start == 0 or crossed.size == 0:
        return float("nan"), float("nan")
    i = int(crossed[0]) + 1  # the first grid point at or past the paired readout
    u_star = float(u[i - 1] + (u[i] - u[i - 1]) * gap[i - 1] / (gap[i - 1] - gap[i]))
    if 2 * u_star > u[-1]:
        return u_star, float("nan")
    r_star, r_twice = paired, float(np.interp(2 * u_star, u, big_r))
    return u_star, (r_twice - r_star) / (r_star - float(big_r[0]))


def continuations(ds: xr.Dataset, vector: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Per maze, ``(u*, c)`` of :func:`~hookdiff.study.saturation.continuation` along the sign
    toward the paired real state (the interpolation rule's sign; NaN where it ties)."""
    sweep = ds["sweep_r"].sel(source=source, vector=vector)
    ts = sweep["t_sweep"].values.astype(np.float64)
    paired = ds["loc_base"].sel(control="base_swap", vector=vector, readout=PRIMARY).values
    toward = _interpolation(ds, vector, source, np.zeros(paired.shape))
    out = [
        continuation(sweep.isel(maze=i).values, ts, float(paired[i]), float(toward[i]))
        if np.isfinite(toward[i])
        else (np.nan, np.nan)
        for i in range(paired.size)
    ]
    return np.array([u for u, _ in out]), np.array([c for _, c in out])


def saturation(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """Per swept vector source (``where``): how far the response keeps going past the paired
    state's readout, in units of the way there (0: it stops there, as interpolation alone
    would have it; 1: it goes on as far again), tested for equivalence to 0 within the study's
    margin; with the share of mazes whose line reaches the paired readout and the median u*."""
    if "sweep_r" not in ds or "loc_base" not in ds:
        return []
    out = []
    margin = equivalence_margin(ds)
    for source in [str(s) for s in ds["sweep_r"]["source"].values]:
        u_star, c = continuations(ds, vector, source)
        reached = np.isfinite(u_star)
        detail = {
            "source": source,
            "reached": wilson(int(reached.sum()), int(reached.size)),
            "u_star_median": float(np.median(u_star[reached])) if reached.any() else None,
            "beyond_sweep": int((reached & ~np.isfinite(c)).sum()),
        }
        iv = bootstrap_mean(c, seed=seed)
        p_eq = tost_p(c[np.isfinite(c)], margin, seed=seed) if iv.n >= 2 else None
        out.append(
            Claim.of(
                "saturation",
                vector,
                iv,
                where=source,
                readout=PRIMARY,
                margin=margin,
                p_equivalent_unadjusted=p_eq,
                detail=detail,
            )
        )
    return out
