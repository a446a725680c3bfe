"""Formatting of a claim's numbers and verdict, shared by every sentence module.

:func:`interval_text` formats an estimate with its interval, :func:`verdict_text` a claim's
verdict in words (with why, where inconclusive), :func:`readout_text` what a readout is for a
vector; :mod:`hookdiff.study.wording` and the sentence modules beside it build on these.
"""

from __future__ import annotations

import numpy as np

from hookdiff.claim import Claim
from hookdiff.stats import Interval
from hookdiff.study.targets import VECTOR_SPECS

__all__ = [
    "count_text",
    "interval_text",
    "iv_verdict",
    "main_text",
    "readout_text",
    "t_text",
    "verdict_text",
]


def interval_text(iv: Interval, digits: int = 3, signed: bool = True) -> str:
    """``"+0.123 [+0.080, +0.160]"``: the estimate and its 95 % interval."""
    bounds = [b for b in (iv.lo, iv.hi) if np.isfinite(b)]
    size = max([abs(iv.estimate), *map(abs, bounds)])
    tiny = 0 < size < 0.5 * 10.0**-digits  # would print as 0.000 [0.000, 0.000]: show its size
    f = f"{'+' if signed else ''}.{'1e' if tiny else f'{digits}f'}"
    if not np.isfinite(iv.estimate):
        return "not measured"
    if len(bounds) < 2:
        return f"{iv.estimate:{f}} (no interval from n = {iv.n})"
    return f"{iv.estimate:{f}} [{iv.lo:{f}}, {iv.hi:{f}}]"


def t_text(t: float) -> str:
    """``"+1"``, ``"−1"``, ``"0"``."""
    return "0" if t == 0 else f"{t:+.3g}".replace("-", "−")


def verdict_text(c: Claim) -> str:
    """The claim's verdict in words (with why, where it is inconclusive)."""
    if c.n == 0:
        return c.detail.get("empty", "not measured")
    if c.verdict == "equivalent":
        p = "" if c.p_equivalent is None else f", adjusted TOST p = {c.p_equivalent:.2g}"
        return f"equivalent to 0 within ±{c.margin:.3g}{p}"
    if c.within_tolerance:
        return f"0 within numerical tolerance (|x| ≤ {c.tolerance:.0e})"
    if c.n < 2:
        return "one maze only, so not tested against 0"
    if c.verdict == "inconclusive" and c.p_zero is not None and c.interval.excludes(0.0):
        return f"not distinguishable from 0 after the multiplicity adjustment (p = {c.p_zero:.2g})"
    return {"positive": "above 0", "negative": "below 0"}.get(
        c.verdict, "not distinguishable from 0"
    )


def iv_verdict(iv: Interval, c: Claim) -> str:
    """The verdict of another interval of the claim, read with the claim's tolerance."""
    return verdict_text(Claim.of(c.kind, c.vector, iv, tolerance=c.tolerance))


def readout_text(vector: str, readout: str | None) -> str:
    """``"the log-odds of P(toward cheese)"``: what the readout is, for ``vector``."""
    p = f"P(toward {VECTOR_SPECS[vector].target})"
    return {
        None: p,
        "p": p,
        "logodds": f"the log-odds of {p}",
        "margin": f"the margin (the log-odds of {p} linearised in the logits at t = 0)",
    }[readout]


def count_text(n: int, noun: str) -> str:
    """``"3 mazes"``: ``n`` and ``noun``, plural unless n is 1."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def main_text(c: Claim, digits: int = 3, signed: bool = True) -> str:
    """The claim's estimate with its interval (:func:`interval_text` of its fields); a claim
    with no estimate says why where its ``detail["empty"]`` does (else "not measured")."""
    if c.n == 0 and "empty" in c.detail:
        return c.detail["empty"]
    return interval_text(c.interval, digits, signed)


# --- one function per kind -------------------------------------------------------------------
