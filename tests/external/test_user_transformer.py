"""A user's HookedTransformer with their own mean-difference vector, through hookdiff's public API."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from user_models import build_transformer, mean_difference_vector

import hookdiff
from hookdiff import errors

HOOK = "blocks.0.hook_resid_post"
LATER = "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def model():
    return build_transformer()


@pytest.fixture(scope="module")
def tokens():
    return torch.randint(0, 50, (3, 6), generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def vector(model):
    gen = torch.Generator().manual_seed(1)
    positive = torch.randint(0, 25, (4, 6), generator=gen)
    negative = torch.randint(25, 50, (4, 6), generator=gen)
    return mean_difference_vector(model, HOOK, positive, negative)


def _by_hand(model, tokens, hook, add):
    """Independent: TransformerLens's own hooks add ``add`` at ``hook``."""
    return model.run_with_hooks(tokens, fwd_hooks=[(hook, lambda act, hook: act + add)])


def test_steer_equals_transformer_lens_hooks(model, tokens, vector, hookdiff_no_leaked_hooks):
    hookdiff_no_leaked_hooks(model)
    with hookdiff.steer(model, HOOK, vector, 3.0):
        steered = model(tokens)
    torch.testing.assert_close(steered, _by_hand(model, tokens, HOOK, 3.0 * vector))


def test_steer_without_with_warns(model, tokens, vector):
    plain = model(tokens)
    with pytest.warns(errors.NotEnteredWarning, match="never entered"):
        hookdiff.steer(model, HOOK, vector, 5.0)
    torch.testing.assert_close(model(tokens), plain)


def test_capture_at_the_steered_hook_sees_the_steered_value(model, tokens, vector):
    _, cache = model.run_with_cache(tokens)
    with hookdiff.capture(model, HOOK) as acts, hookdiff.steer(model, HOOK, vector, 2.0):
        model(tokens)
    torch.testing.assert_close(acts[HOOK], cache[HOOK] + 2.0 * vector)


def test_sweep_speaks_the_analysis_vocabulary(model, tokens, vector):
    ds = hookdiff.sweep(model, tokens, HOOK, vector, [-1, 0, 2], capture=["logits", LATER])
    assert ds.coeff.dtype == np.float64 and ds.coeff.values.tolist() == [-1.0, 0.0, 2.0]
    assert ds.logits.dims == ("coeff", "batch", "pos", "vocab")
    assert ds[LATER].dims == ("coeff", "batch", "pos", "d_model")
    torch.testing.assert_close(torch.from_numpy(ds.logits_baseline.values), model(tokens))
    want = _by_hand(model, tokens, HOOK, 2.0 * vector)
    torch.testing.assert_close(torch.from_numpy(ds.logits.sel(coeff=2.0).values), want)
    for name in ds.variables:
        assert {"long_name", "description"} <= set(ds[name].attrs), name
    # the analysis names the same axes the same way
    _, cache = model.run_with_cache(tokens)
    nl = hookdiff.nonlinearity(model, cache[HOOK], HOOK, vector, [-1, 0, 1])
    assert nl.diff_logits.dims[2:] == ds.logits.dims[2:]


def test_nonlinearity_by_default_skips_the_walk_on_a_transformer_and_says_so(model, tokens, vector):
    _, cache = model.run_with_cache(tokens)
    ds = hookdiff.nonlinearity(model, cache[HOOK], HOOK, vector, [-2, -1, 0, 1, 2])
    assert ds.attrs["breakpoints"] == 0
    assert "not piecewise linear" in ds.attrs["breakpoints_skipped"]
    assert ds.residual.attrs["long_name"] == "relative residual"
    with pytest.raises(errors.NotPiecewiseLinearError):
        hookdiff.nonlinearity(model, cache[HOOK], HOOK, vector, [-1, 1], breakpoints=True)


def test_kv_cached_generation_with_a_positional_vector_says_what_to_do(model, tokens, vector):
    kwargs = dict(max_new_tokens=3, use_past_kv_cache=True, verbose=False, stop_at_eos=False)
    kwargs["do_sample"] = False
    positional = vector.expand(6, -1)  # (pos, d_model): one vector per prompt position
    with hookdiff.steer(model, HOOK, positional, 1.0):
        with pytest.raises(errors.ShapeMismatchError, match=r"use_past_kv_cache.*shape \(32,\)"):
            model.generate(tokens, **kwargs)
    with hookdiff.steer(model, HOOK, vector, 4.0):  # the fix the message names
        steered = model.generate(tokens, **kwargs)
    assert steered.shape == (3, 9)


def test_per_row_masks_in_a_sweep(model, tokens, vector):
    mask = torch.zeros(3, 6, dtype=torch.bool)
    mask[0, :2] = mask[1, 3:] = mask[2, 5] = True
    ds = hookdiff.sweep(model, tokens, HOOK, vector, [1.5], mask=mask, capture="logits")
    for b in range(3):
        add = 1.5 * mask[b].float()[:, None] * vector
        want = _by_hand(model, tokens[b : b + 1], HOOK, add)[0]
        torch.testing.assert_close(torch.from_numpy(ds.logits.values[0, b]), want)


def test_building_the_coefficient_batch_by_hand(model, tokens, vector):
    coeffs = [-1.0, 2.0]
    with hookdiff.steer(model, HOOK, vector, coeffs):
        out = model(hookdiff.tile_coeffs(tokens, coeffs)).reshape(2, 3, 6, 50)
        with pytest.raises(errors.ShapeMismatchError, match="coefficient-major"):
            model(torch.cat([tokens, tokens[:2]]))  # 5 rows for 2 coefficients
    torch.testing.assert_close(out[1], _by_hand(model, tokens, HOOK, 2.0 * vector))


def test_mistakes_are_hookdiff_errors(model, tokens, vector):
    with pytest.raises(errors.HookTypeError):
        hookdiff.steer(model, [HOOK, LATER], vector)
    with hookdiff.capture(model, [HOOK]) as acts:
        with pytest.raises(errors.NotCapturedError):
            acts[HOOK]
    with pytest.raises(errors.SegmentError, match=r"1\.\.2"):
        hookdiff.downstream(model, HOOK, 3)
    f = hookdiff.downstream(model, HOOK, 2)
    assert repr(f) == "Segment(HookedTransformer: 'blocks.0.hook_resid_post' -> 'logits', n=2)"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, cache = model.run_with_cache(tokens)
        torch.testing.assert_close(f(cache[HOOK]), model(tokens))
