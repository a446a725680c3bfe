"""The localisation's claims, as :class:`~hookdiff.claim.Claim` records (no words here).

Where the logits' asymmetry is created (the cut scan of the margin) and made (between which
cuts), how much the softmax adds (the softmax-only test), which layers carry it (knock-out,
knock-in, exact kinks), whether it follows the base (base swap, distances), how it compares with
the controls, and the cut scan at the latest later layer that still steers. Each builder is
``(ds, vector, seed) -> [Claim]``; :mod:`hookdiff.study.wording` words them.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from hookdiff.claim import ALPHA, Claim, verdict_of
from hookdiff.stats import Interval, bootstrap_mean, paired_difference, tost_p
from hookdiff.study.claims_controls import (
    KILLS_STEERING,
    asymmetry_index,
    index_mean,
    steering_kept,
)
from hookdiff.study.schema import (
    CONTROLS,
    CUT_READOUT,
    PRIMARY,
    SOFTMAX_READOUTS,
    VECTOR_SOURCES,
)
from hookdiff.study.select import (
    ScanTests,
    best,
    creation_cut,
    cut_intervals,
    equivalence_margin,
    exact_even,
    later_scan_tests,
    later_steers,
    layer_scan,
    loc_values,
    made_between,
    odd_mean,
    readout_tolerance,
    scaled,
    scan_tests,
    t_loc_one,
)

__all__ = [
    "LOGITS",
    "base_swap",
    "controls",
    "created",
    "distance",
    "intervened_odd",
    "kink_signs",
    "kinks",
    "knockin",
    "knockout",
    "later_created",
    "made",
    "softmax",
]

#: The cut whose symmetrised scan point is the softmax-only test.
LOGITS = "fc_policy_out"


def _distinct(iv: Interval, tol: float) -> bool:
    """Whether ``iv`` is distinguishable from 0 (its verdict is positive or negative)."""
    return verdict_of(iv.estimate, (iv.lo, iv.hi), iv.n, tol) in ("positive", "negative")


def _at(ds: xr.Dataset, vector: str, readout: str, t: float, control: str = "vector") -> dict:
    """The fields every localisation claim shares: readout, t, odd part, tolerance."""
    return dict(
        readout=readout,
        t=t,
        odd=odd_mean(ds, vector, t, control, readout),
        tolerance=readout_tolerance(ds, vector, readout),
    )


def intervened_odd(
    ds: xr.Dataset, name: str, vector: str, t: float, readout: str, seed: int, **sel: object
) -> tuple[float | None, dict]:
    """The mean odd part O(t) with an intervention (``name``: ``loc_odd_cut`` /
    ``_knockout`` / ``_knockin`` at ``sel``) and the detail it adds: ``steering_kept`` (O with it
    / O exact, ratio of means with its interval) and ``kills_steering`` (the kept share's
    estimate below :data:`KILLS_STEERING`: the intervention removes the steering, so its change
    of E does not locate the asymmetry). ``(None, {})`` where O was not recorded."""
    if name not in ds or "loc_odd" not in ds:
        return None, {}
    o = loc_values(ds, name, vector, t, readout=readout, **sel)
    exact = loc_values(ds, "loc_odd", vector, t, control="vector", readout=readout)
    kept = steering_kept(o, exact, seed)
    ok = np.isfinite(o)
    kills = bool(np.isfinite(kept.estimate) and kept.estimate < KILLS_STEERING)
    detail = {"steering_kept": kept, "kills_steering": kills, "kill_below": KILLS_STEERING}
    even = name.replace("odd", "even")
    if even in ds:  # the scale-free reading: the asymmetry index with it minus exact (paired)
        e = loc_values(ds, even, vector, t, readout=readout, **sel)
        e0 = loc_values(ds, "loc_even", vector, t, control="vector", readout=readout)
        detail["index_change"] = paired_difference(
            asymmetry_index(e, o), asymmetry_index(e0, exact), seed=seed
        )
    return (float(o[ok].mean()) if ok.any() else None), detail


def created(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """Per variant: the creation cut, the first cut from which on every cut's E of the margin
    is equivalent to 0 (Holm-adjusted TOST over the vector's scan, :func:`~.select.scan_tests`;
    ``where`` None: none), at the t closest to 1, with the cut at every t in ``detail["per_t"]``;
    one claim on the exact E when it is not different from 0 itself."""
    t = t_loc_one(ds)
    at = _at(ds, vector, CUT_READOUT, t)
    exact = exact_even(ds, vector, t, seed, readout=CUT_READOUT)
    tests = scan_tests(ds, vector, seed)
    p_exact = float(tests.p_zero_exact.sel(readout=CUT_READOUT, t_loc=t))
    family = {"family": tests.family, "fraction": tests.fraction}
    if not _distinct(exact, at["tolerance"]) or not p_exact < ALPHA:
        detail = {"variant": None, **family}
        return [Claim.of("created", vector, exact, **at, p_zero=p_exact, detail=detail)]
    out = []
    for variant in ("symmetrize", "linearize"):
        scan = cut_intervals(ds, vector, variant, CUT_READOUT, t, seed)
        where, iv, detail = scan_claim(scan, tests.equivalent(variant, CUT_READOUT, t))
        point = tests.point(variant, where or detail["last_cut"], CUT_READOUT, t)
        per_t = _per_t(ds, tests, variant)
        detail |= {"variant": variant, "exact": exact, "per_t": per_t, **family}
        cut = detail["last_cut"] if where is None else where
        odd, kept = intervened_odd(
            ds, "loc_odd_cut", vector, t, CUT_READOUT, seed, variant=variant, cut=cut
        )
        mine = at | ({"odd": odd} if kept else {})
        detail |= kept
        out.append(Claim.of("created", vector, iv, where=where, **mine, **point, detail=detail))
    return out


def _per_t(ds: xr.Dataset, tests: ScanTests, variant: str) -> dict[str, str | None]:
    """``{t: creation cut}`` of ``variant``'s scan at every localisation t (None: none; also
    where the exact E is not different from 0 at that t)."""
    cuts, out = [str(c) for c in ds["cut"].values], {}
    for t in [float(x) for x in ds["t_loc"].values]:
        first = None
        if float(tests.p_zero_exact.sel(readout=CUT_READOUT, t_loc=t)) < ALPHA:
            first, _ = creation_cut(tests.equivalent(variant, CUT_READOUT, t))
        out[f"{t:g}"] = None if first is None else cuts[first]
    return out


def scan_claim(
    scan: list[tuple[str, Interval]], equivalent: list[bool | None]
) -> tuple[str | None, Interval, dict]:
    """The cut a cut scan names (None: none), that cut's interval (the last cut's without one),
    and the detail: the cut before it with its interval, the non-monotone dips.

    ``equivalent``: per cut, whether its E is shown equivalent to 0 (:func:`~.select.
    creation_cut`): a cut is named only where E is shown to be 0 from it on, never where it
    merely could not be told from 0."""
    first, idx = creation_cut(equivalent)
    dips = [scan[i][0] for i in idx]
    if first is None:
        cut, iv = scan[-1]
        return None, iv, {"last_cut": cut, "before": None, "before_e": None, "dips": []}
    cut, iv = scan[first]
    prev = scan[first - 1] if first else (None, None)
    return cut, iv, {"last_cut": scan[-1][0], "before": prev[0], "before_e": prev[1], "dips": dips}


def made(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """Between which consecutive cuts the largest part of the margin's asymmetry is made (only
    where the exact E is shown different from 0, Holm-adjusted as for :func:`created`)."""
    t = t_loc_one(ds)
    at = _at(ds, vector, CUT_READOUT, t)
    exact = exact_even(ds, vector, t, seed, readout=CUT_READOUT)
    if not exact.n or not _distinct(exact, at["tolerance"]):
        return []
    tests = scan_tests(ds, vector, seed)  # shown different from 0 in the creation cut's family
    if not float(tests.p_zero_exact.sel(readout=CUT_READOUT, t_loc=t)) < ALPHA:
        return []
    sign = float(np.sign(exact.estimate))
    found = best(made_between(ds, vector, t, seed), lambda x: sign * x.estimate)
    if found is None:
        return []
    span, iv = found
    detail = {"share": iv.estimate / exact.estimate, "exact": exact}
    return [Claim.of("made", vector, iv, where=span, **at, detail=detail)]


def softmax(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """The softmax-only test: the exact E minus E with the logits symmetrised (paired), beside
    both and the logits' own (margin) E; ``reading`` says what the three intervals say."""
    if LOGITS not in ds["cut"].values:
        return []
    t, out = t_loc_one(ds), []
    logits_e = exact_even(ds, vector, t, seed, readout=CUT_READOUT)
    for readout in SOFTMAX_READOUTS:
        at = _at(ds, vector, readout, t)
        soft = loc_values(
            ds, "loc_even_cut", vector, t, variant="symmetrize", cut=LOGITS, readout=readout
        )
        exact = loc_values(ds, "loc_even", vector, t, control="vector", readout=readout)
        diff = paired_difference(exact, soft, seed=seed)
        ivs = (bootstrap_mean(soft, seed=seed), bootstrap_mean(exact, seed=seed), diff)
        detail = {
            "softmax_only": ivs[0],
            "exact": ivs[1],
            "logits_e": logits_e,
            "reading": softmax_reading(*ivs, tol=at["tolerance"]),
        }
        out.append(Claim.of("softmax", vector, diff, where=LOGITS, **at, detail=detail))
    return out


