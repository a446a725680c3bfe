"""ImpalaPolicy.run_segment: equals the full forward's cache, needs context clearly, differentiates."""

from __future__ import annotations

import pytest
import torch

from hookdiff.agent import INPUT, ImpalaPolicy
from hookdiff.errors import SegmentError, ShapeMismatchError, UnknownHookError

STEER = "embedder.block2.res1.resadd_out"


@pytest.fixture(scope="module")
def policy_and_cache():
    torch.manual_seed(0)
    policy = ImpalaPolicy(scale=1)
    obs = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        _, cache = policy.run_with_cache(obs)
    cache = dict(cache)
    cache[INPUT] = obs
    return policy, cache


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 100])
def test_every_segment_equals_cache(policy_and_cache, n: int) -> None:
    policy, cache = policy_and_cache
    names = (INPUT, *policy.hook_names)
    with torch.no_grad():
        for i, start in enumerate(names):
            stop = names[min(i + n, len(names) - 1)]
            if stop == start:
                continue
            out = policy.run_segment(cache[start], start, stop, context=cache)
            torch.testing.assert_close(
                out, cache[stop], rtol=1e-6, atol=1e-6, msg=f"{start}->{stop}"
            )


def test_segment_to_value_head_from_policy_head(policy_and_cache) -> None:
    policy, cache = policy_and_cache
    out = policy.run_segment(cache["fc_policy_out"], "fc_policy_out", "fc_value_out", context=cache)
    torch.testing.assert_close(out, cache["fc_value_out"])
    with pytest.raises(SegmentError, match="embedder.relufc_out"):
        policy.run_segment(cache["fc_policy_out"], "fc_policy_out", "fc_value_out")


def test_segment_runs_only_its_ops(policy_and_cache) -> None:
    policy, cache = policy_and_cache
    fired: list[str] = []
    hooks = [(n, lambda act, hook: fired.append(hook.name)) for n in policy.hook_names]
    with torch.no_grad(), policy.hooks(fwd_hooks=hooks):
        policy.run_segment(cache[STEER], STEER, "fc_policy_out")
    i = policy.hook_names.index(STEER)
    assert fired == list(policy.hook_names[i + 1 : -1])  # not the start, nor the value head
    ops, needed = policy.segment_ops(STEER, "fc_policy_out")
    assert needed == () and len(ops) == len(fired)


def test_hooks_inside_segment_modify_it(policy_and_cache) -> None:
    policy, cache = policy_and_cache
    mid = "embedder.block3.maxpool_out"
    v = torch.randn(cache[mid].shape[1:])
    with torch.no_grad():
        with policy.hooks(fwd_hooks=[(mid, lambda act, hook: act + v)]):
            hooked = policy.run_segment(cache[STEER], STEER, "fc_policy_out")
        manual = policy.run_segment(cache[mid] + v, mid, "fc_policy_out")
    torch.testing.assert_close(hooked, manual, rtol=1e-6, atol=1e-6)


def test_missing_context_is_named(policy_and_cache) -> None:
    policy, cache = policy_and_cache
    start, stop = "embedder.block2.res1.conv1_out", "embedder.block2.res1.resadd_out"
    with pytest.raises(SegmentError) as info:
        policy.run_segment(cache[start], start, stop)
    message = str(info.value)
    assert "embedder.block2.maxpool_out" in message and "context=cache" in message
    with pytest.raises(SegmentError, match="embedder.block2.maxpool_out"):
        policy.run_segment(cache[start], start, stop, context={"other": cache[start]})
    # a segment inside the branch needs no context
    policy.run_segment(cache[start], start, "embedder.block2.res1.conv2_out")


def test_context_repeated_coefficient_major(policy_and_cache) -> None:
    policy, cache = policy_and_cache
    start, stop = "embedder.block2.res1.conv1_out", "embedder.block2.res1.resadd_out"
    a = cache[start]  # (B, ...)
    coeffs = torch.tensor([-1.0, 0.0, 2.0])
    v = torch.randn(a.shape[1:])
    x = torch.cat([a + c * v for c in coeffs])  # coefficient-major (K*B, ...)
    with torch.no_grad():
        out = policy.run_segment(x, start, stop, context=cache)
        for k, c in enumerate(coeffs):
            one = policy.run_segment(a + c * v, start, stop, context=cache)
            torch.testing.assert_close(out[k * 2 : (k + 1) * 2], one)
    torch.testing.assert_close(out[2:4], cache[stop])  # t = 0 block
    with pytest.raises(ShapeMismatchError, match="rows"):
        policy.run_segment(torch.cat([a, a[:1]]), start, stop, context=cache)


def test_unknown_names_and_order(policy_and_cache) -> None:
    policy, cache = policy_and_cache
    with pytest.raises(UnknownHookError, match="embedder.block2.res1.resadd_out"):
        policy.run_segment(cache[STEER], "embedder.block2.res1.resad_out", "fc_policy_out")
    with pytest.raises(KeyError):
        policy.run_segment(cache[STEER], STEER, "fc_policy")
    with pytest.raises(UnknownHookError):
        policy.run_segment(cache[STEER], STEER, INPUT)
    with pytest.raises(SegmentError, match="must come after"):
        policy.run_segment(cache[STEER], STEER, "embedder.block1.conv_out")
    with pytest.raises(SegmentError, match="must come after"):
        policy.run_segment(cache[STEER], STEER, STEER)


@pytest.mark.parametrize(
    "start,stop",
    [
        (STEER, "fc_policy_out"),
        ("embedder.block2.res1.conv1_out", "embedder.block3.res1.resadd_out"),  # needs context
        (INPUT, "embedder.block1.res1.resadd_out"),
    ],
)
def test_jvp_matches_finite_differences(start: str, stop: str) -> None:
    torch.manual_seed(3)
    policy = ImpalaPolicy(scale=1).double()
    obs = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        _, cache = policy.run_with_cache(obs)
    cache = dict(cache)
    cache[INPUT] = obs
    a = cache[start]
    v = torch.randn_like(a)
    v = v / v.norm() * a.norm()

    def f(x):
        return policy.run_segment(x, start, stop, context=cache)

    out, tangent = torch.func.jvp(f, (a,), (v,))
    torch.testing.assert_close(out, cache[stop])
    eps = 1e-6
    with torch.no_grad():
        fd = (f(a + eps * v) - f(a - eps * v)) / (2 * eps)
    torch.testing.assert_close(tangent, fd, rtol=1e-5, atol=1e-6 * fd.abs().max().item())
    assert tangent.abs().max() > 0


def test_segment_backward_gradient(policy_and_cache) -> None:
    policy, cache = policy_and_cache
    x = cache[STEER].clone().requires_grad_(True)
    policy.run_segment(x, STEER, "fc_policy_out")[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
