"""The study's answer: claims with 95 % intervals, read from the saved dataset alone.

:func:`answer` turns the study Dataset into a list of claims per vector, each
``{"claim": text, "estimate": x, "ci95": [lo, hi], "where": cut/layer or None, "n": mazes,
"kind": ..., "readout": ...}``, whose text follows its numbers (an interval containing 0 is
"not distinguishable from 0"). The claims, in order (:data:`KINDS`): the add/subtract asymmetry
of behaviour, where the logits' asymmetry is created (the cut scan of the margin, the log-odds
linearised in the logits), how much the softmax adds on top (the softmax-only test), which
layers carry it (knock-out, knock-in, exact kinks), whether the base swap flips it, how the
controls and the rollouts compare, what the rollouts with the network cut at the cuts that
matter do, and the later layers: the asymmetry steered at the later site, each layer's
coefficient matched to a common effect size, and the cut scan at the latest layer that still
steers. Means over mazes use the bootstrap over
mazes, comparisons are paired on the same maze, rates use Wilson intervals
(:mod:`hookdiff.stats`). A claim whose dataset variables are absent is skipped;
:func:`missing` says which, once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from hookdiff.errors import UnknownNameError, unknown_name_message
from hookdiff.stats import Interval, bootstrap_mean, paired_difference, wilson
from hookdiff.study.schema import (
    CONTROLS,
    CUT_READOUT,
    PRIMARY,
    READOUT_TEXT,
    READOUTS,
    SOFTMAX_READOUTS,
)
from hookdiff.study.select import (
    bootstrap_seed,
    created_cut,
    cut_intervals,
    even_of_target,
    layer_scan,
    loc_values,
    made_between,
    published_t,
    t_loc_one,
    target_readout,
)
from hookdiff.study.targets import VECTOR_SPECS

__all__ = [
    "CONTROLS",
    "CUT_READOUT",
    "KINDS",
    "LOGITS",
    "PRIMARY",
    "READOUTS",
    "READOUT_TEXT",
    "SOFTMAX_READOUTS",
    "answer",
    "bootstrap_seed",
    "even_of_target",
    "interval_text",
    "later_steers",
    "no_later_layer_steers",
    "layer_scan",
    "loc_values",
    "made_between",
    "missing",
    "created_cut",
    "cut_intervals",
    "cut_rollout_rates",
    "exact_rollout_rates",
    "published_t",
    "rate",
    "scaled",
    "t_loc_one",
    "target_readout",
    "verdict",
]

#: The claims in the order the answer gives them.
KINDS = (
    "asymmetry",
    "published",
    "created",
    "made",
    "softmax",
    "knockout",
    "knockin",
    "kinks",
    "base_swap",
    "distance",
    "controls",
    "rollouts",
    "cut_rollouts",
    "later",
    "matched",
    "later_created",
)
#: Dataset variables each claim reads (absent: the claim is skipped and :func:`missing` says so).
NEEDS = {
    "created": ("loc_even_cut", "loc_even"),
    "made": ("loc_even_cut", "loc_even"),
    "softmax": ("loc_even_cut", "loc_even"),
    "knockout": ("loc_even_knockout", "loc_even"),
    "knockin": ("loc_even_knockin", "loc_even"),
    "kinks": ("kink_even", "kink_even_total"),
    "base_swap": ("loc_even",),
    "distance": ("base_swap_distance",),
    "controls": ("loc_even",),
    "rollouts": ("reached_cheese", "reached_top_right"),
    "cut_rollouts": (
        "loc_roll_reached_cheese",
        "loc_roll_reached_top_right",
        "loc_roll_cut_chosen",
    ),
    "matched": ("matched_t", "matched_effect", "still_steers", "matched_goal"),
    "later_created": ("later_even_cut", "later_even", "later_scan_layer", "later_scan_t"),
}
#: The cut whose symmetrised scan point is the softmax-only test.
LOGITS = "fc_policy_out"

_CONTROL_TEXT = {
    "random": "a random direction (same norm per position)",
    "other_maze": "another maze's vector",
    "untrained": "a random-init agent (its own vectors)",
}


# --------------------------------------------------------------------------------------------
# Reading the dataset
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Words that follow the numbers
# --------------------------------------------------------------------------------------------


def interval_text(iv: Interval, digits: int = 3, signed: bool = True) -> str:
    """``"+0.123 [+0.080, +0.160]"``: the estimate and its 95 % interval."""

    bounds = [b for b in (iv.lo, iv.hi) if np.isfinite(b)]
    size = max([abs(iv.estimate), *map(abs, bounds)])
    tiny = 0 < size < 0.5 * 10.0**-digits  # would print as 0.000 [0.000, 0.000]: show its size
    f = f"{'+' if signed else ''}.{'1e' if tiny else f'{digits}f'}"
    if len(bounds) < 2:
        return f"{iv.estimate:{f}} (no interval from n = {iv.n})"
    return f"{iv.estimate:{f}} [{iv.lo:{f}}, {iv.hi:{f}}]"


def scaled(iv: Interval, s: float) -> Interval:
    """The interval of ``s`` times the quantity (bounds reordered for a negative ``s``)."""
    lo, hi = sorted((s * iv.lo, s * iv.hi))
    return Interval(s * iv.estimate, lo, hi, iv.n)


def _best(
    scan: list[tuple[str, Interval]], key: Callable[[Interval], float]
) -> tuple[str, Interval] | None:
    """The entry of ``scan`` with the largest ``key``, among those measured (None: none is)."""
    measured = [x for x in scan if x[1].n]
    return max(measured, key=lambda x: key(x[1])) if measured else None


def _count(n: int, noun: str) -> str:
    """``"1 walked maze"``, ``"8 walked mazes"``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _t_text(t: float) -> str:
    """``"+1"``, ``"−1"``, ``"0"``."""
    return "0" if t == 0 else f"{t:+g}".replace("-", "−")


