"""The answer in words: a verdict table and one sentence per claim, from the claims' fields."""

from __future__ import annotations

import math
from collections.abc import Sequence

import xarray as xr

from hookdiff.claim import Claim
from hookdiff.stats import Interval

__all__ = ["report_markdown", "sentence"]


def _iv(iv: Interval | Claim) -> str:
    est, (lo, hi) = (
        (iv.estimate, iv.ci95) if isinstance(iv, Claim) else (iv.estimate, (iv.lo, iv.hi))
    )
    if not math.isfinite(est):
        return "not measured"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{est:+.4g} (no interval)"
    return f"{est:+.4g} [{lo:+.4g}, {hi:+.4g}]"


def sentence(c: Claim, ds: xr.Dataset) -> str:
    """What the claim says, and what result would have said the opposite."""
    d = c.detail
    if c.kind == "asymmetry":
        more = "adding" if (c.odd or 0) * c.estimate > 0 else "subtracting"
        return (
            f"E = r(+t) + r(−t) − 2 r(0) = {_iv(c)} (n = {c.n}, median {d.get('median', math.nan):+.3g}, "
            f"{d.get('n_positive', 0)} above / {d.get('n_negative', 0)} below 0), O = {c.odd:+.4g}: "
            f"{c.verdict}; where E·O > 0 adding moves the readout more, here {more}. An interval "
            f"around 0 would have said there is no asymmetry at this t."
        )
    if c.kind == "random_matched" and d["matched"] == 0:
        return (
            f"No random direction of the vector's norm reached the vector's |O| on any input "
            f"within the searched coefficients ({d['draws']} draws): a push of that size in a "
            f"random direction cannot move the readout as far, so no effect-matched comparison "
            f"exists; the vector's effect is itself specific in size."
        )
    if c.kind == "random_matched":
        return (
            f"Random directions of the vector's norm, each input's t bisected so |O| equals the "
            f"vector's ({d['draws']} draws, {d['matched']} inputs matched): their E = "
            f"{_iv(d['random_e'])} against the vector's {_iv(d['vector_e'])}; vector − random = "
            f"{_iv(c)}, {c.verdict}. Equal E would have said the asymmetry is what any push of "
            f"that effect does, not the vector's."
        )
    if c.kind == "created":
        tested = len(d["cuts"]) - len(d["by_construction"])
        trivial = (
            f" After {', '.join(f'`{n}`' for n in d['by_construction'])} it is 0 by construction "
            f"(within numerical tolerance: nothing after bends the line), so those are not tested."
            if d["by_construction"]
            else ""
        )
        if c.where is None:
            return (
                f"No tested cut has the asymmetry made after it within ±{c.margin:.3g} of 0 "
                f"(TOST, Holm over {tested} cuts, {d['variant']}).{trivial}"
            )
        return (
            f"After `{c.where}` the asymmetry made is {_iv(c)}, within ±{c.margin:.3g} of 0 "
            f"(TOST p = {c.p_equivalent:.3g}, Holm over {tested} cuts): it is made before. A "
            f"cut after which E stayed outside the margin would have placed it later.{trivial}"
        )
    if c.kind == "made":
        return (
            f"The span `{c.where}` makes {_iv(c)} of E = {_iv(d['total'])}: {c.verdict}, the "
            f"largest of {len(d['spans'])} spans."
        )
    if c.kind == "knockout":
        return (
            f"Holding `{c.where}` at its t = 0 value removes {_iv(c)} of E (Holm p = "
            f"{c.p_zero:.3g} over {len(d['states'])} states) and keeps {d['odd_kept']:.0%} of "
            f"O: {c.verdict}"
            + (
                "; it removes the steering too, so it does not locate the asymmetry alone."
                if abs(d["odd_kept"]) < 0.5
                else "."
            )
        )
    return _iv(c)


def report_markdown(claims: Sequence[Claim], ds: xr.Dataset) -> str:
    """The report: what was asked, the verdict table, a sentence per claim."""
    a = ds.attrs
    lines = [
        f"# Does adding the {a['vector']} vector act differently from subtracting it?".replace(
            "the vector vector", "the vector"
        ),
        "",
        f"Model {a['model']}; vector added at `{a['hook']}` (‖v‖ = {a['vector_norm']:.4g}); "
        f"readout `{a['readout']}` of `{a['depth']}`; t = ±{a['t']:g}; "
        f"{ds.sizes['input']} inputs; seed {a['seed']}. Intervals: 95 % bootstrap over inputs.",
        "",
        "| claim | where | estimate [95 % CI] | n | verdict |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {c.kind} | {c.where or '—'} | {_iv(c)} | {c.n} | {c.verdict} |" for c in claims]
    lines += ["", *(f"- **{c.kind}.** {sentence(c, ds)}" for c in claims), ""]
    return "\n".join(lines)
