"""Intervals for the study's numbers: bootstrap over mazes, Wilson for rates, paired differences.

Every mean the study reports comes with a 95 % interval. Means over mazes use the bootstrap
over mazes (the unit of replication), BCa by default (:data:`MEAN_INTERVAL`: per-maze effects are
skewed, a few mazes carrying much of the mean, and the percentile interval then undercovers;
:func:`bootstrap_bca`); comparisons of +t and −t are paired on the same
maze, so the bootstrap resamples mazes and keeps each maze's pair together; rates (reach cheese,
reach top-right) use the Wilson score interval, which stays inside [0, 1] and behaves at 0 and n.
Randomness is seeded and the seed is part of the call, so intervals are reproducible.

Tests against 0 (:func:`zero_p`) and of equivalence to 0 within a margin (:func:`tost_p`, two
one-sided tests) read the same bootstrap over mazes; :func:`holm` adjusts a family of p-values
for multiplicity (Holm's step-down, which controls the family-wise error rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from hookdiff.errors import ShapeMismatchError

__all__ = [
    "MEAN_INTERVAL",
    "Interval",
    "bootstrap_bca",
    "bootstrap_mean",
    "bootstrap_se",
    "holm",
    "log_odds",
    "paired_difference",
    "rate",
    "tost_p",
    "wilson",
    "zero_p",
]

#: Bootstrap resamples by default.
N_BOOT = 2000

#: z of a two-sided 95 % normal interval.
Z95 = 1.959963984540054

#: The bootstrap interval of every mean over mazes (:func:`bootstrap_mean`): ``"bca"``
#: (bias-corrected and accelerated, :func:`bootstrap_bca`) or ``"percentile"``. The one switch.
MEAN_INTERVAL = "bca"


@dataclass(frozen=True)
class Interval:
    """An estimate with its 95 % interval and the number of units it rests on."""

    estimate: float
    lo: float
    hi: float
    n: int
    #: The per-unit values' median and sign counts, beside a mean (None: not a mean over units).
    median: float | None = field(default=None, compare=False, repr=False)
    n_positive: int | None = field(default=None, compare=False, repr=False)
    n_negative: int | None = field(default=None, compare=False, repr=False)
    #: The unadjusted two-sided p-value of mean = 0 from the same resamples (:func:`zero_p`;
    #: None: not a bootstrap mean, or fewer than two units).
    p_zero: float | None = field(default=None, compare=False, repr=False)

    def excludes(self, value: float = 0.0) -> bool:
        """Whether ``value`` lies outside the interval (the estimate is distinguishable from it).

        False where there is no interval (fewer than two units): nothing is distinguishable then.
        """
        if not (np.isfinite(self.lo) and np.isfinite(self.hi)):
            return False
        return not (self.lo <= value <= self.hi)

    def as_list(self) -> list[float]:
        return [self.lo, self.hi]


def bootstrap_mean(
    values: np.ndarray,
    *,
    seed: int,
    n_boot: int = N_BOOT,
    level: float = 0.95,
    method: str | None = None,
) -> Interval:
    """Mean of ``values`` over its first axis (mazes) with a bootstrap interval over mazes.

    ``method``: ``"bca"`` (:func:`bootstrap_bca`) or ``"percentile"``; None: :data:`MEAN_INTERVAL`.
    NaNs (mazes where the quantity is undefined) are dropped first; ``n`` counts the rest. With
    fewer than two mazes there is no interval (``lo`` and ``hi`` are NaN), not a zero-width one.
    The interval also carries the values' median and how many are above and below 0.

    Example:
        >>> iv = bootstrap_mean(np.arange(10.0), seed=0)
        >>> iv.estimate, iv.n, iv.lo < 4.5 < iv.hi, iv.median, iv.n_positive, iv.n_negative
        (4.5, 10, True, 4.5, 9, 0)
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    spread = {
        "median": float(np.median(x)),
        "n_positive": int((x > 0).sum()),
        "n_negative": int((x < 0).sum()),
    }
    if x.size < 2:
        return Interval(float(x.mean()), float("nan"), float("nan"), int(x.size), **spread)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    tails = _bca_tails(x, means, level) if (method or MEAN_INTERVAL) == "bca" else None
    if tails is None:  # percentile (asked for, or BCa undefined: every resample on one side)
        tails = ((1 - level) / 2, 1 - (1 - level) / 2)
    lo, hi = np.quantile(means, tails)
    p = _zero_p_of(float(x.mean()), float(means.std()))
    return Interval(float(x.mean()), float(lo), float(hi), int(x.size), **spread, p_zero=p)


