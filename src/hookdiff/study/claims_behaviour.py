"""The behavioural claims, as :class:`~hookdiff.study.claim.Claim` records (no words here).

The add/subtract asymmetry of the target readout (at the steering layer and at the later one),
the published sign's effect against the mirrored sign's, the rollouts' reach rates (with the
network exact and cut at the cuts that matter), and the later layers matched to a common effect.
Each builder is ``(ds, vector, seed) -> [Claim]``; :mod:`hookdiff.study.wording` words them.
"""

from __future__ import annotations

import json
import math

import numpy as np
import xarray as xr

from hookdiff.stats import Interval, bootstrap_mean, paired_difference, rate
from hookdiff.study.claim import Claim, tolerance
from hookdiff.study.schema import SOFTMAX_READOUTS
from hookdiff.study.select import (
    cut_rollout_rates,
    even_of_target,
    exact_rollout_rates,
    later_steers,
    outcome,
    published_t,
    rollout_t,
    target_readout,
)
from hookdiff.study.targets import VECTOR_SPECS

__all__ = ["asymmetry", "cut_rollouts", "later", "matched", "published", "rollouts"]


def asymmetry(ds: xr.Dataset, vector: str, seed: int, site: str = "steering") -> list[Claim]:
    """E(1) of the target readout, in probability and log-odds (behaviour, every maze); at the
    later site the kind is ``"later"`` and ``where`` names its hook."""
    if not {-1.0, 0.0, 1.0} <= set(ds["t"].values.tolist()):
        return []
    out = []
    kind = "asymmetry" if site == "steering" else "later"
    where = None if site == "steering" else str(ds.attrs.get("later_hook", site))
    for readout in SOFTMAX_READOUTS:
        r = target_readout(ds, vector, readout, site)
        iv = bootstrap_mean(even_of_target(r, 1.0), seed=seed)
        odd = (r.sel(t=1.0) - r.sel(t=-1.0)).values
        odd = float(np.nanmean(odd)) if np.isfinite(odd).any() else None
        out.append(
            Claim.of(
                kind,
                vector,
                iv,
                readout=readout,
                t=1.0,
                where=where,
                odd=odd,
                tolerance=tolerance(r.sel(t=0.0).values),
            )
        )
    return out


def published(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """Along the published direction, how much more the published sign moves the readout than
    the mirrored sign, paired on each maze (positive: the published sign is the stronger)."""
    t_pub = published_t(ds)[vector]
    if not {t_pub, -t_pub, 0.0} <= set(ds["t"].values.tolist()):
        return []
    s = math.copysign(1.0, t_pub)
    out = []
    for readout in SOFTMAX_READOUTS:
        r = target_readout(ds, vector, readout)
        pub = (r.sel(t=t_pub) - r.sel(t=0.0)).values
        mirror = (r.sel(t=-t_pub) - r.sel(t=0.0)).values
        diff = paired_difference(s * pub, -s * mirror, seed=seed)
        detail = {
            "published_change": bootstrap_mean(pub, seed=seed),
            "mirrored_change": bootstrap_mean(mirror, seed=seed),
        }
        out.append(
            Claim.of(
                "published",
                vector,
                diff,
                readout=readout,
                t=t_pub,
                tolerance=tolerance(r.sel(t=0.0).values),
                detail=detail,
            )
        )
    return out


def rollouts(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """The rate of reaching the vector's target at the published t (Wilson), beside the rates at
    0 and the mirrored t and the paired published − unsteered difference."""
    t_pub = published_t(ds)[vector]
    if VECTOR_SPECS[vector].reach_var not in ds:
        return []
    reach = ds[VECTOR_SPECS[vector].reach_var].sel(site="steering", vector=vector)
    ts = [t for t in (t_pub, 0.0, -t_pub) if t in reach["t"].values]
    if t_pub not in ts or np.isfinite(reach.sel(t=t_pub).values).sum() == 0:
        return []
    rates = {t: rate(reach.sel(t=t).values) for t in ts}
    diff = None
    if 0.0 in rates:
        diff = paired_difference(reach.sel(t=t_pub).values, reach.sel(t=0.0).values, seed=seed)
    detail = {"rates": {f"{t:g}": iv for t, iv in rates.items()}, "published_minus_unsteered": diff}
    return [Claim.of("rollouts", vector, rates[t_pub], t=t_pub, detail=detail)]


def _rates(rates: dict[tuple[str, str], Interval]) -> dict[str, dict[str, Interval]]:
    """``{(target, sign): rate}`` as ``{target: {sign: rate}}`` (JSON keys)."""
    out: dict[str, dict[str, Interval]] = {}
    for (target, sign), iv in rates.items():
        out.setdefault(target, {})[sign] = iv
    return out


def cut_rollouts(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """Per chosen cut (``where``): the rate of reaching the vector's target at the published sign
    with the network cut there, beside every reach rate and the exact network's."""
    if VECTOR_SPECS[vector].loc_reach_var not in ds:
        return []
    t = rollout_t(ds)
    sign = "+t" if published_t(ds)[vector] > 0 else "-t"
    exact = exact_rollout_rates(ds, vector)
    out = []
    for variant, cut, rates in cut_rollout_rates(ds, vector):
        detail = {
            "variant": variant,
            "sign": sign,
            "rates": _rates(rates),
            "exact": None if exact is None else _rates(exact),
        }
        out.append(
            Claim.of(
                "cut_rollouts",
                vector,
                rates[outcome(vector), sign],
                where=cut,
                t=t if sign == "+t" else -t,
                detail=detail,
            )
        )
    return out


def later(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """The behavioural asymmetry steered at the later layer (none when it is the steering one)."""
    if ds.attrs.get("later_hook") in (None, ds.attrs.get("steering_hook")):
        return []
    return asymmetry(ds, vector, seed, site="later")


def matched(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """The latest later layer that still steers (``where``; None: none does) with its effect
    toward the published direction; ``detail["layers"]`` holds every layer's matched t."""
    steering = ds.attrs.get("steering_hook")
    layers = {}
    for layer in [str(x) for x in ds["matched_layer"].values if x != steering]:
        layers[layer] = {
            str(pos): {
                "t": float(
                    ds["matched_t"].sel(matched_layer=layer, pair_position=pos, vector=vector)
                ),
                "steers": bool(
                    int(
                        ds["still_steers"].sel(
                            matched_layer=layer, pair_position=pos, vector=vector
                        )
                    )
                ),
            }
            for pos in ds["pair_position"].values
        }
    detail = {
        "goal": float(ds["matched_goal"].sel(vector=vector)),
        "published_t": published_t(ds)[vector],
        "t_max": json.loads(ds.attrs.get("config", "{}")).get("later_max_t", math.nan),
        "layers": layers,
        "position": None,
    }
    found = later_steers(ds, vector)
    if found is None:
        iv = Interval(math.nan, math.nan, math.nan, 0)
        return [Claim.of("matched", vector, iv, readout="p", detail=detail)]
    layer, pos, t = found
    e = ds["matched_effect"].sel(matched_layer=layer, pair_position=pos, vector=vector).values
    detail["position"] = pos
    return [
        Claim.of(
            "matched",
            vector,
            bootstrap_mean(e, seed=seed),
            readout="p",
            t=t,
            where=layer,
            detail=detail,
        )
    ]