def softmax_reading(soft: Interval, exact: Interval, diff: Interval, tol: float = 0.0) -> str:
    """What the softmax-only test says: ``"no_asymmetry"`` (the exact E is 0 at this n),
    ``"logits_add"`` (the difference is not 0: the softmax alone does not explain E),
    ``"softmax_explains"`` (no difference, and the softmax-only E is not 0), or
    ``"cannot_tell"``."""
    if not _distinct(exact, tol):
        return "no_asymmetry"
    if _distinct(diff, tol):
        return "logits_add"
    if _distinct(soft, tol):
        return "softmax_explains"
    return "cannot_tell"


def knockout(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """The layer whose freezing alone shrinks E the most (toward 0; paired, with its interval)."""
    t = t_loc_one(ds)
    scan = layer_scan(ds, "loc_even_knockout", vector, PRIMARY, t, seed)
    exact = exact_even(ds, vector, t, seed)
    sign = 1.0 if exact.estimate >= 0 else -1.0
    found = best([(x, scaled(c, -sign)) for x, c in scan], lambda iv: iv.estimate)
    if found is None:
        return []
    layer, drop = found
    detail = {"exact": exact, "layers": len(scan)}
    at = _at(ds, vector, PRIMARY, t)
    odd, kept = intervened_odd(ds, "loc_odd_knockout", vector, t, PRIMARY, seed, frozen_layer=layer)
    if kept:
        at["odd"], detail = odd, detail | kept | {"exact_odd": at["odd"]}
    return [Claim.of("knockout", vector, drop, where=layer, **at, detail=detail)]


def knockin(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """The layer that, left alone free, keeps the most of E (in E's own direction)."""
    t = t_loc_one(ds)
    at = _at(ds, vector, PRIMARY, t)
    exact = exact_even(ds, vector, t, seed)
    sign = 1.0 if exact.estimate >= 0 else -1.0
    kept = [
        (
            str(layer),
            bootstrap_mean(
                loc_values(ds, "loc_even_knockin", vector, t, frozen_layer=layer, readout=PRIMARY),
                seed=seed,
            ),
        )
        for layer in ds["frozen_layer"].values
    ]
    found = best(kept, lambda iv: sign * iv.estimate)
    if found is None:
        return []
    layer, iv = found
    share = iv.estimate / exact.estimate if _distinct(exact, at["tolerance"]) else None
    detail = {"exact": exact, "share": share}
    odd, kept = intervened_odd(ds, "loc_odd_knockin", vector, t, PRIMARY, seed, frozen_layer=layer)
    if kept:
        at["odd"], detail = odd, detail | kept | {"exact_odd": at["odd"]}
    return [Claim.of("knockin", vector, iv, where=layer, **at, detail=detail)]


def kinks(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """The layer whose exact kinks carry the largest share of the even part (walked mazes)."""
    t = t_loc_one(ds)
    total_v = ds["kink_even_total"].sel(vector=vector, t_loc=t).values
    walked = np.isfinite(total_v)
    total = bootstrap_mean(total_v, seed=seed)
    per = [
        (
            str(layer),
            bootstrap_mean(
                ds["kink_even"].sel(vector=vector, t_loc=t, frozen_layer=layer).values[walked],
                seed=seed,
            ),
        )
        for layer in ds["frozen_layer"].values
    ]
    found = best(per, lambda iv: abs(iv.estimate))
    if found is None:
        return []
    layer, iv = found
    detail = {
        "total": total,
        "walked": int(walked.sum()),
        "share": iv.estimate / total.estimate if total.estimate else math.nan,
        "direct_gap": _kink_gap(ds, vector, t, total_v),
    } | kink_signs([x.estimate for _, x in per], total.estimate)
    return [
        Claim.of(
            "kinks",
            vector,
            iv,
            where=layer,
            readout=CUT_READOUT,
            t=t,
            tolerance=readout_tolerance(ds, vector, CUT_READOUT),
            detail=detail,
        )
    ]


def kink_signs(per_layer: list[float], total: float) -> dict:
    """The layers' contributions split by sign: ``positive`` and ``negative`` (the sums of the
    layers' mean contributions of each sign) and each as a share of the net ``total``. A layer's
    share of the net can pass 100 % when the others cancel it: the two sums say how much.

    Example:
        >>> kink_signs([3.0, -2.0, 0.5], 1.5)["positive"]
        3.5
    """
    x = np.asarray([v for v in per_layer if math.isfinite(v)], dtype=np.float64)
    pos, neg = float(x[x > 0].sum()), float(x[x < 0].sum())
    ok = math.isfinite(total) and total != 0
    return {
        "positive": pos,
        "negative": neg,
        "positive_share": pos / total if ok else math.nan,
        "negative_share": neg / total if ok else math.nan,
        "cancels": bool(pos and neg),
    }


def _kink_gap(ds: xr.Dataset, vector: str, t: float, total: np.ndarray) -> float | None:
    """The largest gap between the kinks' sum and the directly evaluated E (None: not recorded)."""
    if "kink_even_direct" not in ds:
        return None
    direct = ds["kink_even_direct"].sel(vector=vector, t_loc=t).values
    ok = np.isfinite(direct) & np.isfinite(total)
    return float(np.max(np.abs(direct[ok] - total[ok]))) if ok.any() else None


def base_swap(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """Per vector source (``where``: own, leave-one-out, another maze's; :data:`VECTOR_SOURCES`),
    E with that vector added at the paired base, beside E on the maze's own base; ``change`` is
    swapped − own, paired on the maze; ``sign`` says whether E keeps or flips its sign.

    The own vector was built from the maze's pair, so on the paired base it re-reads almost the
    same line (shifted by one unit of t): a flip there is nearly an identity. The leave-one-out
    and other-maze vectors were not built from the maze, so their base swap can disagree."""
    t, out = t_loc_one(ds), []
    have = set(ds["control"].values.tolist())
    for source, (mine_line, swap_line) in VECTOR_SOURCES.items():
        if not {mine_line, swap_line} <= have:
            continue
        at = _at(ds, vector, PRIMARY, t, control=swap_line)
        own, swap = (exact_even(ds, vector, t, seed, c) for c in (mine_line, swap_line))
        swapped, mine = (
            loc_values(ds, "loc_even", vector, t, control=c, readout=PRIMARY)
            for c in (swap_line, mine_line)
        )
        change = paired_difference(swapped, mine, seed=seed)
        tol = at["tolerance"]
        if _distinct(own, tol) and _distinct(swap, tol):
            sign = "flips" if own.estimate * swap.estimate < 0 else "keeps"
        else:
            sign = "inconclusive"
        zero = [b for b, iv in (("own", own), ("swapped", swap)) if not _distinct(iv, tol)]
        detail = {"own": own, "change": change, "sign": sign, "zero_on": zero, "source": source}
        out.append(Claim.of("base_swap", vector, swap, where=source, **at, detail=detail))
    return out


def distance(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """Per vector source (``where``), ‖a ± v − a_paired‖ / ‖a_paired − a‖: the paired
    difference (+v − −v); negative: +v moves toward the paired real state (interpolates), −v
    away."""
    out = []
    dist = ds["base_swap_distance"]
    for source in [str(s) for s in dist["source"].values]:
        d = {s: dist.sel(source=source, vector=vector, sign=s).values for s in ("+t", "-t")}
        plus, minus = (bootstrap_mean(d[s], seed=seed) for s in ("+t", "-t"))
        diff = paired_difference(d["+t"], d["-t"], seed=seed)
        detail = {"plus": plus, "minus": minus, "source": source}
        out.append(Claim.of("distance", vector, diff, where=source, detail=detail))
    return out


def controls(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """E for each control (``where``), with the maze's own vector minus the control (paired).

    Each control's E is also tested for equivalence to 0 within the study's margin
    (:func:`~hookdiff.study.select.equivalence_margin` × |mean E of the vector|, TOST), so a
    control whose asymmetry is tiny next to the vector's (an untrained network's −1e−04 against
    the trained one's −3) reads as ``equivalent``, not as an effect."""
    t, out = t_loc_one(ds), []
    own = loc_values(ds, "loc_even", vector, t, control="vector", readout=PRIMARY)
    margin = (
        equivalence_margin(ds) * abs(float(np.nanmean(own))) if np.isfinite(own).any() else None
    )
    for control in [c for c in CONTROLS if c in ds["control"].values]:
        e = loc_values(ds, "loc_even", vector, t, control=control, readout=PRIMARY)
        iv = bootstrap_mean(e, seed=seed)
        if iv.n == 0:
            continue
        at = _at(ds, vector, PRIMARY, t, control=control)
        detail = {"own_minus_control": paired_difference(own, e, seed=seed), "control": control}
        if "loc_odd" in ds:
            odd = {
                c: loc_values(ds, "loc_odd", vector, t, control=c, readout=PRIMARY)
                for c in ("vector", control)
            }
            detail["index"] = index_mean(e, odd[control], seed)
            detail["own_index"] = index_mean(own, odd["vector"], seed)
        p_eq = tost_p(e[np.isfinite(e)], margin, seed=seed) if margin is not None else None
        out.append(
            Claim.of(
                "controls",
                vector,
                iv,
                where=control,
                **at,
                margin=margin,
                p_equivalent_unadjusted=p_eq,
                detail=detail,
            )
        )
    return out


def later_created(ds: xr.Dataset, vector: str, seed: int) -> list[Claim]:
    """The cut scan at the latest layer that still steers, read like the steering layer's."""
    found = later_steers(ds, vector)
    if found is None:
        return []
    layer, _, t = found
    tol = readout_tolerance(ds, vector, CUT_READOUT)
    exact = bootstrap_mean(
        ds["later_even"].sel(vector=vector, readout=CUT_READOUT).values, seed=seed
    )
    at = dict(readout=CUT_READOUT, t=t, tolerance=tol)
    if not _distinct(exact, tol):
        return [
            Claim.of(
                "later_created",
                vector,
                exact,
                where=None,
                **at,
                detail={"layer": layer, "exact": exact, "located": False},
            )
        ]
    e = ds["later_even_cut"].sel(vector=vector, variant="symmetrize", readout=CUT_READOUT)
    scan = [
        (str(c), bootstrap_mean(e.sel(later_cut=c).values, seed=seed))
        for c in ds["later_cut"].values
        if np.isfinite(e.sel(later_cut=c).values).any()
    ]
    tests = later_scan_tests(ds, vector, seed)
    equivalent = dict(zip(ds["later_cut"].values, tests.equivalent("symmetrize", CUT_READOUT, t)))
    where, iv, detail = scan_claim(scan, [equivalent[c] for c, _ in scan])
    point = tests.point("symmetrize", where or detail["last_cut"], CUT_READOUT, t)
    detail |= {"layer": layer, "exact": exact, "located": True, "variant": "symmetrize"}
    detail |= {"family": tests.family, "fraction": tests.fraction}
    return [Claim.of("later_created", vector, iv, where=where, **at, **point, detail=detail)]