def bootstrap_bca(
    values: np.ndarray, *, seed: int, n_boot: int = N_BOOT, level: float = 0.95
) -> Interval:
    """Mean of ``values`` over mazes with its BCa (bias-corrected and accelerated) interval.

    Efron's BCa takes the bootstrap means' quantiles at adjusted levels
    ``Φ(z0 + (z0 + z_α) / (1 − a (z0 + z_α)))`` for ``z_α = ±z`` of ``level``, where
    ``z0 = Φ⁻¹(share of bootstrap means below the mean, ties counted half)`` corrects the
    bootstrap distribution's median bias and the acceleration ``a = Σ d³ / (6 (Σ d²)^1.5)``,
    with ``d`` the jackknife means' deviations from their mean, corrects for the standard error
    changing with the mean (skewness: for a mean, ``a`` is the sample skewness over 6√n). It is
    second-order accurate, where the percentile interval is first-order: on skewed per-maze
    effects (a few mazes carrying much of the mean) the percentile interval undercovers, BCa
    much less (tests/unit/test_stats.py simulates it). Where every resample falls on one side
    of the mean (z0 infinite) it falls back to the percentile interval.

    Example:
        >>> x = np.array([0.1, 0.2, 0.2, 0.3, 0.4, 0.5, 0.9, 1.5, 3.0, 7.0])
        >>> bca, pct = bootstrap_bca(x, seed=0), bootstrap_mean(x, seed=0, method="percentile")
        >>> bca.estimate == pct.estimate, bca.lo > pct.lo, bca.hi > pct.hi  # moved to the tail
        (True, True, True)
    """
    return bootstrap_mean(values, seed=seed, n_boot=n_boot, level=level, method="bca")


def _bca_tails(x: np.ndarray, means: np.ndarray, level: float) -> tuple[float, float] | None:
    """BCa's adjusted quantile levels of the bootstrap ``means`` of ``x`` (None: undefined)."""
    normal = NormalDist()
    theta = x.mean()
    share = (np.sum(means < theta) + 0.5 * np.sum(means == theta)) / means.size
    if not 0 < share < 1:
        return None
    z0 = normal.inv_cdf(float(share))
    jack = (x.sum() - x) / (x.size - 1)  # the leave-one-out means
    d = jack.mean() - jack
    den = 6.0 * float(np.sum(d**2)) ** 1.5
    a = float(np.sum(d**3)) / den if den > 0 else 0.0
    z = normal.inv_cdf(0.5 + level / 2)
    out = []
    for za in (-z, z):
        w = z0 + za
        if a * w >= 1:  # the adjustment is undefined this far out
            return None
        out.append(normal.cdf(z0 + w / (1 - a * w)))
    return out[0], out[1]


def paired_difference(a: np.ndarray, b: np.ndarray, *, seed: int, n_boot: int = N_BOOT) -> Interval:
    """Mean of ``a − b`` over mazes, resampling mazes with their pair (e.g. effect at +t vs −t)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ShapeMismatchError(f"paired values need equal shapes; got {a.shape} and {b.shape}")
    return bootstrap_mean(a - b, seed=seed, n_boot=n_boot)


def wilson(successes: int, n: int, *, z: float = Z95) -> Interval:
    """The rate ``successes / n`` with its Wilson score interval.

    Example:
        >>> iv = wilson(10, 12)
        >>> round(iv.estimate, 3), round(iv.lo, 3), round(iv.hi, 3)
        (0.833, 0.552, 0.953)
    """
    if n <= 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    if not 0 <= successes <= n:
        raise ShapeMismatchError(f"successes must lie in 0..n = {n}; got {successes}")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the edges
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(p, float(lo), float(hi), n)


def rate(values: np.ndarray) -> Interval:
    """The rate of 1s among the finite entries of ``values`` (e.g. rolled-out mazes that reached
    their target; NaN: not rolled out), with Wilson's interval. The one place a rate is computed.

    Example:
        >>> iv = rate(np.array([1.0, 0.0, np.nan, 1.0]))
        >>> iv.estimate, iv.n
        (0.6666666666666666, 3)
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    x = x[np.isfinite(x)]
    return wilson(int(x.sum()), int(x.size))