def verdict(iv: Interval) -> str:
    """Where the interval lies against 0, in words."""
    if iv.n == 0:
        return "not measured"
    if iv.n < 2:
        return "one maze only, so not tested against 0"
    if not iv.excludes(0.0):
        return "not distinguishable from 0"
    return "above 0" if iv.lo > 0 else "below 0"


def _readout_text(vector: str, readout: str) -> str:
    p = f"P(toward {VECTOR_SPECS[vector].target})"
    return {
        "p": p,
        "logodds": f"the log-odds of {p}",
        "margin": f"the margin (the log-odds of {p} linearised in the logits at t = 0)",
    }[readout]


def _claim(
    kind: str, text: str, iv: Interval, where: str | None = None, readout: str | None = None
) -> dict[str, Any]:
    """One machine-readable claim (NaN as None, so run.json stays valid JSON)."""

    def num(x: float) -> float | None:
        return None if math.isnan(x) else float(x)

    return {
        "claim": text,
        "estimate": num(iv.estimate),
        "ci95": [num(iv.lo), num(iv.hi)],
        "where": where,
        "n": int(iv.n),
        "kind": kind,
        "readout": readout,
    }


# --------------------------------------------------------------------------------------------
# The claims, one builder per kind: (ds, vector, seed) -> claims
# --------------------------------------------------------------------------------------------


def _asymmetry(ds: xr.Dataset, vector: str, seed: int, site: str = "steering") -> list[dict]:
    """E(1) of the target readout, in probability and log-odds (behaviour, every maze)."""
    if not {-1.0, 0.0, 1.0} <= set(ds["t"].values.tolist()):
        return []
    out = []
    kind = "asymmetry" if site == "steering" else "later"
    where = None if site == "steering" else str(ds.attrs.get("later_hook", site))
    for readout in SOFTMAX_READOUTS:
        iv = bootstrap_mean(
            even_of_target(target_readout(ds, vector, readout, site), 1.0), seed=seed
        )
        at = "" if where is None else f" steered at the later layer `{where}`"
        text = (
            f"Add/subtract asymmetry of the {VECTOR_SPECS[vector].label} vector{at} at |t| = 1: "
            f"E = r(+1) + r(−1) − 2r(0) of {_readout_text(vector, readout)} = "
            f"{interval_text(iv)} (n = {iv.n} mazes), {verdict(iv)}."
        )
        out.append(_claim(kind, text, iv, where, readout))
    return out


