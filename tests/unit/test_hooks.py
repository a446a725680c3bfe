"""Hook engine: steer/capture/sweep/downstream against independent computations."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import hookdiff
from hookdiff.errors import NoHookChainError, ShapeMismatchError, UnknownHookError
from hookdiff.testing import assert_hooks_unchanged, assert_no_hooks, hook_snapshot

COEFFS = [-3.0, -1.0, -0.25, 0.0, 0.5, 2.0]


def tokens(batch: int = 3, pos: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 23, (batch, pos), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- sweep == per-coefficient loop


@pytest.mark.parametrize("hook", ["blocks.0.hook_resid_post", "blocks.1.attn.hook_z"])
def test_sweep_equals_loop_of_run_with_hooks(
    hookdiff_tiny_transformer, hookdiff_no_leaked_hooks, hook
):
    model = hookdiff_no_leaked_hooks(hookdiff_tiny_transformer)
    toks = tokens()
    _, cache = model.run_with_cache(toks)
    vec = torch.randn(cache[hook].shape[1:], generator=torch.Generator().manual_seed(1))
    ds = hookdiff.sweep(
        model, toks, hook, vec, COEFFS, capture=["output", "blocks.1.hook_resid_post"]
    )
    for k, t in enumerate(COEFFS):
        captured = {}

        def add(act, hook, t=t):
            return act + t * vec

        def grab(act, hook, captured=captured):
            captured["resid"] = act.detach()

        logits = model.run_with_hooks(
            toks, fwd_hooks=[(hook, add), ("blocks.1.hook_resid_post", grab)]
        )
        torch.testing.assert_close(
            torch.from_numpy(ds["output"].values[k]), logits, rtol=1e-5, atol=1e-5
        )
        torch.testing.assert_close(
            torch.from_numpy(ds["blocks.1.hook_resid_post"].values[k]),
            captured["resid"],
            rtol=1e-5,
            atol=1e-5,
        )
    torch.testing.assert_close(
        torch.from_numpy(ds["output_baseline"].values), model(toks), rtol=1e-5, atol=1e-5
    )
    assert list(ds.coeff.values) == COEFFS
    assert_no_hooks(model)


def test_sweep_chunked_equals_unchunked_and_adds_baseline(hookdiff_tiny_convnet):
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    vec = torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(2))
    coeffs = [-2.0, -0.5, 1.0, 3.0]  # no zero: the baseline comes from an extra chunk
    whole = hookdiff.sweep(hookdiff_tiny_convnet, x, "0", vec, coeffs, capture=["output", "4"])
    chunked = hookdiff.sweep(
        hookdiff_tiny_convnet, x, "0", vec, coeffs, capture=["output", "4"], max_rows=5
    )
    for name in ["output", "4", "output_baseline", "4_baseline"]:
        torch.testing.assert_close(
            torch.from_numpy(whole[name].values), torch.from_numpy(chunked[name].values)
        )
    torch.testing.assert_close(
        torch.from_numpy(whole["output_baseline"].values), hookdiff_tiny_convnet(x).detach()
    )
    assert whole["4"].dims == ("coeff", "batch", "channel", "height", "width")
    assert whole["output"].dims == ("coeff", "batch", "logit")
    # independent: loop with a plain forward hook
    for k, t in enumerate(coeffs):
        h = hookdiff_tiny_convnet[0].register_forward_hook(lambda m, i, o, t=t: o + t * vec)
        try:
            expected = hookdiff_tiny_convnet(x).detach()
        finally:
            h.remove()
        torch.testing.assert_close(torch.from_numpy(whole["output"].values[k]), expected)


def test_linear_model_diff_is_exactly_t_W_v():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Identity(), nn.Linear(6, 4)).double()
    x = torch.randn(3, 6, dtype=torch.float64)
    v = torch.randn(6, dtype=torch.float64)
    ts = torch.tensor([-2.0, -0.5, 0.0, 1.0, 3.0], dtype=torch.float64)
    ds = hookdiff.sweep(model, x, "0", v, ts)
    diff = torch.from_numpy(ds["output"].values) - torch.from_numpy(ds["output_baseline"].values)
    W = model[1].weight.detach()
    expected = ts[:, None, None] * (W @ v)[None, None, :].expand(len(ts), 3, 4)
    torch.testing.assert_close(diff, expected, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- steer semantics


def test_coefficient_major_rows_and_mask(hookdiff_tiny_transformer):
    model = hookdiff_tiny_transformer
    toks = tokens(batch=2)
    hook = "blocks.0.hook_resid_post"
    vec = torch.randn(16)
    mask = torch.tensor([False, True, False, True, False])
    with hookdiff.capture(model, [hook]) as base:
        model(toks)
    with (
        hookdiff.steer(model, hook, vec, [1.0, -2.0], mask=mask),
        hookdiff.capture(model, [hook]) as acts,
    ):
        model(toks.repeat(2, 1))
    # the capture hook was registered after the steering hook, so it sees the steered value
    got = acts[hook].reshape(2, 2, 5, 16) - base[hook][None]
    expected = torch.tensor([1.0, -2.0])[:, None, None, None] * mask[None, None, :, None] * vec
    torch.testing.assert_close(got, expected.expand(2, 2, 5, 16), atol=1e-5, rtol=1e-5)
    assert_no_hooks(model)


class Child(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        return self.lin(x)


class Parent(nn.Module):
    """Returns its child's output tensor unchanged: the parent/child same-tensor pitfall."""

    def __init__(self):
        super().__init__()
        self.child = Child()

    def forward(self, x):
        return self.child(x)


