"""The hook engine's former silent traps: each is now correct behaviour or a hookdiff error/warning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import hookdiff
from hookdiff.errors import (
    HookdiffError,
    HookTypeError,
    NotCapturedError,
    NotEnteredWarning,
    SegmentError,
    ShapeMismatchError,
    TrainingModeWarning,
)
from hookdiff.testing import assert_no_hooks

RESID = "blocks.0.hook_resid_post"


def _toks(b: int = 3, pos: int = 5) -> torch.Tensor:
    return torch.randint(0, 23, (b, pos), generator=torch.Generator().manual_seed(0))


# ---------------------------------------------------------------- steer / capture without `with`


def test_steer_without_with_warns_and_does_nothing(hookdiff_tiny_convnet):
    net = hookdiff_tiny_convnet
    x = torch.rand(2, 3, 8, 8)
    before = net(x)
    with pytest.warns(NotEnteredWarning, match=r"with hookdiff\.steer\(\.\.\.\)"):
        hookdiff.steer(net, "0", torch.ones(4, 8, 8), 5.0)
    torch.testing.assert_close(net(x), before)
    assert_no_hooks(net)


def test_steer_and_capture_inside_with_do_not_warn(hookdiff_tiny_convnet):
    net = hookdiff_tiny_convnet
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotEnteredWarning)
        ctx = hookdiff.steer(net, "0", torch.ones(4, 8, 8), 1.0)
        with ctx, hookdiff.capture(net, "1") as acts:
            net(torch.rand(1, 3, 8, 8))
        with ctx:  # a context can be entered again
            net(torch.rand(1, 3, 8, 8))
        del ctx
    assert acts["1"].shape == (1, 4, 8, 8)


def test_capture_read_like_a_dict_without_with_says_how(hookdiff_tiny_convnet):
    acts = hookdiff.capture(hookdiff_tiny_convnet, ["0"])
    with pytest.raises(HookTypeError, match=r"with hookdiff\.capture\(\.\.\.\) as acts"):
        acts["0"]
    with pytest.warns(NotEnteredWarning):
        del acts


def test_bad_hook_fails_at_the_call_not_at_with(hookdiff_tiny_convnet):
    with pytest.raises(hookdiff.errors.UnknownHookError, match="closest"):
        hookdiff.steer(hookdiff_tiny_convnet, "00", torch.ones(4, 8, 8))


# ---------------------------------------------------------------- capture and steer at one hook


@pytest.mark.parametrize("capture_first", [True, False])
def test_capture_at_the_steered_hook_sees_the_steered_value(hookdiff_tiny_convnet, capture_first):
    net = hookdiff_tiny_convnet
    x = torch.rand(2, 3, 8, 8)
    v = torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(1))
    expected = net[0](x) + 2.0 * v  # independent: the conv's output plus 2·v
    seen = {}
    own = net[0].register_forward_hook(lambda m, i, o: seen.setdefault("own", o.detach()))
    try:
        cap, st = hookdiff.capture(net, ["0"]), hookdiff.steer(net, "0", v, 2.0)
        first, second = (cap, st) if capture_first else (st, cap)
        with first as a, second as b:
            net(x)
        acts = a if capture_first else b
    finally:
        own.remove()
    torch.testing.assert_close(acts["0"], expected)
    torch.testing.assert_close(seen["own"], expected)  # a user's earlier hook sees it too


# ---------------------------------------------------------------- training mode in sweep


def _bn_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten())


def test_sweep_warns_on_batchnorm_in_training_mode():
    net = _bn_net().train()
    x = torch.rand(2, 3, 6, 6)
    with pytest.warns(TrainingModeWarning, match=r"model\.eval\(\)") as rec:
        hookdiff.sweep(net, x, "0", torch.ones(4, 6, 6), [-1.0, 0.0, 1.0])
    assert "training mode (1)" in str(rec[0].message)  # names the module
    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingModeWarning)
        ds = hookdiff.sweep(net, x, "0", torch.ones(4, 6, 6), [-1.0, 0.0, 1.0])
    # in eval mode the t = 0 row equals a plain forward of the inputs alone
    np.testing.assert_allclose(ds.output.sel(coeff=0.0).values, net(x).detach().numpy(), atol=1e-6)


def test_sweep_in_training_mode_without_batchnorm_does_not_warn(hookdiff_tiny_convnet):
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingModeWarning)
        hookdiff.sweep(
            hookdiff_tiny_convnet.train(), torch.rand(2, 3, 8, 8), "0", torch.ones(4, 8, 8), [1.0]
        )


# ---------------------------------------------------------------- coefficient-major tiling


def test_tile_coeffs_is_the_layout_steer_reads(hookdiff_tiny_convnet):
    net = hookdiff_tiny_convnet
    x = torch.rand(3, 3, 8, 8)
    v = torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(2))
    coeffs = [-1.0, 0.5]
    batch = hookdiff.tile_coeffs(x, coeffs)
    assert batch.shape == (6, 3, 8, 8)
    with hookdiff.steer(net, "0", v, coeffs):
        out = net(batch).reshape(2, 3, -1)
    for k, t in enumerate(coeffs):  # independent: one forward per coefficient
        with hookdiff.steer(net, "0", v, t):
            torch.testing.assert_close(out[k], net(x))


def test_wrong_row_count_names_the_layout_and_tile_coeffs(hookdiff_tiny_convnet):
    with hookdiff.steer(hookdiff_tiny_convnet, "0", torch.ones(4, 8, 8), [1.0, 2.0, 3.0]):
        with pytest.raises(ShapeMismatchError, match=r"coefficient-major.*tile_coeffs"):
            hookdiff_tiny_convnet(torch.rand(4, 3, 8, 8))


# ---------------------------------------------------------------- per-row masks, KV cache


def test_per_row_mask_steers_each_samples_positions(hookdiff_tiny_transformer):
    model = hookdiff_tiny_transformer
    toks = _toks(2, 5)
    v = torch.randn(16, generator=torch.Generator().manual_seed(3))
    mask = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 0, 1, 1]], dtype=torch.bool)
    with hookdiff.steer(model, RESID, v, [1.0, -2.0], mask=mask):  # K = 2, B = 2
        got = model(hookdiff.tile_coeffs(toks, [1.0, -2.0]))
    for k, t in enumerate([1.0, -2.0]):  # independent: TransformerLens hooks, per sample
        for b in range(2):

            def add(act, hook, t=t, b=b):
                return act + t * mask[b].float()[None, :, None] * v

            want = model.run_with_hooks(toks[b : b + 1], fwd_hooks=[(RESID, add)])
            torch.testing.assert_close(got[k * 2 + b], want[0], rtol=1e-5, atol=1e-5)


def test_kv_cached_generation_with_a_positional_vector_names_the_fix(hookdiff_tiny_transformer):
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

    model = hookdiff_tiny_transformer
    toks = _toks(2, 4)
    cache = TransformerLensKeyValueCache.init_cache(model.cfg, "cpu", 2)
    ones = torch.ones(2, 4, dtype=torch.long)
    with hookdiff.steer(model, RESID, torch.randn(4, 16), 1.0):
        model(toks, past_kv_cache=cache, attention_mask=ones)  # the prompt: fine
        with pytest.raises(ShapeMismatchError, match=r"KV-cached generation.*shape \(16,\)"):
            model(toks[:, :1], past_kv_cache=cache, attention_mask=ones[:, :1])
    with hookdiff.steer(model, RESID, torch.randn(16), 1.0, mask=torch.ones(2, 4)):
        cache = TransformerLensKeyValueCache.init_cache(model.cfg, "cpu", 2)
        model(toks, past_kv_cache=cache, attention_mask=ones)
        with pytest.raises(
            ShapeMismatchError, match="mask covers 4 positions but this forward has 1"
        ):
            model(toks[:, :1], past_kv_cache=cache, attention_mask=ones[:, :1])
    assert_no_hooks(model)


# ---------------------------------------------------------------- errors are hookdiff errors


def test_a_list_as_one_hook_name_is_a_hookdiff_type_error(hookdiff_tiny_convnet):
    with pytest.raises(HookTypeError, match="take a list") as err:
        hookdiff.steer(hookdiff_tiny_convnet, ["0", "1"], torch.ones(4, 8, 8))
    assert isinstance(err.value, TypeError)


def test_reading_a_capture_before_any_forward(hookdiff_tiny_convnet):
    with hookdiff.capture(hookdiff_tiny_convnet, ["0"]) as acts:
        with pytest.raises(NotCapturedError, match="no forward pass") as err:
            acts["0"]
    assert isinstance(err.value, KeyError) and isinstance(err.value, HookdiffError)
    assert str(err.value).startswith("'0' has no activation yet")  # not KeyError's quoting


def test_downstream_past_the_end_and_one_line_repr(hookdiff_tiny_convnet):
    with pytest.raises(SegmentError, match=r"expected an int in 1\.\.6") as err:
        hookdiff.downstream(hookdiff_tiny_convnet, "0", 7)
    assert isinstance(err.value, ValueError)
    seg = hookdiff.downstream(hookdiff_tiny_convnet, "0", 2)
    assert repr(seg) == "Segment(Sequential: '0' -> '2', n=2)"


# ---------------------------------------------------------------- one vocabulary in sweep


def test_sweep_vocabulary_on_a_transformer(hookdiff_tiny_transformer):
    model = hookdiff_tiny_transformer
    toks = _toks(3, 5)
    ds = hookdiff.sweep(
        model,
        toks,
        RESID,
        torch.randn(16),
        torch.tensor([-1.0, 1.0], dtype=torch.float32),
        capture=["logits", "blocks.1.hook_resid_post", "blocks.1.attn.hook_pattern"],
    )
    assert ds.coeff.dtype == np.float64
    assert ds.logits.dims == ("coeff", "batch", "pos", "vocab")
    assert ds["blocks.1.hook_resid_post"].dims == ("coeff", "batch", "pos", "d_model")
    assert ds["blocks.1.attn.hook_pattern"].dims == (
        "coeff",
        "batch",
        "head",
        "query_pos",
        "key_pos",
    )
    assert ds.logits_baseline.dims == ("batch", "pos", "vocab")
    torch.testing.assert_close(torch.from_numpy(ds.logits_baseline.values), model(toks))
    for name, var in ds.variables.items():
        if name in ds.data_vars or name == "coeff":
            assert var.attrs["long_name"] and var.attrs["description"], name
    assert hookdiff.sweep(model, toks, RESID, torch.randn(16), [0, 1]).coeff.dtype == np.float64


def test_sweep_prefixes_only_dims_whose_sizes_differ(hookdiff_tiny_convnet):
    ds = hookdiff.sweep(
        hookdiff_tiny_convnet,
        torch.rand(2, 3, 8, 8),
        "0",
        torch.ones(4, 8, 8),
        [1.0],
        capture=["1", "3", "output"],
    )
    assert ds["1"].dims == ("coeff", "batch", "channel", "1.height", "1.width")
    assert ds["3"].dims == ("coeff", "batch", "channel", "3.height", "3.width")
    assert ds.output.dims == ("coeff", "batch", "logit")