def _published(ds: xr.Dataset, vector: str, seed: int) -> list[dict]:
    """The published coefficient's effect against the mirrored one's, paired on each maze."""
    t_pub = published_t(ds)[vector]
    if not {t_pub, -t_pub, 0.0} <= set(ds["t"].values.tolist()):
        return []
    s = math.copysign(1.0, t_pub)
    out = []
    for readout in SOFTMAX_READOUTS:
        r = target_readout(ds, vector, readout)
        pub, mirror = (
            (r.sel(t=t_pub) - r.sel(t=0.0)).values,
            (r.sel(t=-t_pub) - r.sel(t=0.0)).values,
        )
        diff = paired_difference(s * pub, -s * mirror, seed=seed)
        stronger = {
            "above 0": "the published sign is the stronger",
            "below 0": "the mirrored sign is the stronger",
        }.get(verdict(diff), "the two signs are not distinguishable in size")
        text = (
            f"The published t = {_t_text(t_pub)} changes {_readout_text(vector, readout)} by "
            f"{interval_text(bootstrap_mean(pub, seed=seed))}, t = {_t_text(-t_pub)} by "
            f"{interval_text(bootstrap_mean(mirror, seed=seed))}; along the published direction "
            f"the published sign moves it more by {interval_text(diff)} (paired, n = {diff.n}): "
            f"{stronger}."
        )
        out.append(_claim("published", text, diff, None, readout))
    return out


def _created(ds: xr.Dataset, vector: str, seed: int) -> list[dict]:
    """Per variant: the first cut where the cut network's E of the margin is indistinguishable
    from 0 (the logits' asymmetry is created before it); one claim when there is no E."""
    t = t_loc_one(ds)
    exact = _exact(ds, vector, t, seed, readout=CUT_READOUT)
    if not exact.excludes(0.0):
        text = (
            f"The exact even part E({t:g}) of {_readout_text(vector, CUT_READOUT)} is "
            f"{interval_text(exact)} (n = {exact.n}), not distinguishable from 0: the logits "
            f"carry no asymmetry to locate at this n, so neither scan names a cut."
        )
        return [_claim("created", text, exact, None, CUT_READOUT)]
    out = []
    for variant in ("symmetrize", "linearize"):
        scan = cut_intervals(ds, vector, variant, CUT_READOUT, t, seed)
        text, where, iv = _created_text(scan, variant, vector, CUT_READOUT, t)
        out.append(_claim("created", text, iv, where, CUT_READOUT))
    return out


def _made(ds: xr.Dataset, vector: str, seed: int) -> list[dict]:
    """Between which consecutive cuts the largest part of the margin's asymmetry is made."""
    t = t_loc_one(ds)
    exact = _exact(ds, vector, t, seed, readout=CUT_READOUT)
    steps = made_between(ds, vector, t, seed)
    if not exact.n or not exact.excludes(0.0):
        return []
    sign = float(np.sign(exact.estimate))
    best = _best(steps, lambda x: sign * x.estimate)
    if best is None:
        return []
    span, iv = best
    share = iv.estimate / exact.estimate
    text = (
        f"Most of the asymmetry in the logits is made between `{span.replace(' → ', '` and `')}`"
        f": the paired drop of the symmetrised E({t:g}) of the margin there is "
        f"{interval_text(iv)} (n = {iv.n}), {share:.0%} of the exact {interval_text(exact)}"
        f" ({verdict(iv)}); the steps between consecutive cuts add up to the exact E."
    )
    return [_claim("made", text, iv, span, CUT_READOUT)]


def _created_text(
    scan: list[tuple[str, Interval]], variant: str, vector: str, readout: str, t: float
) -> tuple[str, str | None, Interval]:
    """The sentence of one cut scan, the cut it names (None: none) and that cut's interval."""
    verb = {"symmetrize": "Symmetrised", "linearize": "Linearised"}[variant]
    what = f"the even part E({t:g}) of {_readout_text(vector, readout)}"
    first, dips = created_cut(scan)
    if first is None:
        cut, iv = scan[-1]
        text = (
            f"{verb} at the last cut `{cut}`, {what} stays distinguishable from 0 "
            f"({interval_text(iv)}, n = {iv.n}): part of the asymmetry in the logits is made "
            f"after the last cut, by what follows `{cut}`."
        )
        return text, None, iv
    cut, iv = scan[first]
    before = (
        "between the steering layer and it"
        if first == 0
        else f"between `{scan[first - 1][0]}` (where {verb.lower()} it is still "
        f"{interval_text(scan[first - 1][1])}) and `{cut}`"
    )
    text = (
        f"{verb} at `{cut}`, {what} is {interval_text(iv)} (n = {iv.n}), and it stays not "
        f"distinguishable from 0 at every later cut: the asymmetry in the logits is complete "
        f"at `{cut}`, its last part made {before} (see the next claim for where most of it "
        f"is made)."
    )
    if dips:
        text += (
            f" Not monotone: at {', '.join(f'`{d}`' for d in dips)} it is also not "
            f"distinguishable from 0, yet distinguishable again at a later cut, so "
            f"{'that cut does' if len(dips) == 1 else 'those cuts do'} not mark where it is made."
        )
    return text, cut, iv