def test_parent_and_child_returning_the_same_tensor_add_the_vector_once():
    model = nn.Sequential(Parent(), nn.Identity())
    x = torch.randn(2, 3)
    v = torch.tensor([1.0, 2.0, 3.0])
    base = model(x).detach()
    with hookdiff.steer(model, "0.child", v, 1.0):
        out = model(x)
    torch.testing.assert_close(out - base, v.expand(2, 3))
    # the same hook function reached twice by one tensor (child, then parent) still adds once
    fn = hookdiff.steering_hook(v, 1.0)
    hs = [
        model[0].child.register_forward_hook(lambda m, i, o: fn(o)),
        model[0].register_forward_hook(lambda m, i, o: fn(o)),
    ]
    try:
        out = model(x)
    finally:
        for h in hs:
            h.remove()
    torch.testing.assert_close(out - base, v.expand(2, 3))
    assert_no_hooks(model)


def test_steer_composes_with_run_with_hooks_and_reset_hooks(hookdiff_tiny_transformer):
    model = hookdiff_tiny_transformer
    toks = tokens()
    hook = "blocks.0.hook_resid_post"
    vec = torch.randn(16)
    expected = model.run_with_hooks(toks, fwd_hooks=[(hook, lambda a, hook: a + vec)])
    with hookdiff.steer(model, hook, vec):
        # run_with_hooks calls reset_hooks() on exit: it must not remove ours
        model.run_with_hooks(toks, fwd_hooks=[(hook, lambda a, hook: None)])
        got = model(toks)
    torch.testing.assert_close(got, expected)
    assert_no_hooks(model)


def test_capture_is_detached_and_cloned():
    lin = nn.Linear(3, 3)
    relu = nn.ReLU(inplace=True)
    model = nn.Sequential(lin, relu)
    x = torch.randn(4, 3, requires_grad=True)
    with hookdiff.capture(model, ["0"]) as acts:
        out = model(x)
    assert not acts["0"].requires_grad
    torch.testing.assert_close(acts["0"].clamp(min=0), out.detach())
    assert (acts["0"] < 0).any() or (out > 0).all()  # the in-place relu did not overwrite the copy
    with pytest.raises(UnknownHookError, match="not a captured hook"):
        acts["1"]


# ---------------------------------------------------------------- hooks removed, only ours


class Boom(RuntimeError):
    pass


