"""The analysis on the IMPALA agent (scale 1, random init, float64) against direct segment runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hookdiff.agent import ImpalaPolicy
from hookdiff.analysis import breakpoints_at, nonlinearity, pattern_flips
from hookdiff.hooks import capture

HOOK = "embedder.block2.res1.resadd_out"
LO, HI = -0.01, 0.01
TS = [-0.01, -0.003, -1e-4, 0.0, 1e-4, 0.003, 0.01]


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    policy = ImpalaPolicy(scale=1).double().eval()
    obs = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        _, cache = policy.run_with_cache(obs)
    a = cache[HOOK]
    v = torch.randn(a.shape[1:], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    v = v / v.norm() * 0.3 * a[0].norm()
    ds = nonlinearity(policy, a, HOOK, v, TS, context=cache, seed=0)
    return policy, a, v, ds


def f(policy, x, depth="fc_policy_out"):
    with torch.no_grad():
        return policy.run_segment(x, HOOK, depth)


def test_depths_and_diff_match_run_segment(setup) -> None:
    policy, a, v, ds = setup
    depths = list(ds["depth"].values)
    names = list(policy.hook_names)
    assert depths == names[names.index(HOOK) + 1 : names.index("fc_value_out")] + ["directions"]
    for k, t in enumerate(TS):
        want = f(policy, a + t * v) - f(policy, a)
        np.testing.assert_allclose(ds["diff_logits"].values[:, k], want.numpy(), atol=1e-12)
        mid = "embedder.block3.res1.conv1_out"
        want = (f(policy, a + t * v, mid) - f(policy, a, mid)).flatten(1).norm(dim=1)
        np.testing.assert_allclose(ds["diff_norm"].sel(depth=mid).values[:, k], want, rtol=1e-9)
    assert ds.attrs["hook"] == HOOK and ds.attrs["seed"] == 0


def test_jvp_matches_central_differences(setup) -> None:
    policy, a, v, ds = setup
    h = 1e-7  # far below the first breakpoint on either side
    assert (ds["first_break_pos"].values > 10 * h).all()
    assert (ds["first_break_neg"].values > 10 * h).all()
    for depth in ["embedder.block2.res2.conv2_out", "embedder.fc_out", "fc_policy_out"]:
        fd = (f(policy, a + h * v, depth) - f(policy, a - h * v, depth)) / (2 * h)
        fd_norm = 0.003 * fd.flatten(1).norm(dim=1).numpy()
        got = ds["linear_norm"].sel(depth=depth, t=0.003).values
        np.testing.assert_allclose(got, fd_norm, rtol=1e-5)


def test_affine_between_breakpoints_and_kinks_at_them(setup) -> None:
    policy, a, v, ds = setup
    rng = np.random.default_rng(0)
    for s in range(2):
        bps = np.concatenate([[LO], breakpoints_at(ds, s, "fc_policy_out"), [HI]])
        assert len(bps) > 10
        pieces = rng.choice(len(bps) - 1, size=8, replace=False)
        for i in pieces:
            t0, t1 = bps[i], bps[i + 1]
            ts = torch.tensor([0.2, 0.4, 0.6, 0.8], dtype=torch.float64) * (t1 - t0) + t0
            out = f(policy, a[s : s + 1] + ts[:, None, None, None] * v)  # 4 points in the piece
            second = out[0] - 2 * out[1] + out[2], out[1] - 2 * out[2] + out[3]
            scale = (out[3] - out[0]).abs().max()
            for d2 in second:
                assert d2.abs().max() <= 1e-6 * scale + 1e-13, (s, t0, t1)
        # the slope of the logits differs on the two sides of a breakpoint flagged as a kink, and
        # not across the others (pattern changes masked downstream, e.g. at a conv position that
        # no maxpool window selects)
        mine = ds["breakpoint_sample"].values == s
        kink = ds["breakpoint_kink"].values[mine]
        assert kink.mean() > 0.5
        flagged = np.nonzero(kink)[0] + 1  # index into bps (bps[0] is LO)
        masked = np.nonzero(~kink)[0] + 1
        picks = list(rng.choice(flagged, size=6, replace=False)) + list(masked[:4])
        for i in picks:
            left = (bps[i - 1] + 3 * bps[i]) / 4, (3 * bps[i - 1] + bps[i]) / 4
            right = (bps[i + 1] + 3 * bps[i]) / 4, (3 * bps[i + 1] + bps[i]) / 4
            slopes = []
            for p, q in (left, right):
                ts = torch.tensor([p, q], dtype=torch.float64)
                out = f(policy, a[s : s + 1] + ts[:, None, None, None] * v)
                slopes.append((out[1] - out[0]) / (q - p))
            gap = (slopes[0] - slopes[1]).norm() / slopes[0].norm()
            if i in flagged:
                assert gap > 1e-6, (s, bps[i])
            else:
                assert gap < 1e-8, (s, bps[i])


def test_no_flips_inside_first_breaks_and_some_past_them(setup) -> None:
    policy, a, v, ds = setup
    for s in range(2):
        bps = breakpoints_at(ds, s, "fc_policy_out")
        b_pos = ds["first_break_pos"].sel(depth="fc_policy_out").values[s]
        b_neg = ds["first_break_neg"].sel(depth="fc_policy_out").values[s]
        assert b_pos == bps[bps > 0].min() and b_neg == -bps[bps < 0].max()
        nxt_pos, nxt_neg = bps[bps > b_pos].min(), bps[bps < -b_neg].max()
        inside = [-0.999 * b_neg, -0.5 * b_neg, 0.5 * b_pos, 0.999 * b_pos]
        past = [(nxt_neg - b_neg) / 2, (b_pos + nxt_pos) / 2]
        flips = pattern_flips(policy, a[s : s + 1], HOOK, v, inside + past, context=None)
        frac = flips.values[0]
        assert (frac[:4] == 0).all()
        assert (frac[4:].sum(axis=-1) > 0).all()


def test_walk_finds_every_pattern_change_of_a_fine_grid(setup) -> None:
    policy, a, v, ds = setup
    grid = torch.linspace(LO, HI, 401, dtype=torch.float64)
    ops = [op for op in policy.ops if op.kind in ("relu", "maxpool") and op.name in ds["layer"]]
    inputs = sorted({op.inputs[0] for op in ops})
    for s in range(2):
        x = a[s : s + 1] + grid[:, None, None, None] * v
        with torch.no_grad(), capture(policy, [n for n in inputs if n != HOOK]) as acts:
            policy.run_segment(x, HOOK, "fc_policy_out")
        states = []
        for op in ops:  # an independent pattern computation from the captured op inputs
            pre = x if op.inputs[0] == HOOK else acts[op.inputs[0]]
            if op.kind == "relu":
                states.append((pre > 0).flatten(1))
            else:
                m = op.module
                _, idx = torch.nn.functional.max_pool2d(
                    pre, m.kernel_size, m.stride, m.padding, return_indices=True
                )
                states.append(idx.flatten(1))
        changed = np.zeros(len(grid) - 1, dtype=bool)
        for st in states:
            changed |= (st[1:] != st[:-1]).any(dim=1).numpy()
        bps = breakpoints_at(ds, s, "fc_policy_out")
        g = grid.numpy()
        for i in np.nonzero(changed)[0]:
            assert ((bps >= g[i]) & (bps <= g[i + 1])).any(), (s, g[i])
        assert changed.sum() > 5


def test_small_piece_budget_gives_the_same_breakpoints(setup) -> None:
    """Lazy chunks (a split into more pieces than the budget) change nothing but memory."""
    from hookdiff.analysis.breakpoints import walk_line

    policy, a, v, ds = setup
    from hookdiff.analysis._chain import build_chain

    chain = build_chain(policy, HOOK, None)
    big = walk_line(chain, a, v, {}, LO, HI)
    small = walk_line(chain, a, v, {}, LO, HI, max_pieces=3)
    assert len(big.t) > 10  # enough breakpoints that budget 3 forces many lazy chunks
    np.testing.assert_array_equal(big.sample, small.sample)
    np.testing.assert_allclose(big.t, small.t, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(big.layer, small.layer)
    np.testing.assert_array_equal(big.kink, small.kink)


def test_per_sample_vectors_equal_separate_calls(setup) -> None:
    """One vector per sample (each maze's own cheese vector) = running each sample alone."""
    policy, a, v, _ = setup
    vs = torch.stack([v, -0.5 * v])
    ts = [-0.02, -0.01, 0.0, 0.01, 0.02]
    both = nonlinearity(policy, a, HOOK, vs, ts, breakpoints=True, seed=0)
    for s in range(2):
        one = nonlinearity(policy, a[s : s + 1], HOOK, vs[s], ts, breakpoints=True, seed=0)
        for var in ("diff_norm", "linear_norm", "n_pieces", "first_break_pos"):
            np.testing.assert_allclose(
                both[var].isel(sample=s).values,
                one[var].isel(sample=0).values,
                rtol=1e-9,
                atol=1e-12,
            )


def test_walking_the_first_samples_only_equals_the_full_walk_there(setup) -> None:
    """breakpoint_samples=1: sample 0's breakpoints as in the full walk; sample 1's unknown (NaN)."""
    policy, a, v, full = setup
    part = nonlinearity(policy, a, HOOK, v, TS, breakpoint_samples=1, seed=0)
    assert part.attrs["breakpoint_samples"] == 1 and full.attrs["breakpoint_samples"] == 2
    assert (part["breakpoint_sample"].values == 0).all()
    np.testing.assert_array_equal(
        breakpoints_at(part, 0, "fc_policy_out"), breakpoints_at(full, 0, "fc_policy_out")
    )
    for var in ("n_pieces", "first_break_pos", "first_break_neg", "breakpoint_density"):
        np.testing.assert_array_equal(part[var].isel(sample=0), full[var].isel(sample=0))
        assert np.isnan(part[var].isel(sample=1).values).all(), var
    assert (full["n_pieces"].isel(sample=1).values >= 1).all()
    # everything but the walk still covers both samples
    np.testing.assert_array_equal(part["residual"].values, full["residual"].values)
    with pytest.raises(ValueError, match="breakpoint_samples"):
        nonlinearity(policy, a, HOOK, v, TS, breakpoint_samples=0)
