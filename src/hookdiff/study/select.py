"""Pure readers of a study dataset: the values, intervals and choices the answer is made of.

Every function here reads a saved :class:`xarray.Dataset` and returns numbers or intervals; none
words anything. The measuring steps that need a decision from data measured earlier (which cuts
to roll out) and the answer that words it both read it from here, so they cannot disagree.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from hookdiff.stats import Interval, bootstrap_mean, log_odds, paired_difference
from hookdiff.study.schema import CUT_READOUT
from hookdiff.study.targets import VECTOR_SPECS

__all__ = [
    "bootstrap_seed",
    "created_cut",
    "cut_intervals",
    "even_of_target",
    "layer_scan",
    "loc_values",
    "made_between",
    "published_t",
    "t_loc_one",
    "target_readout",
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
    """The localisation's t closest to 1 (the published |t|)."""
    ts = np.asarray(ds["t_loc"].values, dtype=float)
    return float(ts[np.argmin(np.abs(ts - 1.0))])


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