@settings(max_examples=25, deadline=None)
@given(where=st.sampled_from(["hook_fn", "forward", "capture"]), layer=st.integers(0, 1))
def test_exceptions_leave_no_hooks_and_keep_preexisting_ones(where, layer):
    model = hookdiff.testing.make_tiny_transformer()
    user_handle = model.blocks[0].hook_resid_pre.register_forward_hook(lambda m, i, o: None)
    model.blocks[1].hook_resid_post.add_perma_hook(lambda a, hook: None)
    before = hook_snapshot(model)
    hook = f"blocks.{layer}.hook_resid_post"
    toks = tokens()

    def raising(act, hook):
        raise Boom("inside a hook")

    with pytest.raises(Boom):
        if where == "hook_fn":
            with hookdiff.steer(model, hook, torch.randn(16)):
                model.run_with_hooks(toks, fwd_hooks=[(hook, raising)])
        elif where == "forward":
            with hookdiff.steer(model, hook, torch.randn(16)), hookdiff.capture(model, [hook]):
                model.blocks[layer].mlp.register_forward_hook(_raise_once(model.blocks[layer].mlp))
                model(toks)
        else:
            with hookdiff.capture(model, [hook, "blocks.0.hook_resid_pre"]):
                raise Boom("in the with body")
    _remove_test_raisers(model)
    assert_hooks_unchanged(model, before)
    assert user_handle.id in model.blocks[0].hook_resid_pre._forward_hooks
    assert model.blocks[1].hook_resid_post.has_hooks(including_permanent=True)


def _raise_once(module):
    def hook(m, i, o):
        raise Boom("inside forward")

    hook.__name__ = "test_raiser"
    return hook


def _remove_test_raisers(model):
    for m in model.modules():
        for hid, fn in list(m._forward_hooks.items()):
            if getattr(fn, "__name__", "") == "test_raiser":
                del m._forward_hooks[hid]


# ---------------------------------------------------------------- bad input


def test_unknown_hook_lists_closest_names_and_leaves_model_unhooked(hookdiff_tiny_transformer):
    model = hookdiff_tiny_transformer
    with pytest.raises(UnknownHookError) as err:
        with hookdiff.steer(model, "blocks.0.hook_resid_pots", torch.zeros(16)):
            pass
    msg = str(err.value)
    assert "blocks.0.hook_resid_pots" in msg and "blocks.0.hook_resid_post" in msg
    assert isinstance(err.value, KeyError)
    with pytest.raises(UnknownHookError, match="submodule, not a hook point"):
        hookdiff.capture(model, ["blocks.0.attn"]).__enter__()
    assert_no_hooks(model)


def test_shape_mismatch_names_both_shapes_and_leaves_model_unhooked(hookdiff_tiny_convnet):
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ShapeMismatchError) as err:
        with hookdiff.steer(hookdiff_tiny_convnet, "0", torch.zeros(5, 8, 8)):
            hookdiff_tiny_convnet(x)
    assert "(5, 8, 8)" in str(err.value) and "(4, 8, 8)" in str(err.value)
    with pytest.raises(ShapeMismatchError, match="multiple of K=3"):
        with hookdiff.steer(hookdiff_tiny_convnet, "0", torch.zeros(4, 8, 8), [1.0, 2.0, 3.0]):
            hookdiff_tiny_convnet(x)
    with pytest.raises(ShapeMismatchError, match="scalar or a 1-d"):
        hookdiff.steering_hook(torch.zeros(3), [[1.0]])
    assert_no_hooks(hookdiff_tiny_convnet)


def test_mask_shape_mismatch(hookdiff_tiny_transformer):
    with pytest.raises(ShapeMismatchError, match="position mask"):
        with hookdiff.steer(
            hookdiff_tiny_transformer,
            "blocks.0.hook_resid_post",
            torch.zeros(16),
            mask=torch.ones(7),
        ):
            hookdiff_tiny_transformer(tokens())
    assert_no_hooks(hookdiff_tiny_transformer)


# ---------------------------------------------------------------- downstream segments


def test_downstream_on_transformer_residual_stream(hookdiff_tiny_transformer):
    model = hookdiff_tiny_transformer
    toks = tokens()
    logits, cache = model.run_with_cache(toks)
    f1 = hookdiff.downstream(model, "blocks.0.hook_resid_post", 1)
    assert f1.stop == "blocks.1.hook_resid_post"
    torch.testing.assert_close(
        f1(cache["blocks.0.hook_resid_post"]), cache["blocks.1.hook_resid_post"]
    )
    f_logits = hookdiff.downstream(model, "blocks.0.hook_resid_pre", 3)
    torch.testing.assert_close(
        f_logits(cache["blocks.0.hook_resid_pre"]), logits, rtol=1e-5, atol=1e-5
    )
    f_alias = hookdiff.downstream(model, "blocks.1.hook_resid_pre", 1)
    torch.testing.assert_close(
        f_alias(cache["blocks.1.hook_resid_pre"]), cache["blocks.1.hook_resid_post"]
    )
    with pytest.raises(ValueError, match="out of range"):
        hookdiff.downstream(model, "blocks.1.hook_resid_post", 2)
    with pytest.raises(UnknownHookError, match="chain"):
        hookdiff.downstream(model, "blocks.0.attn.hook_z", 1)