def _softmax(ds: xr.Dataset, vector: str, seed: int) -> list[dict]:
    """The softmax-only test: how much the softmax adds on a symmetrised logit response (E with
    the logits symmetrised), against the exact E, paired; beside the logits' own (margin) E."""
    if LOGITS not in ds["cut"].values:
        return []
    t, out = t_loc_one(ds), []
    logits_e = _exact(ds, vector, t, seed, readout=CUT_READOUT)
    for readout in SOFTMAX_READOUTS:
        soft = loc_values(
            ds, "loc_even_cut", vector, t, variant="symmetrize", cut=LOGITS, readout=readout
        )
        exact = loc_values(ds, "loc_even", vector, t, control="vector", readout=readout)
        diff = paired_difference(exact, soft, seed=seed)
        ivs = (bootstrap_mean(soft, seed=seed), bootstrap_mean(exact, seed=seed), diff)
        text = (
            f"Softmax-only test ({_readout_text(vector, readout)}, t = {t:g}): with the logits' "
            f"response symmetrised at `{LOGITS}`, the softmax alone makes E = "
            f"{interval_text(ivs[0])}; the exact network's E = {interval_text(ivs[1])}; the "
            f"difference exact − softmax-only = {interval_text(diff)} (paired, n = {diff.n}) is "
            f"{verdict(diff)}: {_softmax_reading(*ivs)}. The logits' own asymmetry, read on the "
            f"margin, is E = {interval_text(logits_e)}."
        )
        out.append(_claim("softmax", text, diff, LOGITS, readout))
    return out


def _softmax_reading(soft: Interval, exact: Interval, diff: Interval) -> str:
    """What the softmax-only test says, from its three intervals."""
    if not exact.excludes(0.0):
        return "there is no asymmetry distinguishable from 0 to explain at this n"
    if diff.excludes(0.0):
        return "the softmax alone does not explain it; the logits' own even part adds to it"
    if soft.excludes(0.0):
        return "a logit response without even part plus the softmax already explains it"
    return "neither part is distinguishable from 0, so this n cannot tell"


