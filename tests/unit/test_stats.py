"""The intervals cover at their stated rate (seeded simulations) and behave at the edges."""

from __future__ import annotations

import numpy as np
import pytest

from hookdiff.stats import bootstrap_mean, log_odds, paired_difference, wilson


def _coverage(level: float, sims: int = 300, n: int = 30) -> float:
    rng = np.random.default_rng(0)
    hits = 0
    for i in range(sims):
        x = rng.normal(1.0, 2.0, size=n)
        iv = bootstrap_mean(x, seed=i, n_boot=500, level=level)
        hits += iv.lo <= 1.0 <= iv.hi
    return hits / sims


def test_bootstrap_interval_covers_the_mean_at_the_stated_rate() -> None:
    assert 0.90 <= _coverage(0.95) <= 0.985
    assert _coverage(0.5) < 0.6  # a narrower interval covers less: the check can fail


def test_wilson_covers_and_stays_inside_zero_one() -> None:
    rng = np.random.default_rng(1)
    p, n = 0.3, 50
    ks = rng.binomial(n, p, size=2000)
    cover = np.mean([wilson(int(k), n).lo <= p <= wilson(int(k), n).hi for k in ks])
    assert 0.93 <= cover <= 0.97
    zero, full = wilson(0, 12), wilson(12, 12)
    assert zero.lo == 0.0 and 0.2 < zero.hi < 0.3 and full.hi == 1.0 and 0.7 < full.lo < 0.8


def test_paired_difference_keeps_pairs_together() -> None:
    rng = np.random.default_rng(2)
    base = rng.normal(0, 10, size=40)  # large maze-to-maze spread, small paired effect
    a, b = base + 0.5 + rng.normal(0, 0.1, 40), base
    paired = paired_difference(a, b, seed=0)
    assert paired.excludes(0.0) and abs(paired.estimate - 0.5) < 0.1
    unpaired_width = bootstrap_mean(a, seed=0).hi - bootstrap_mean(a, seed=0).lo
    assert paired.hi - paired.lo < unpaired_width / 10
    with pytest.raises(ValueError, match="equal shapes"):
        paired_difference(a, b[:3], seed=0)


def test_nan_mazes_are_dropped_and_counted() -> None:
    iv = bootstrap_mean(np.array([1.0, np.nan, 3.0]), seed=0)
    assert iv.n == 2 and iv.estimate == 2.0
    assert bootstrap_mean(np.array([np.nan]), seed=0).n == 0


def test_log_odds_is_finite_at_floors_and_ceilings() -> None:
    np.testing.assert_allclose(log_odds(np.array([0.5, 0.0, 1.0]))[0], 0.0)
    assert np.isfinite(log_odds(np.array([0.0, 1.0]))).all()


def test_one_maze_gives_no_interval_and_is_never_distinguishable() -> None:
    iv = bootstrap_mean(np.array([3.0]), seed=0)
    assert iv.estimate == 3.0 and iv.n == 1 and np.isnan(iv.lo) and np.isnan(iv.hi)
    assert not iv.excludes(0.0)


def test_the_bootstrap_draws_every_maze() -> None:
    # one maze of n carries all the mass: every resample that draws it has a mean above 0, so
    # the interval's upper bound is above 0 for each position (the last maze included)
    for n in (2, 3, 7):
        for i in range(n):
            x = np.zeros(n)
            x[i] = 1.0
            iv = bootstrap_mean(x, seed=0, n_boot=400)
            assert iv.hi > 0.0, (n, i)
            assert iv.estimate == 1.0 / n


def test_rate_counts_the_finite_entries() -> None:
    from hookdiff.stats import rate

    iv = rate(np.array([1.0, 0.0, np.nan, 1.0, 1.0]))
    w = wilson(3, 4)
    assert (iv.estimate, iv.lo, iv.hi, iv.n) == (w.estimate, w.lo, w.hi, 4)


# --- equivalence (TOST), tests against 0, Holm ------------------------------------------------