def test_downstream_on_sequential_and_jvp(hookdiff_tiny_convnet):
    x = torch.randn(2, 3, 8, 8)
    with hookdiff.capture(hookdiff_tiny_convnet, ["0", "4", "6"]) as acts:
        hookdiff_tiny_convnet(x)
    torch.testing.assert_close(
        hookdiff.downstream(hookdiff_tiny_convnet, "0", 4)(acts["0"]), acts["4"]
    )
    torch.testing.assert_close(
        hookdiff.downstream(hookdiff_tiny_convnet, "4", 2)(acts["4"]), acts["6"]
    )
    f = hookdiff.downstream(hookdiff_tiny_convnet, "0", 6)
    v = torch.randn_like(acts["0"])
    _, jv = torch.func.jvp(f, (acts["0"],), (v,))
    eps = 1e-3
    fd = (f(acts["0"] + eps * v) - f(acts["0"] - eps * v)) / (2 * eps)
    torch.testing.assert_close(jv, fd, rtol=1e-2, atol=1e-3)


def test_model_without_chain_gets_a_clear_error():
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 2)

        def forward(self, x):
            return self.a(x)

    with pytest.raises(NoHookChainError, match="run_segment"):
        hookdiff.downstream(Plain(), "a", 1)


def test_per_sample_vectors_tile_coefficient_major(hookdiff_tiny_convnet):
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    vs = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(5))  # one per sample
    coeffs = [-1.0, 2.0]
    ds = hookdiff.sweep(hookdiff_tiny_convnet, x, "0", vs, coeffs, capture=["0"])
    base = ds["0_baseline"].values
    for k, t in enumerate(coeffs):
        torch.testing.assert_close(torch.from_numpy(ds["0"].values[k] - base), t * vs)
    with pytest.raises(ShapeMismatchError, match="per-sample"):
        with hookdiff.steer(hookdiff_tiny_convnet, "0", torch.zeros(2, 4, 8, 8)):
            hookdiff_tiny_convnet(x)
    assert_no_hooks(hookdiff_tiny_convnet)


@pytest.mark.parametrize(
    ("max_rows", "coeffs", "expected_rows"),
    [
        (9, [-2.0, -0.5, 1.0, 3.0, 0.25], [8, 8, 4, 4]),  # 2 coefficients of 4 rows, + baseline
        (12, [-1.0, 0.0, 1.0, 2.0], [12, 4]),  # 0 among them: no extra baseline chunk
        (4, [1.0, 2.0], [4, 4, 4]),
        (3, [1.0, 2.0], [4, 4, 4]),  # B = 4 > max_rows: one coefficient per forward, never split
    ],
)
def test_sweep_forwards_at_most_max_rows_and_equals_the_unchunked_sweep(
    hookdiff_tiny_convnet, max_rows, coeffs, expected_rows
):
    """A forward pre-hook on the first layer records every batch ``sweep`` runs."""
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    vec = torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(7))
    rows: list[int] = []
    handle = hookdiff_tiny_convnet[0].register_forward_pre_hook(
        lambda m, args: rows.append(len(args[0]))
    )
    try:
        chunked = hookdiff.sweep(hookdiff_tiny_convnet, x, "0", vec, coeffs, max_rows=max_rows)
        n_chunked = len(rows)
        whole = hookdiff.sweep(hookdiff_tiny_convnet, x, "0", vec, coeffs)
    finally:
        handle.remove()
    assert rows[:n_chunked] == expected_rows
    assert rows[n_chunked:] == [len(coeffs) * 4] + ([] if 0.0 in coeffs else [4])
    for name in ["output", "output_baseline"]:
        torch.testing.assert_close(
            torch.from_numpy(chunked[name].values), torch.from_numpy(whole[name].values)
        )
    assert_no_hooks(hookdiff_tiny_convnet)