def log_odds(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """log(p / (1 − p)), with p clipped to [eps, 1 − eps] so floors and ceilings stay finite."""
    q = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(q) - np.log1p(-q)


def bootstrap_se(
    values: np.ndarray, *, seed: int, n_boot: int = N_BOOT
) -> tuple[float, float, int]:
    """``(mean, se, n)``: the mean over mazes and its bootstrap standard error (the SD of the
    means of ``n_boot`` resamples of the mazes, drawn as :func:`bootstrap_mean` draws them).

    NaNs are dropped first; with fewer than two mazes ``se`` is NaN.

    Example:
        >>> mean, se, n = bootstrap_se(np.array([1.0, 1.0, 1.0]), seed=0)
        >>> mean, se, n
        (1.0, 0.0, 3)
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return (float(x.mean()) if x.size else float("nan")), float("nan"), int(x.size)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    return float(x.mean()), float(means.std()), int(x.size)


def _normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def tost_p(values: np.ndarray, margin: float, *, seed: int, n_boot: int = N_BOOT) -> float:
    """The equivalence p-value of the mean over mazes: H0 |mean| ≥ ``margin`` against
    H1 |mean| < ``margin``, by two one-sided tests (TOST).

    Method: the bootstrap over mazes gives the mean x̄ and its standard error se
    (:func:`bootstrap_se`); H0₊ (mean ≥ m) is rejected with p₊ = Φ((x̄ − m) / se), H0₋ (mean ≤
    −m) with p₋ = Φ((−m − x̄) / se), and the TOST p is max(p₊, p₋). Rejecting at level α is the
    same as the interval x̄ ± z₁₋α · se lying inside (−m, m). The tails are read on the normal
    curve with the bootstrap's standard error rather than counted among the resamples: counts
    cannot resolve a p below 1 / (n_boot + 1), and a Holm correction over a family of hundreds
    of tests needs smaller ones. Every maze equal (se = 0, e.g. a quantity 0 by construction):
    p = 0 when |x̄| < m, else 1. A margin ≤ 0 cannot be met (p = 1); fewer than two mazes: NaN
    (no test). Failing to reject is not equivalence: a wide interval around 0 gives a large p.

    Example:
        >>> round(tost_p(np.array([0.1, -0.1, 0.05, -0.05]), 1.0, seed=0), 6)
        0.0
        >>> round(tost_p(np.array([-2.0, 2.0, -1.0, 1.0]), 0.5, seed=0), 2)  # noisy: not shown
        0.26
    """
    mean, se, n = bootstrap_se(values, seed=seed, n_boot=n_boot)
    if n < 2:
        return float("nan")
    if not margin > 0:
        return 1.0
    if se == 0:
        return 0.0 if abs(mean) < margin else 1.0
    return max(_normal_sf((margin - mean) / se), _normal_sf((mean + margin) / se))


def zero_p(values: np.ndarray, *, seed: int, n_boot: int = N_BOOT) -> float:
    """The two-sided p-value of H0 mean = 0 over mazes: 2 Φ(−|x̄| / se), se the bootstrap
    standard error (:func:`bootstrap_se`; read as :func:`tost_p` reads its tails). se = 0: 0 when
    x̄ ≠ 0, else 1; fewer than two mazes: NaN.

    Example:
        >>> round(zero_p(np.array([1.0, -1.0, 1.0, -1.0]), seed=0), 6)
        1.0
    """
    mean, se, n = bootstrap_se(values, seed=seed, n_boot=n_boot)
    return _zero_p_of(mean, se) if n >= 2 else float("nan")


def _zero_p_of(mean: float, se: float) -> float:
    """2 Φ(−|mean| / se); se = 0: 0 when mean ≠ 0, else 1."""
    if se == 0:
        return 0.0 if mean != 0 else 1.0
    return min(1.0, 2.0 * _normal_sf(abs(mean) / se))


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values of a family (any shape; NaN: not tested, not counted).

    With the m finite p-values sorted, p₍₁₎ ≤ … ≤ p₍ₘ₎, the adjusted p₍ᵢ₎ is
    max over j ≤ i of min(1, (m − j + 1) p₍ⱼ₎). Rejecting where the adjusted p < α controls the
    family-wise error rate at α under any dependence between the tests.

    Example:
        >>> holm(np.array([0.01, 0.04, 0.03])).tolist()  # 3·0.01; max(2·0.03, 0.03); 0.06
        [0.03, 0.06, 0.06]
        >>> holm(np.array([0.2, np.nan, 0.01])).tolist()  # a family of 2
        [0.2, nan, 0.02]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    x = p[ok]
    order = np.argsort(x, kind="stable")
    steps = (x.size - np.arange(x.size)) * x[order]
    adjusted = np.empty(x.size)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    out[ok] = adjusted
    return out
