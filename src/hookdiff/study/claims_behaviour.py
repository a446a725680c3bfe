"""The behavioural claims, as :class:`~hookdiff.claim.Claim` records (no words here).

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

from hookdiff.claim import Claim, tolerance
from hookdiff.stats import Interval, bootstrap_mean, paired_difference, rate
from hookdiff.study.schema import SOFTMAX_READOUTS
from hookdiff.study.select import (
    cut_maze_rates,
    cut_rollout_rates,
    episodes_per_maze,
    even_of_target,
    exact_rollout_rates,
    later_steers,
    maze_rates,
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
    base = target_readout(ds, vector, "logodds", site).sel(t=0.0).values
    for readout in SOFTMAX_READOUTS:
        r = target_readout(ds, vector, readout, site)
        e = even_of_target(r, 1.0)
        iv = bootstrap_mean(e, seed=seed)
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
                detail={"by_baseline": by_baseline(e, base, seed)},
            )
        )
    return out


def by_baseline(e: np.ndarray, base: np.ndarray, seed: int, k: int = 3) -> list[dict]:
    """E per ``k``-tile (default terciles) of the baseline log-odds r(0) over mazes: ``[{"r0":
    [lo, hi], "e": interval}]``, lowest r(0) first, each stratum with its own interval (a
    heavy-tailed E can come from the mazes the agent already barely takes the step in).

    Example:
        >>> got = by_baseline(np.arange(9.0), np.arange(9.0), seed=0)
        >>> [(g["r0"], g["e"].estimate, g["e"].n) for g in got]
        [([0.0, 2.0], 1.0, 3), ([3.0, 5.0], 4.0, 3), ([6.0, 8.0], 7.0, 3)]
    """
    ok = np.isfinite(e) & np.isfinite(base)
    if ok.sum() < k:
        return []
    e, base = e[ok], base[ok]
    order = np.argsort(base, kind="stable")
    return [
        {"r0": [float(base[g].min()), float(base[g].max())], "e": bootstrap_mean(e[g], seed=seed)}
        for g in np.array_split(order, k)
    ]


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
    """The paired asymmetry of the rate of reaching the vector's target, at |t| = |published t|.

    Per maze, the reach rate over its seeded episodes (the same seeds at every t) gives
    E = rate(+t) + rate(−t) − 2·rate(0); the estimate is its mean over mazes with a bootstrap
    interval over mazes (paired), ``odd`` the mean rate(+t) − rate(−t). Beside it: the Wilson
    rates at the published t, 0 and the mirrored t (every episode counted) and the paired
    published − unsteered effect per maze.
    """
    t_pub = published_t(ds)[vector]
    if VECTOR_SPECS[vector].reach_var not in ds:
        return []
    reach = ds[VECTOR_SPECS[vector].reach_var].sel(site="steering", vector=vector)
    ts = (t_pub, 0.0, -t_pub)
    if not set(ts) <= set(reach["t"].values.tolist()):
        return []
    per = {t: maze_rates(reach.sel(t=t)) for t in ts}
    if not np.isfinite(per[t_pub]).any():
        return []
    e = per[t_pub] + per[-t_pub] - 2 * per[0.0]
    s = math.copysign(1.0, t_pub)
    k = episodes_per_maze(ds)
    detail = {
        "rates": {f"{t:g}": rate(reach.sel(t=t).values) for t in ts},
        "published_t": t_pub,
        "published_minus_unsteered": paired_difference(per[t_pub], per[0.0], seed=seed),
        "episodes_per_maze": k,
    }
    odd = s * (per[t_pub] - per[-t_pub])
    return [
        Claim.of(
            "rollouts",
            vector,
            bootstrap_mean(e, seed=seed),
            t=abs(t_pub),
            odd=float(np.nanmean(odd)) if np.isfinite(odd).any() else None,
            detail=detail,
            episodes_per_maze=k,
        )
    ]


def _rates(rates: dict[tuple[str, str], Interval]) -> dict[str, dict[str, Interval]]:
    """``{(target, sign): rate}`` as ``{target: {sign: rate}}`` (JSON keys)."""
    out: dict[str, dict[str, Interval]] = {}
    for (target, sign), iv in rates.items():
        out.setdefault(target, {})[sign] = iv
    return out


def _exact_paired(ds: xr.Dataset, vector: str, rolled: np.ndarray, seed: int) -> Interval | None:
    """The exact network's paired E of reach rates at ±t (the cut rollouts' t) on ``rolled``."""
    t, reach = rollout_t(ds), ds[VECTOR_SPECS[vector].reach_var]
    if not {t, -t, 0.0} <= set(reach["t"].values.tolist()):
        return None
    at = reach.sel(site="steering", vector=vector)
    per = {x: maze_rates(at.sel(t=x))[: rolled.size] for x in (t, -t, 0.0)}
    e = np.where(rolled, per[t] + per[-t] - 2 * per[0.0], np.nan)
    return bootstrap_mean(e, seed=seed)


def cut_rollouts(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """Per chosen cut (``where``): the paired E of the rate of reaching the vector's target with
    the network cut there, E = rate(+t) + rate(−t) − 2·rate(0) per maze (its own t = 0 arm,
    the same episode seeds), mean over mazes with a bootstrap interval; beside it every Wilson
    reach rate, the published sign's paired effect rate(t_pub) − rate(0) and the exact
    network's paired E on the same mazes."""
    if VECTOR_SPECS[vector].loc_reach_var not in ds:
        return []
    t = rollout_t(ds)
    sign = "+t" if published_t(ds)[vector] > 0 else "-t"
    exact = exact_rollout_rates(ds, vector)
    k = episodes_per_maze(ds)
    out = []
    for variant, cut, rates in cut_rollout_rates(ds, vector):
        per = cut_maze_rates(ds, vector, variant, cut, outcome(vector))
        if per is None:
            continue
        rolled = np.isfinite(per["+t"])
        zero = rate(
            ds[f"loc_roll_base_{VECTOR_SPECS[vector].reach_var}"]
            .sel(vector=vector, variant=variant, cut=cut)
            .values
        )
        detail = {
            "variant": variant,
            "sign": sign,
            "rates": _rates(rates | {(outcome(vector), "0"): zero}),
            "published_minus_unsteered": paired_difference(per[sign], per["0"], seed=seed),
            "exact": None if exact is None else _rates(exact),
            "exact_e": _exact_paired(ds, vector, rolled, seed),
            "episodes_per_maze": k,
        }
        out.append(
            Claim.of(
                "cut_rollouts",
                vector,
                bootstrap_mean(per["+t"] + per["-t"] - 2 * per["0"], seed=seed),
                where=cut,
                t=t,
                odd=float(np.nanmean(per["+t"] - per["-t"])) if rolled.any() else None,
                detail=detail,
                episodes_per_maze=k,
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
        # measured, and nothing found: not "not measured"
        detail["empty"] = "no later layer still steers"
        return [Claim.of("matched", vector, iv, readout="p", detail=detail)]
    layer, pos, t = found
    at = dict(matched_layer=layer, pair_position=pos, vector=vector)
    detail["position"] = pos
    return [
        Claim.of(
            "matched",
            vector,
            bootstrap_mean(ds["matched_effect"].sel(**at).values, seed=seed),
            readout="p",
            t=t,
            where=layer,
            detail=detail | _search_family(ds),
            **_search_p(ds, at),
        )
    ]


def _search_p(ds: xr.Dataset, at: dict[str, str]) -> dict[str, float]:
    """``{"p_zero": …}``: the test the search for the layer decided by, adjusted over the whole
    matching (``still_steers_p``), so the claim's verdict is the search's; ``{}`` for a dataset
    saved before the matching carried it (its claim joins the answer's family instead)."""
    return {"p_zero": float(ds["still_steers_p"].sel(**at))} if "still_steers_p" in ds else {}


def _search_family(ds: xr.Dataset) -> dict[str, str]:
    """``{"family": …}`` naming the Holm family of :func:`_search_p` and its size."""
    if "still_steers_p" not in ds:
        return {}
    n = int(np.isfinite(ds["still_steers_p"].values).sum())
    return {"family": f"Holm over the run's {n} later-layer matchings (layers × origins × vectors)"}