def _exact(
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


def _knockout(ds: xr.Dataset, vector: str, seed: int) -> list[dict]:
    """The layer whose freezing alone lowers E the most (paired drop, with its interval)."""
    t = t_loc_one(ds)
    scan = layer_scan(ds, "loc_even_knockout", vector, PRIMARY, t, seed)
    exact = _exact(ds, vector, t, seed)
    sign = 1.0 if exact.estimate >= 0 else -1.0
    best = _best([(x, scaled(c, -sign)) for x, c in scan], lambda iv: iv.estimate)
    if best is None:
        return []
    layer, drop = best
    text = (
        f"Knock-out ({_readout_text(vector, PRIMARY)}, t = {t:g}): freezing `{layer}` alone at its "
        f"t = 0 pattern shrinks the asymmetry (toward 0) by {interval_text(drop)} (paired, "
        f"n = {drop.n}), {verdict(drop)}; the largest drop of the {len(scan)} layers (exact E = "
        f"{interval_text(exact)})."
    )
    return [_claim("knockout", text, drop, layer, PRIMARY)]


def _knockin(ds: xr.Dataset, vector: str, seed: int) -> list[dict]:
    """The layer that, left alone free, keeps the most of E."""
    t = t_loc_one(ds)
    exact = _exact(ds, vector, t, seed)
    sign = 1.0 if exact.estimate >= 0 else -1.0
    kept = [
        (str(layer), bootstrap_mean(
            loc_values(ds, "loc_even_knockin", vector, t, frozen_layer=layer, readout=PRIMARY),
            seed=seed,
        ))
        for layer in ds["frozen_layer"].values
    ]  # fmt: skip
    best = _best(kept, lambda iv: sign * iv.estimate)
    if best is None:
        return []
    layer, iv = best
    share = f"{iv.estimate / exact.estimate:.0%} of" if exact.excludes(0.0) else "against"
    text = (
        f"Knock-in ({_readout_text(vector, PRIMARY)}, t = {t:g}): with only `{layer}` free (every "
        f"other relu / maxpool layer frozen at t = 0), E = {interval_text(iv)} (n = {iv.n}), "
        f"{verdict(iv)}; {share} the exact E {interval_text(exact)}, the most of any single "
        f"layer."
    )
    return [_claim("knockin", text, iv, layer, PRIMARY)]


def _kinks(ds: xr.Dataset, vector: str, seed: int) -> list[dict]:
    """The layer whose exact kinks carry the largest share of the even part (walked mazes)."""
    t = t_loc_one(ds)
    total_v = ds["kink_even_total"].sel(vector=vector, t_loc=t).values
    walked = np.isfinite(total_v)
    total = bootstrap_mean(total_v, seed=seed)
    per = [
        (str(layer), bootstrap_mean(
            ds["kink_even"].sel(vector=vector, t_loc=t, frozen_layer=layer).values[walked],
            seed=seed,
        ))
        for layer in ds["frozen_layer"].values
    ]  # fmt: skip
    best = _best(per, lambda iv: abs(iv.estimate))
    if best is None:
        return []
    layer, iv = best
    share = iv.estimate / total.estimate if total.estimate else math.nan
    text = (
        f"Exact kink attribution (even part at t = {t:g} of the margin, the log-odds readout "
        f"linearised in the logits, on {_count(int(walked.sum()), 'walked maze')}): `{layer}` carries "
        f"{interval_text(iv)} of the total {interval_text(total)}, {share:.0%} of it, the most "
        f"of any layer{_kink_check(ds, vector, t, total_v)}."
    )
    return [_claim("kinks", text, iv, layer, CUT_READOUT)]


def _kink_check(ds: xr.Dataset, vector: str, t: float, total: np.ndarray) -> str:
    """``"; the sum matches the directly evaluated even part within 1e-09"`` (if recorded)."""
    if "kink_even_direct" not in ds:
        return ""
    direct = ds["kink_even_direct"].sel(vector=vector, t_loc=t).values
    ok = np.isfinite(direct) & np.isfinite(total)
    if not ok.any():
        return ""
    gap = float(np.max(np.abs(direct[ok] - total[ok])))
    return f"; the sum matches the directly evaluated even part within {gap:.1e}"


def _base_swap(ds: xr.Dataset, vector: str, seed: int) -> list[dict]:
    """E with the vector added at the paired base, against E on the maze's own base."""
    if "base_swap" not in ds["control"].values:
        return []
    t = t_loc_one(ds)
    own, swap = (_exact(ds, vector, t, seed, c) for c in ("vector", "base_swap"))
    vals = [
        loc_values(ds, "loc_even", vector, t, control=c, readout=PRIMARY)
        for c in ("base_swap", "vector")
    ]
    change = paired_difference(*vals, seed=seed)
    if own.excludes(0.0) and swap.excludes(0.0):
        fate = "flips sign" if own.estimate * swap.estimate < 0 else "keeps its sign"
    else:
        bases = [b for b, iv in (("its own", own), ("the swapped", swap)) if not iv.excludes(0.0)]
        fate = f"is not distinguishable from 0 on {' and '.join(bases)} base"
    text = (
        f"Base swap ({_readout_text(vector, PRIMARY)}, t = {t:g}): added to "
        f"{VECTOR_SPECS[vector].swapped_base}, the {VECTOR_SPECS[vector].label} vector gives E = {interval_text(swap)} "
        f"against "
        f"{interval_text(own)} on its own maze (n = {swap.n}); paired change "
        f"{interval_text(change)}, {verdict(change)}; the asymmetry {fate}."
    )
    return [_claim("base_swap", text, swap, None, PRIMARY)]


def _distance(ds: xr.Dataset, vector: str, seed: int) -> list[dict]:
    """‖a ± v − a_paired‖ / ‖a_paired − a‖: which sign interpolates toward the paired real state."""
    d = {s: ds["base_swap_distance"].sel(vector=vector, sign=s).values for s in ("+t", "-t")}
    plus, minus = (bootstrap_mean(d[s], seed=seed) for s in ("+t", "-t"))
    diff = paired_difference(d["+t"], d["-t"], seed=seed)
    reading = {
        "below 0": "+v moves toward the paired real state (interpolates), −v away (extrapolates)",
        "above 0": "−v moves toward the paired real state (interpolates), +v away (extrapolates)",
    }.get(verdict(diff), "neither sign is closer to the paired real state")
    text = (
        f"Distance of the vector added to its own maze from the paired real activation at the "
        f"decision square, relative to "
        f"‖a_paired − a‖: {interval_text(plus)} for a + v, {interval_text(minus)} for a − v; "
        f"paired difference {interval_text(diff)} (n = {diff.n}), {verdict(diff)}: {reading}."
    )
    return [_claim("distance", text, diff, None, None)]


def _controls(ds: xr.Dataset, vector: str, seed: int) -> list[dict]:
    """E for each control against E for the maze's own vector, paired on the maze."""
    t, out = t_loc_one(ds), []
    own = loc_values(ds, "loc_even", vector, t, control="vector", readout=PRIMARY)
    for control in [c for c in CONTROLS if c in ds["control"].values]:
        e = loc_values(ds, "loc_even", vector, t, control=control, readout=PRIMARY)
        iv = bootstrap_mean(e, seed=seed)
        if iv.n == 0:
            continue
        diff = paired_difference(own, e, seed=seed)
        text = (
            f"Control, {_CONTROL_TEXT[control]} ({_readout_text(vector, PRIMARY)}, t = {t:g}): "
            f"E = {interval_text(iv)} (n = {iv.n}), {verdict(iv)}; the maze's own vector minus "
            f"the control = {interval_text(diff)} (paired, n = {diff.n}), {verdict(diff)}."
        )
        out.append(_claim("controls", text, iv, control, PRIMARY))
    return out


def _rollouts(ds: xr.Dataset, vector: str, seed: int) -> list[dict]:
    """Rates of reaching the target in rollouts at the published t, 0 and the mirrored t."""
    t_pub = published_t(ds)[vector]
    reach = ds[VECTOR_SPECS[vector].reach_var].sel(site="steering", vector=vector)
    ts = [t for t in (t_pub, 0.0, -t_pub) if t in reach["t"].values]
    if t_pub not in ts or np.isfinite(reach.sel(t=t_pub).values).sum() == 0:
        return []
    rates = {}
    for t in ts:
        x = reach.sel(t=t).values
        x = x[np.isfinite(x)]
        rates[t] = wilson(int(x.sum()), int(x.size))
    parts = [
        f"t = {_t_text(t)}: {interval_text(w, 2, False)} (n = {w.n})" for t, w in rates.items()
    ]
    text = f"Rollouts, rate of reaching {VECTOR_SPECS[vector].target} (Wilson 95 %): " + "; ".join(parts)
    if 0.0 in rates:
        diff = paired_difference(reach.sel(t=t_pub).values, reach.sel(t=0.0).values, seed=seed)
        text += (
            f"; published minus unsteered {interval_text(diff, 2)} (paired, n = {diff.n}), "
            f"{verdict(diff)}"
        )
    return [_claim("rollouts", text + ".", rates[t_pub], None, None)]


def rate(x: np.ndarray) -> Interval:
    """The rate of 1s among the finite entries of ``x`` (rolled-out mazes), with Wilson's interval."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return wilson(int(x.sum()), int(x.size))


def cut_rollout_rates(ds: xr.Dataset, vector: str) -> list[tuple[str, str, dict]]:
    """``(variant, cut, {(target, sign): rate})`` for each cut the vector's rollouts were cut at.

    ``target`` is ``"cheese"`` or ``"top_right"`` (what was reached), ``sign`` ``"+t"`` / ``"-t"``;
    each rate is a Wilson interval over the rolled-out mazes. With ``sign``, the exact network's
    rates on the same mazes at the same ±t come under ``cut = "exact"`` when the dataset has them.
    """
    chosen = ds["loc_roll_cut_chosen"].sel(vector=vector)
    out = []
    for variant in [str(v) for v in ds["variant"].values]:
        for cut in [str(c) for c in ds["cut"].values if chosen.sel(cut=c) == 1]:
            rates = {
                (target, sign): rate(ds[VECTOR_SPECS[target].loc_reach_var].sel(
                    vector=vector, variant=variant, cut=cut, sign=sign).values)
                for target in VECTOR_SPECS for sign in ("+t", "-t")
            }  # fmt: skip
            if any(r.n for r in rates.values()):
                out.append((variant, cut, rates))
    return out


def exact_rollout_rates(ds: xr.Dataset, vector: str) -> dict[tuple[str, str], Interval] | None:
    """The exact network's reach rates at ±t (t of the cut rollouts) on the cut rollouts' mazes
    (None where the study's own rollouts did not cover ±t there)."""
    t = float(ds.attrs.get("loc_roll_t", t_loc_one(ds)))
    if not {t, -t} <= set(ds["t"].values.tolist()):
        return None
    rolled = np.isfinite(ds["loc_roll_reached_cheese"].sel(vector=vector)).any(
        [d for d in ds["loc_roll_reached_cheese"].dims if d not in ("vector", "maze")]
    )
    rates = {
        (target, sign): rate(ds[VECTOR_SPECS[target].reach_var].sel(site="steering", vector=vector,
                                                     t=s * t).values[rolled.values])
        for target in VECTOR_SPECS for sign, s in (("+t", 1.0), ("-t", -1.0))
    }  # fmt: skip
    return rates if all(r.n for r in rates.values()) else None


def _rates_text(rates: dict[tuple[str, str], Interval]) -> str:
    """``"cheese +t 0.50 [0.09, 0.91], −t …; top-right +t …"`` (Wilson 95 %)."""
    return "; ".join(
        VECTOR_SPECS[target].label + " " + ", ".join(
            f"{sign.replace('-', '−')} {interval_text(rates[target, sign], 2, False)}"
            for sign in ("+t", "-t")
        )
        for target in VECTOR_SPECS
    )  # fmt: skip


def _cut_rollouts(ds: xr.Dataset, vector: str, seed: int) -> list[dict]:
    """Reach rates at ±t with the network cut at each chosen cut, beside the exact network's."""
    t = float(ds.attrs.get("loc_roll_t", t_loc_one(ds)))
    published = "+t" if published_t(ds)[vector] > 0 else "-t"
    exact = exact_rollout_rates(ds, vector)
    out = []
    for variant, cut, rates in cut_rollout_rates(ds, vector):
        iv = rates[vector, published]
        verb = {"symmetrize": "symmetrised", "linearize": "linearised"}[variant]
        text = (
            f"Rollouts of the {VECTOR_SPECS[vector].label} vector at t = ±{t:g} with the network {verb} at "
            f"`{cut}` (n = {iv.n} mazes): it reaches {VECTOR_SPECS[vector].target} at the published sign "
            f"{published.replace('-', '−')} in {interval_text(iv, 2, False)} (Wilson 95 %); "
            f"reach rates {_rates_text(rates)}"
        )
        if exact is not None:
            text += f"; the exact network on the same mazes: {_rates_text(exact)}"
        out.append(_claim("cut_rollouts", text + ".", iv, cut, None))
    return out


def _later(ds: xr.Dataset, vector: str, seed: int) -> list[dict]:
    """The behavioural asymmetry steered at the later layer (none when it is the steering one)."""
    if ds.attrs.get("later_hook") in (None, ds.attrs.get("steering_hook")):
        return []
    return _asymmetry(ds, vector, seed, site="later")


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


def _matched(ds: xr.Dataset, vector: str, seed: int) -> list[dict]:
    """The matched coefficient of every later layer and the latest layer that still steers."""
    goal = float(ds["matched_goal"].sel(vector=vector))
    steering = ds.attrs.get("steering_hook")
    parts = []
    for layer in [str(x) for x in ds["matched_layer"].values if x != steering]:
        ts = [
            f"{pos.replace('_', '-')} pairs t = " + _t_or_none(
                float(ds["matched_t"].sel(matched_layer=layer, pair_position=pos, vector=vector)))
            + ("" if int(ds["still_steers"].sel(matched_layer=layer, pair_position=pos,
                                                vector=vector)) else " (does not steer)")
            for pos in [str(p) for p in ds["pair_position"].values]
        ]  # fmt: skip
        parts.append(f"`{layer}`: {', '.join(ts)}")
    t_max = json.loads(ds.attrs.get("config", "{}")).get("later_max_t", math.nan)
    lead = (
        f"Later layers, each coefficient matched to the steering layer's mean |effect| on "
        f"P(toward {VECTOR_SPECS[vector].target}) at t = {_t_text(published_t(ds)[vector])} "
        f"({goal:.3f}): {'; '.join(parts) or 'no later candidate'}. A layer still steers when "
        f"the match is reached within |t| ≤ {t_max:g} and the effect toward the published "
        f"direction has its 95 % interval above 0."
    )
    found = later_steers(ds, vector)
    if found is None:
        iv = Interval(math.nan, math.nan, math.nan, 0)
        return [_claim("matched", lead + " No later layer still steers.", iv, None, "p")]
    layer, pos, t = found
    e = ds["matched_effect"].sel(matched_layer=layer, pair_position=pos, vector=vector).values
    iv = bootstrap_mean(e, seed=seed)
    text = (
        f"{lead} The latest that still steers is `{layer}` ({pos.replace('_', '-')} pairs, "
        f"|t| = {t:.3g}): effect toward the published direction {interval_text(iv)} "
        f"(n = {iv.n})."
    )
    if pos == "decision_square":
        text += (
            " A maze's own decision-square pair makes the published sign at |t| = 1 its paired "
            "real state's activation at any layer, so a match near |t| = 1 is by construction."
        )
    return [_claim("matched", text, iv, layer, "p")]


def _t_or_none(t: float) -> str:
    """``"+1.23"`` or ``"not reached"``."""
    return f"{t:+.3g}".replace("-", "−") if np.isfinite(t) else "not reached"


def _later_created(ds: xr.Dataset, vector: str, seed: int) -> list[dict]:
    """The cut scan at the latest layer that still steers, read like the steering layer's."""
    found = later_steers(ds, vector)
    if found is None:
        return []
    layer, _, t = found
    exact = bootstrap_mean(
        ds["later_even"].sel(vector=vector, readout=CUT_READOUT).values, seed=seed
    )
    at = f"At the later layer `{layer}` (t = ±{t:.3g}): the exact E = {interval_text(exact)}, "
    if not exact.excludes(0.0):
        text = at + f"{verdict(exact)}, so there is no asymmetry to locate there."
        return [_claim("later_created", text, exact, layer, CUT_READOUT)]
    e = ds["later_even_cut"].sel(vector=vector, variant="symmetrize", readout=CUT_READOUT)
    scan = [
        (str(c), bootstrap_mean(e.sel(later_cut=c).values, seed=seed))
        for c in ds["later_cut"].values
        if np.isfinite(e.sel(later_cut=c).values).any()
    ]
    text, where, iv = _created_text(scan, "symmetrize", vector, CUT_READOUT, float(f"{t:.3g}"))
    return [_claim("later_created", at + text[0].lower() + text[1:], iv, where, CUT_READOUT)]


_BUILDERS: dict[str, Callable[[xr.Dataset, str, int], list[dict]]] = {
    "asymmetry": _asymmetry,
    "published": _published,
    "created": _created,
    "made": _made,
    "softmax": _softmax,
    "knockout": _knockout,
    "knockin": _knockin,
    "kinks": _kinks,
    "base_swap": _base_swap,
    "distance": _distance,
    "controls": _controls,
    "rollouts": _rollouts,
    "cut_rollouts": _cut_rollouts,
    "later": _later,
    "matched": _matched,
    "later_created": _later_created,
}


def answer(ds: xr.Dataset, *, seed: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """The study's claims per vector, each number with its 95 % interval and sample size.

    Args:
        ds: the study dataset (as saved in ``study.nc``).
        seed: bootstrap seed (default: the study's analysis seed), so the answer is reproducible.

    Returns:
        ``{vector: [claim, ...]}`` for ``vector`` in the dataset's vectors, claims in the order of
        :data:`KINDS`; each claim is ``{"claim", "estimate", "ci95", "where", "n", "kind",
        "readout"}``. Claims whose variables are absent are left out (:func:`missing`).

    Usage: ``answer(load_dataset("runs/study"))["cheese"][0]["claim"]`` after ``hookdiff study``
    gives e.g. ``'Add/subtract asymmetry of the cheese vector at |t| = 1: E = ...'``.
    """
    seed = bootstrap_seed(ds) if seed is None else int(seed)
    absent = {kind for kind, needs in NEEDS.items() if any(v not in ds for v in needs)}
    out: dict[str, list[dict[str, Any]]] = {}
    vectors = ds["vector"].values if "vector" in ds.coords else []  # a dataset with no vectors
    for vector in [str(v) for v in vectors]:
        if vector not in VECTOR_SPECS:
            raise UnknownNameError(
                unknown_name_message("study vector", vector, list(VECTOR_SPECS))
            )
        out[vector] = [
            claim
            for kind in KINDS
            if kind not in absent
            for claim in _BUILDERS[kind](ds, vector, seed)
        ]
    return out


def missing(ds: xr.Dataset) -> list[str]:
    """What the answer cannot say for this dataset, in a phrase or two (the report says it once)."""
    kinds = [kind for kind, needs in NEEDS.items() if any(v not in ds for v in needs)]
    absent = sorted({v for kind in kinds for v in NEEDS[kind] if v not in ds})
    out = [f"{', '.join(kinds)} (the dataset has no {', '.join(absent)})"] if kinds else []
    if "loc_even" in ds:
        have = set(ds["control"].values.tolist())
        gone = [
            c
            for c in ("base_swap", *CONTROLS)
            if c not in have or ds["loc_even"].sel(control=c).isnull().all()
        ]
        if gone:
            out.append(f"controls {', '.join(gone)} (not measured)")
    return out