def _holm_by_steps(p: list[float], alpha: float) -> set[int]:
    """Holm's procedure run as written (an independent computation): sort, reject while
    p_(i) <= alpha / (m − i + 1), stop at the first that is not."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    rejected = set()
    for k, i in enumerate(order):
        if p[i] > alpha / (len(p) - k):
            break
        rejected.add(i)
    return rejected


def test_holm_adjusted_p_values_reject_what_the_step_down_procedure_rejects() -> None:
    from hookdiff.stats import holm

    rng = np.random.default_rng(3)
    for _ in range(200):
        p = list(rng.uniform(0, 0.2, size=int(rng.integers(1, 12))) ** 2)
        adjusted = holm(np.array(p))
        for alpha in (0.001, 0.01, 0.05, 0.1):
            assert {i for i, a in enumerate(adjusted) if a <= alpha} == _holm_by_steps(p, alpha)


def test_holm_by_hand() -> None:
    from hookdiff.stats import holm

    # m = 4, sorted 0.005, 0.01, 0.03, 0.04: 4·0.005 = 0.02, 3·0.01 = 0.03, 2·0.03 = 0.06,
    # max(1·0.04, 0.06) = 0.06 (monotone); NaN is not tested and not counted
    out = holm(np.array([[0.03, 0.005], [np.nan, 0.04], [0.01, np.nan]]))
    assert np.allclose(out, [[0.06, 0.02], [np.nan, 0.06], [0.03, np.nan]], equal_nan=True)
    assert holm(np.array([0.9, 0.8])).tolist() == [1.0, 1.0]  # capped at 1
    assert holm(np.array([])).size == 0


def test_tost_by_hand_from_the_bootstrap_standard_error() -> None:
    from math import erfc, sqrt

    from hookdiff.stats import bootstrap_se, tost_p

    x = np.random.default_rng(4).normal(0.05, 0.3, size=50)
    rng = np.random.default_rng(11)  # the resamples bootstrap_se draws with seed 11
    se = x[rng.integers(0, 50, size=(2000, 50))].mean(axis=1).std()
    assert bootstrap_se(x, seed=11) == (pytest.approx(x.mean()), pytest.approx(se), 50)

    def phi(z: float) -> float:  # P(Z <= z)
        return 0.5 * erfc(-z / sqrt(2))

    m = 0.2
    by_hand = max(phi((x.mean() - m) / se), phi((-m - x.mean()) / se))
    assert tost_p(x, m, seed=11) == pytest.approx(by_hand)
    # duality: rejected at 5 % exactly when x̄ ± 1.645 se lies inside (−m, m)
    for margin in np.linspace(0.05, 0.3, 26):
        inside = -margin < x.mean() - 1.6448536 * se and x.mean() + 1.6448536 * se < margin
        assert (tost_p(x, margin, seed=11) < 0.05) == inside


def test_a_zero_is_equivalent_and_a_wide_noise_around_zero_is_not() -> None:
    from hookdiff.stats import tost_p, zero_p

    assert tost_p(np.zeros(40), 0.1, seed=0) == 0.0  # exactly 0: equivalent within any margin
    assert tost_p(np.zeros(40), 0.0, seed=0) == 1.0  # ... but not within none
    wide = np.concatenate([np.linspace(-3, 3, 20), -np.linspace(-3, 3, 20)])  # mean 0
    assert zero_p(wide, seed=0) == pytest.approx(1.0)  # not different from 0...
    assert tost_p(wide, 0.2, seed=0) > 0.2  # ... and not shown equivalent either
    assert np.isnan(tost_p(np.array([0.0]), 1.0, seed=0))  # one maze: no test
    assert zero_p(np.full(9, 2.0), seed=0) == 0.0 and zero_p(np.zeros(9), seed=0) == 1.0


def test_tost_holds_its_level_at_the_margin() -> None:
    """At a true mean on the margin, equivalence is (wrongly) shown at most about 5 % of the time."""
    from hookdiff.stats import tost_p

    rng = np.random.default_rng(5)
    wrong = np.mean(
        [tost_p(rng.normal(0.5, 1.0, 60), 0.5, seed=i, n_boot=500) < 0.05 for i in range(300)]
    )
    assert wrong <= 0.08
    right = np.mean(
        [tost_p(rng.normal(0.0, 1.0, 60), 0.5, seed=i, n_boot=500) < 0.05 for i in range(100)]
    )
    assert right > 0.5  # and the test has power where the mean is 0: the check can fail


def _lognormal_coverage(method: str, sims: int = 400, n: int = 30, sigma: float = 1.5) -> float:
    """Share of ``sims`` seeded samples of ``n`` log-normal values whose 95 % interval covers
    the population mean exp(σ²/2)."""
    rng = np.random.default_rng(0)
    true, hits = np.exp(sigma**2 / 2), 0
    for i in range(sims):
        x = rng.lognormal(0.0, sigma, size=n)
        iv = bootstrap_mean(x, seed=i, n_boot=1000, method=method)
        hits += iv.lo <= true <= iv.hi
    return hits / sims


def test_bca_covers_a_skewed_mean_better_than_the_percentile_interval() -> None:
    # log-normal (σ = 1.5), n = 30: the percentile interval covers ~0.79, BCa ~0.83 (2000 sims:
    # 0.781 vs 0.821); both undercover at this n, BCa less
    pct, bca = _lognormal_coverage("percentile"), _lognormal_coverage("bca")
    assert bca - pct >= 0.025, (pct, bca)
    assert 0.78 <= bca <= 0.95 and pct < 0.83


def _bca_by_hand(x: np.ndarray, seed: int, n_boot: int, level: float = 0.95) -> tuple:
    """BCa computed independently: explicit leave-one-out loop, sorted bootstrap means."""
    from statistics import NormalDist

    nd, n = NormalDist(), len(x)
    rng = np.random.default_rng(seed)  # the same resamples as bootstrap_mean's
    means = np.sort([x[idx].mean() for idx in rng.integers(0, n, size=(n_boot, n))])
    theta = sum(x) / n
    below = sum(1 for m in means if m < theta) + 0.5 * sum(1 for m in means if m == theta)
    z0 = nd.inv_cdf(below / n_boot)
    jack = [np.mean(np.delete(x, i)) for i in range(n)]
    jbar = sum(jack) / n
    a = sum((jbar - j) ** 3 for j in jack) / (6 * sum((jbar - j) ** 2 for j in jack) ** 1.5)
    z = nd.inv_cdf(0.5 + level / 2)
    levels = [nd.cdf(z0 + (z0 + za) / (1 - a * (z0 + za))) for za in (-z, z)]
    return tuple(float(np.quantile(means, q)) for q in levels), a


def test_bca_matches_an_independent_computation() -> None:
    from hookdiff.stats import bootstrap_bca

    x = np.array([0.3, 0.1, 2.5, 0.7, 0.2, 9.0, 0.4, 1.1, 0.05, 3.2, 0.6, 0.9])
    iv = bootstrap_bca(x, seed=3, n_boot=800)
    (lo, hi), a = _bca_by_hand(x, seed=3, n_boot=800)
    np.testing.assert_allclose([iv.lo, iv.hi], [lo, hi], rtol=1e-12)
    # for a mean, the acceleration is the sample skewness over 6√n (a hand check of a)
    d = x - x.mean()
    skew = np.mean(d**3) / np.mean(d**2) ** 1.5
    np.testing.assert_allclose(a, skew / (6 * np.sqrt(len(x))), rtol=1e-12)
    pct = bootstrap_mean(x, seed=3, n_boot=800, method="percentile")
    assert iv.hi > pct.hi and iv.estimate == pct.estimate  # right skew: moved to the tail


def test_a_mean_carries_its_median_and_sign_counts() -> None:
    iv = bootstrap_mean(np.array([-4.0, -1.0, 0.0, 0.5, 2.0, np.nan]), seed=0)
    assert (iv.median, iv.n_positive, iv.n_negative, iv.n) == (0.0, 2, 2, 5)
    one = bootstrap_mean(np.array([-2.0]), seed=0)
    assert (one.median, one.n_positive, one.n_negative) == (-2.0, 0, 1)
