"""TransformerLens 3's TransformerBridge as a first-class model: every verb on real bridges.

Two real bridges, built offline: ``boot_native`` (TL's own modules, whose attention computes its
pattern inside the module, so ``hook_pattern`` only observes) and a random HuggingFace GPT-2
wrapped by ``boot_transformers``. Checked against independent computations: the captured
residuals (downstream), second differences along the line (frozen = affine), and a
HookedTransformer holding the GPT-2's weights (parity of every variant).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hookdiff
from hookdiff.analysis import cut_scan, freezable, line_response, valid_cuts
from hookdiff.errors import UnknownHookError
from hookdiff.tiny import make_tiny_bridge, make_tiny_gpt2_bridge

TS = [-2.0, -1.0, 0.0, 1.0, 2.0]


@pytest.fixture(scope="module")
def bridge():
    return make_tiny_bridge(n_layers=3)


@pytest.fixture(scope="module")
def gpt2_pair():
    return make_tiny_gpt2_bridge()


@pytest.fixture(scope="module")
def tokens():
    return torch.randint(0, 23, (3, 5), generator=torch.Generator().manual_seed(0))


def _acts(model, tokens, names):
    with torch.no_grad(), hookdiff.capture(model, names) as acts:
        out = model(tokens)
    return acts, out


def test_capture_and_steer_take_legacy_and_bridge_names(bridge, tokens):
    names = ["blocks.1.hook_resid_pre", "blocks.1.hook_in", "blocks.0.hook_resid_post"]
    acts, logits = _acts(bridge, tokens, names)
    torch.testing.assert_close(acts["blocks.1.hook_resid_pre"], acts["blocks.0.hook_resid_post"])
    v = torch.randn(16, generator=torch.Generator().manual_seed(1))
    outs = []
    for name in ("blocks.1.hook_resid_pre", "blocks.1.hook_in"):
        with torch.no_grad(), hookdiff.steer(bridge, name, v, 2.0):
            outs.append(bridge(tokens))
    assert (outs[0] - logits).abs().max() > 1e-3  # steering changed the output
    torch.testing.assert_close(outs[0], outs[1])  # the two names are one point
    with pytest.raises(UnknownHookError, match="blocks.1.hook_resid_pre"):
        hookdiff.capture(bridge, ["blocks.1.hook_resid_pree"])


@pytest.mark.parametrize(
    "hook", ["blocks.0.hook_resid_pre", "blocks.0.hook_out", "blocks.1.hook_in"]
)
def test_downstream_reproduces_the_next_captured_residual(bridge, tokens, hook):
    chain = hookdiff.hook_chain(bridge)
    acts, logits = _acts(bridge, tokens, [hook, *chain[:-1]])
    seg = hookdiff.downstream(bridge, hook, 1)
    with torch.no_grad():
        got = seg(acts[hook])
    assert seg.stop == {"blocks.0.hook_resid_pre": chain[1]}.get(hook, chain[2])
    want = logits if seg.stop == chain[-1] else acts[seg.stop]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_every_state_frozen_makes_the_line_affine(bridge, tokens):
    """Second differences along t vanish with every freezable state held, not without."""
    hook = "blocks.0.hook_resid_pre"
    acts, logits = _acts(bridge, tokens, [hook])
    v = torch.randn(16, generator=torch.Generator().manual_seed(2))
    held = freezable(bridge, hook, "logits")
    assert sum(n.endswith("attn.hook_pattern") for n in held) == 3
    exact = line_response(bridge, acts[hook], hook, v, TS, depth="logits").values
    frozen = line_response(bridge, acts[hook], hook, v, TS, depth="logits", freeze=held).values
    np.testing.assert_allclose(exact[2], logits.numpy(), atol=1e-5)
    np.testing.assert_allclose(frozen[2], exact[2], atol=1e-5)  # t = 0 is unchanged

    def second(r):
        return np.abs(r[4] - 2 * r[2] + r[0]).max() / np.abs(r).max()

    assert second(exact) > 1e-2
    assert second(frozen) < 1e-5


def test_cuts_and_the_cut_scan_run_on_a_bridge(bridge, tokens):
    hook = "blocks.0.hook_resid_pre"
    acts, _ = _acts(bridge, tokens, [hook])
    cuts = valid_cuts(bridge, hook, "logits")
    assert cuts == [f"blocks.{k}.hook_resid_post" for k in range(3)] + ["unembed.hook_out"]
    v = torch.randn(16, generator=torch.Generator().manual_seed(3))
    scan = cut_scan(bridge, acts[hook], hook, v, TS, depth="logits")
    assert list(scan["cut"].values) == cuts
    exact = line_response(bridge, acts[hook], hook, v, TS, depth="logits").values
    # symmetrised at the output, the logits' response is even-free: r(t) − r(−t) kept, E = 0
    sym = scan.sel(variant="symmetrize", cut="unembed.hook_out").values
    np.testing.assert_allclose(sym[3] - sym[1], exact[3] - exact[1], atol=1e-4)
    np.testing.assert_allclose(sym[3] + sym[1] - 2 * sym[2], 0.0, atol=1e-4)


def test_a_bridge_and_a_hooked_transformer_with_the_same_weights_agree(gpt2_pair):
    bridge, hooked = gpt2_pair
    ids = torch.randint(0, 30, (2, 6), generator=torch.Generator().manual_seed(1))
    hook = "blocks.0.hook_resid_post"
    a, _ = _acts(hooked, ids, [hook])
    b, _ = _acts(bridge, ids, [hook])
    torch.testing.assert_close(a[hook], b[hook])
    v = torch.randn(16, generator=torch.Generator().manual_seed(2))
    held = freezable(hooked, hook, "logits")
    assert freezable(bridge, hook, "logits") == held
    cut = "blocks.1.hook_resid_post"
    for variant, at in (("exact", None), ("linearize", cut), ("symmetrize", cut)):
        for freeze in ((), held):
            kw = dict(depth="logits", variant=variant, cut=at, freeze=freeze)
            want = line_response(hooked, a[hook], hook, v, TS, **kw).values
            got = line_response(bridge, a[hook], hook, v, TS, **kw).values
            np.testing.assert_allclose(got, want, atol=1e-5, err_msg=f"{variant}, {len(freeze)}")


@pytest.mark.parametrize("kind", ["hooked", "bridge", "convnet"])
def test_sweep_line_response_and_cut_scan_name_the_axes_alike(kind):
    """One naming of the per-row axes: sweep's capture and the analysis' response agree."""
    from hookdiff.tiny import make_tiny_convnet, make_tiny_transformer

    if kind == "convnet":
        model, x, hook, depths = make_tiny_convnet(), torch.randn(2, 3, 8, 8), "0", ["1", "6"]
        v = torch.randn(4, 8, 8)
    else:
        model = make_tiny_transformer() if kind == "hooked" else make_tiny_bridge()
        x, hook = torch.randint(0, 23, (2, 5)), "blocks.0.hook_resid_post"
        depths, v = ["blocks.1.hook_resid_post", "logits"], torch.randn(16)
    acts, _ = _acts(model, x, [hook])
    ds = hookdiff.sweep(model, x, hook, v, [-1.0, 0.0, 1.0], capture=depths)
    for depth in depths:
        r = line_response(model, acts[hook], hook, v, [-1.0, 0.0, 1.0], depth=depth)
        assert r.dims[2:] == ds[depth].dims[2:], depth
        assert not any(d.startswith(f"{depth}_") for d in r.dims)
    assert ds["logits" if kind != "convnet" else "6"].dims[2:] != ()
    scan = cut_scan(model, acts[hook], hook, v, [-1.0, 0.0, 1.0], depth=depths[-1])
    assert scan.dims[-len(r.dims[2:]) :] == r.dims[2:]
