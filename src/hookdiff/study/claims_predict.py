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

from hookdiff.stats import bootstrap_mean, paired_difference, wilson
from hookdiff.study.claim import Claim
from hookdiff.study.schema import PRIMARY, VECTOR_SOURCES
from hookdiff.study.select import loc_values, published_t, t_loc_one

__all__ = ["RULES", "acts_more", "prediction", "predictions"]

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


def prediction(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """Per vector source (``where``): the interpolation rule's accuracy minus chance (0.5),
    over mazes (bootstrap; positive: better than a coin), with each rule's accuracy (Wilson) and
    the rule's paired advantage over each trivial rule in ``detail``."""
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
        out.append(Claim.of("prediction", vector, iv, where=source, t=t_loc_one(ds), detail=detail))
    return out
