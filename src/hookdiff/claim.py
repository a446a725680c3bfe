"""A claim of the study's answer as data: what was measured, its 95 % interval, and a verdict.

A :class:`Claim` is a record, not a sentence: its kind, vector, readout, t, estimate with its
interval and sample size, where (a cut, a layer, a control), its verdict, the odd part beside it
and the few kind-specific numbers its sentence needs (``detail``). Its sentence is generated from
these fields in one place (:mod:`hookdiff.study.wording`); tests, the report's verdict tables,
``run.json["answer"]`` and a confirmatory run all read the fields.

Verdicts (:data:`VERDICTS`), decided by :func:`verdict_of` from the fields alone:

- ``"positive"``: the 95 % interval lies above 0;
- ``"negative"``: the 95 % interval lies below 0;
- ``"equivalent"``: the claim states an equivalence margin m and its equivalence test rejects
  |E| ≥ m (``p_equivalent`` < :data:`ALPHA`: a multiplicity-adjusted TOST p-value,
  :func:`hookdiff.stats.tost_p`, :func:`hookdiff.stats.holm`), or, stating no p-value, its
  interval lies inside [−m, m];
- ``"inconclusive"``: anything else: the interval contains 0, the adjusted p-value of the test
  against 0 (``p_zero``, where stated) is not below :data:`ALPHA`, there is no interval (n < 2), or
  the estimate and both bounds lie within the claim's numerical tolerance of 0 (a rounding
  residue such as −3e−08 [−6e−08, −1e−09] of a quantity that is 0 in exact arithmetic).

The tolerance is :data:`TOLERANCE_REL` times the scale of the readout the claim is read on
(:func:`tolerance`): a float32 computation of values of size s carries residues of about
1e−7 · s, so anything within 1e−6 · s of 0 is 0 as far as the arithmetic can tell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from hookdiff._io import jsonable
from hookdiff.stats import Interval, holm

__all__ = [
    "ALPHA",
    "TOLERANCE_REL",
    "FAMILY_TESTS",
    "VERDICTS",
    "Claim",
    "adjust_family",
    "interval_dict",
    "tolerance",
    "verdict_of",
]

#: The verdicts a claim can have (see the module docstring for when each applies).
VERDICTS = ("positive", "negative", "equivalent", "inconclusive")
#: The level of the tests behind a verdict (adjusted p-values are compared with it).
ALPHA = 0.05
#: A claim is 0 within numerical tolerance when |estimate| and both |bounds| are at most this
#: times the scale of its readout.
TOLERANCE_REL = 1e-6


def tolerance(values: Any = None) -> float:
    """The numerical tolerance of a quantity read off ``values``: :data:`TOLERANCE_REL` times
    their largest finite magnitude, at least 1 (a probability's scale; None: scale 1).

    Example:
        >>> tolerance(), tolerance([0.5, -12.0, float("nan")])
        (1e-06, 1.2e-05)
    """
    if values is None:
        return TOLERANCE_REL
    x = np.abs(np.asarray(values, dtype=np.float64))
    x = x[np.isfinite(x)]
    return TOLERANCE_REL * max(1.0, float(x.max()) if x.size else 1.0)


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def verdict_of(
    estimate: float | None,
    ci95: tuple[float | None, float | None],
    n: int,
    tol: float = 0.0,
    margin: float | None = None,
    p_equivalent: float | None = None,
    p_zero: float | None = None,
) -> str:
    """The verdict of an estimate with its 95 % interval (one of :data:`VERDICTS`).

    Example:
        >>> verdict_of(0.3, (0.1, 0.5), 9), verdict_of(0.3, (-0.1, 0.5), 9)
        ('positive', 'inconclusive')
        >>> verdict_of(-3e-08, (-6e-08, -1e-09), 40, tol=1e-06)
        'inconclusive'
        >>> verdict_of(0.01, (-0.02, 0.03), 9, margin=0.05)
        'equivalent'
        >>> verdict_of(-3e-08, (-6e-08, -1e-09), 104, tol=1e-06, margin=0.2, p_equivalent=0.0)
        'equivalent'
        >>> verdict_of(0.3, (0.1, 0.5), 9, p_zero=0.2)  # not below 0 after adjustment
        'inconclusive'
    """
    lo, hi = ci95
    if n < 2 or not (_finite(estimate) and _finite(lo) and _finite(hi)):
        return "inconclusive"
    if margin is not None and _finite(p_equivalent):
        if p_equivalent < ALPHA:
            return "equivalent"
    elif margin is not None and -margin <= lo and hi <= margin:
        return "equivalent"
    if max(abs(estimate), abs(lo), abs(hi)) <= tol:
        return "inconclusive"
    if _finite(p_zero) and not p_zero < ALPHA:
        return "inconclusive"
    if lo > 0:
        return "positive"
    if hi < 0:
        return "negative"
    return "inconclusive"


def interval_dict(iv: Interval) -> dict[str, Any]:
    """``{"estimate", "ci95", "n"}`` of an interval (NaN as None), as the claim's own fields."""
    return jsonable({"estimate": iv.estimate, "ci95": [iv.lo, iv.hi], "n": int(iv.n)})


@dataclass(frozen=True)
class Claim:
    """One claim of the answer (see the module docstring).

    Attributes:
        kind: the claim's kind (a row of :data:`hookdiff.study.answer.CLAIMS`).
        vector: the ``vector`` coordinate value it is about.
        readout: the readout it is read on (``"p"``, ``"logodds"``, ``"margin"``) or None (rates,
            distances).
        t: the coefficient it is read at (|t| for an even part; None where there is none).
        estimate: the number the verdict is about (NaN: not measured).
        ci95: its 95 % interval (NaN bounds: none, from n < 2).
        n: the mazes it rests on.
        where: the cut, layer, span, or control it names (None: none).
        odd: the mean odd part O(t) = r(t) − r(−t) beside the even part (None: not applicable).
        tolerance: below this size the estimate and its interval are 0 as far as the arithmetic
            can tell (:func:`tolerance`).
        margin: the equivalence margin it states (None: none).
        detail: the kind-specific numbers its sentence uses (intervals as
            :class:`~hookdiff.stats.Interval`, serialised by :meth:`to_dict`). A claim of a mean
            over mazes also carries the per-maze values' ``median``, ``n_positive`` and
            ``n_negative`` (how many mazes lie above and below 0) here (:meth:`of`).
        episodes_per_maze: the seeded episodes per maze of a rollout claim (None: not one);
            a top-level key of :meth:`to_dict` where set.
        p_equivalent: the adjusted p-value of its equivalence test within ``margin`` (None: none).
        p_zero: the adjusted p-value of its test against 0 (None: none; the interval decides).
        p_zero_unadjusted: the unadjusted p-value against 0 of a claim outside the cut scans'
            families (a bootstrap mean's, :attr:`hookdiff.stats.Interval.p_zero`), before
            :func:`adjust_family` adjusts it into ``p_zero`` (None: not in the answer's family).
        p_equivalent_unadjusted: likewise, the unadjusted TOST p-value within ``margin``.
    """

    kind: str
    vector: str
    readout: str | None
    t: float | None
    estimate: float
    ci95: tuple[float, float]
    n: int
    where: str | None = None
    odd: float | None = None
    tolerance: float = TOLERANCE_REL
    margin: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    p_equivalent: float | None = None
    p_zero: float | None = None
    episodes_per_maze: int | None = None
    p_zero_unadjusted: float | None = None
    p_equivalent_unadjusted: float | None = None

    @classmethod
    def of(cls, kind: str, vector: str, iv: Interval, **fields: Any) -> Claim:
        """The claim whose estimate, interval and n are those of ``iv``; a mean's median and sign
        counts (:class:`~hookdiff.stats.Interval`) go into its ``detail`` beside the mean."""
        if iv.median is not None:
            spread = {"median": iv.median, "n_positive": iv.n_positive, "n_negative": iv.n_negative}
            fields["detail"] = {**spread, **fields.get("detail", {})}
        if "p_zero" not in fields and iv.p_zero is not None:
            fields["p_zero_unadjusted"] = iv.p_zero
        return cls(
            kind,
            vector,
            fields.pop("readout", None),
            fields.pop("t", None),
            float(iv.estimate),
            (float(iv.lo), float(iv.hi)),
            int(iv.n),
            **fields,
        )

    @property
    def interval(self) -> Interval:
        """The estimate, interval and n as an :class:`~hookdiff.stats.Interval`."""
        return Interval(self.estimate, self.ci95[0], self.ci95[1], self.n)

    @property
    def verdict(self) -> str:
        """One of :data:`VERDICTS`, from the fields (:func:`verdict_of`)."""
        return verdict_of(
            self.estimate,
            self.ci95,
            self.n,
            self.tolerance,
            self.margin,
            self.p_equivalent,
            self.p_zero,
        )

    @property
    def within_tolerance(self) -> bool:
        """Whether the estimate and both bounds are 0 within the numerical tolerance."""
        vals = (self.estimate, *self.ci95)
        return all(math.isfinite(x) for x in vals) and max(map(abs, vals)) <= self.tolerance

    def to_dict(self, sentence: str | None = None) -> dict[str, Any]:
        """The claim as JSON-able data (NaN as None), with its sentence under ``"claim"``."""
        detail = _detail(self.detail)
        return jsonable(
            {
                "claim": sentence,
                "kind": self.kind,
                "vector": self.vector,
                "readout": self.readout,
                "t": self.t,
                "estimate": self.estimate,
                "ci95": list(self.ci95),
                "n": self.n,
                "where": self.where,
                "verdict": self.verdict,
                "odd": self.odd,
                "tolerance": self.tolerance,
                "margin": self.margin,
                "p_equivalent": self.p_equivalent,
                "p_zero": self.p_zero,
                "p_zero_unadjusted": self.p_zero_unadjusted,
                "p_equivalent_unadjusted": self.p_equivalent_unadjusted,
                "detail": detail,
            }
            | self._optional()
        )

    def _optional(self) -> dict[str, Any]:
        """The top-level keys only some kinds have: ``episodes_per_maze`` (rollouts) and
        ``control`` (the control a control claim compares with, from its detail)."""
        out: dict[str, Any] = {}
        if self.episodes_per_maze is not None:
            out["episodes_per_maze"] = self.episodes_per_maze
        if "control" in self.detail:
            out["control"] = self.detail["control"]
        return out


def adjust_family(per_vector: dict[str, list[Claim]]) -> dict[str, list[Claim]]:
    """The claims with the answer's family adjusted for multiplicity (Holm, across vectors).

    The family: every claim outside the cut scans' own families (those carry adjusted p-values
    already) that states an unadjusted p-value: its test against 0 (``p_zero_unadjusted``, e.g.
    the asymmetry, the published sign, rollouts, controls, knock-outs) and, separately, its
    equivalence test (``p_equivalent_unadjusted``, the controls). Each adjusted p-value goes
    into ``p_zero`` / ``p_equivalent``, and ``detail["family"]`` says which family and its size,
    so a verdict never rests on one uncorrected test among dozens.

    Example:
        >>> from hookdiff.stats import Interval
        >>> iv = Interval(0.3, 0.1, 0.5, 9, p_zero=0.03)
        >>> got = adjust_family({"v": [Claim.of("asymmetry", "v", iv)] * 2})["v"]
        >>> [(c.p_zero, c.verdict) for c in got]
        [(0.06, 'inconclusive'), (0.06, 'inconclusive')]
    """
    flat = [c for cs in per_vector.values() for c in cs]
    adjusted = {
        name: holm(np.array([_or_nan(getattr(c, f"{name}_unadjusted")) for c in flat]))
        for name in ("p_zero", "p_equivalent")
    }
    size = {name: int(np.isfinite(p).sum()) for name, p in adjusted.items()}
    out, i = {}, 0
    for vector, cs in per_vector.items():
        out[vector] = []
        for c in cs:
            out[vector].append(_adjusted(c, {k: p[i] for k, p in adjusted.items()}, size))
            i += 1
    return out


def _or_nan(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def _adjusted(c: Claim, p: dict[str, float], size: dict[str, int]) -> Claim:
    """``c`` with its adjusted p-values (where it had unadjusted ones) and its family named."""
    new = {k: float(v) for k, v in p.items() if math.isfinite(v)}
    if not new:
        return c
    family = "; ".join(
        f"Holm over the answer's {size[k]} {FAMILY_TESTS[k]} (every vector)" for k in new
    )
    return replace(c, **new, detail={**c.detail, "family": family})


#: What each of the answer's families tests, in words (a claim's ``detail["family"]``).
FAMILY_TESTS = {
    "p_zero": "tests against 0 outside the cut scans",
    "p_equivalent": "equivalence tests outside the cut scans",
}


def _detail(v: Any) -> Any:
    """A detail value as data: intervals as dicts, nested dicts and lists followed."""
    if isinstance(v, Interval):
        return interval_dict(v)
    if isinstance(v, dict):
        return {str(k): _detail(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_detail(x) for x in v]
    return v
