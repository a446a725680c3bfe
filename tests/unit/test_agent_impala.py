"""ImpalaPolicy: forward against an independent functional forward, hook names, graph, steering."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from hookdiff.agent import INPUT, ImpalaPolicy, Op
from hookdiff.errors import ShapeMismatchError

STEER = "embedder.block2.res1.resadd_out"


def reference_forward(state: dict[str, torch.Tensor], obs: torch.Tensor):
    """IMPALA forward straight from a state dict with torch.nn.functional (no module reuse)."""
    x = obs
    for b in (1, 2, 3):
        p = f"embedder.block{b}"
        x = F.conv2d(x, state[f"{p}.conv.weight"], state[f"{p}.conv.bias"], padding=1)
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        for r in (1, 2):
            q = f"{p}.res{r}"
            h = F.relu(x)
            h = F.conv2d(h, state[f"{q}.conv1.weight"], state[f"{q}.conv1.bias"], padding=1)
            h = F.relu(h)
            h = F.conv2d(h, state[f"{q}.conv2.weight"], state[f"{q}.conv2.bias"], padding=1)
            x = x + h
    x = F.relu(x)
    x = x.contiguous().view(x.shape[0], -1)  # NCHW order by construction
    x = F.relu(F.linear(x, state["embedder.fc.weight"], state["embedder.fc.bias"]))
    logits = F.linear(x, state["fc_policy.weight"], state["fc_policy.bias"])
    value = F.linear(x, state["fc_value.weight"], state["fc_value.bias"])
    return logits, value.squeeze(-1)


def _state(policy: ImpalaPolicy) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in policy.state_dict().items()}


@pytest.mark.parametrize("scale", [1, 4])
def test_logits_and_value_match_functional_reference(scale: int) -> None:
    torch.manual_seed(scale)
    policy = ImpalaPolicy(scale=scale)
    obs = torch.rand(3, 3, 64, 64)
    ref_logits, ref_value = reference_forward(_state(policy), obs)
    with torch.no_grad():
        logits, value = policy.forward_with_value(obs)
        logits2 = policy(obs)
    assert logits.shape == (3, 15) and value.shape == (3,)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(value, ref_value, rtol=1e-5, atol=1e-5)
    assert torch.equal(logits, logits2)


def test_channels_last_matches_reference_and_flatten_order() -> None:
    torch.manual_seed(0)
    policy = ImpalaPolicy(scale=1)
    state = _state(policy)
    obs = torch.rand(4, 3, 64, 64)
    ref_logits, _ = reference_forward(state, obs)
    policy = policy.to(memory_format=torch.channels_last)
    assert policy.embedder.block1.conv.weight.is_contiguous(memory_format=torch.channels_last)
    for x in (obs, obs.contiguous(memory_format=torch.channels_last)):
        with torch.no_grad():
            logits, cache = policy.run_with_cache(x)
        torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-5)
        # flatten must read (channel, height, width) whatever the memory format
        relu3 = cache["embedder.relu3_out"]
        assert relu3.is_contiguous(memory_format=torch.channels_last)
        expected_flat = relu3.contiguous().view(relu3.shape[0], -1)
        assert torch.equal(cache["embedder.flatten_out"], expected_flat)


def test_channels_last_differs_if_flatten_were_in_memory_order() -> None:
    """The flatten check above can fail: memory-order flattening gives other numbers."""
    x = torch.randn(2, 4, 3, 3).contiguous(memory_format=torch.channels_last)
    memory_order = x.permute(0, 2, 3, 1).reshape(2, -1)
    assert not torch.equal(torch.flatten(x, 1), memory_order)


def test_parameter_names_are_the_checkpoint_keys() -> None:
    keys = list(ImpalaPolicy(scale=1).state_dict())
    expected = []
    for b in (1, 2, 3):
        expected += [f"embedder.block{b}.conv.weight", f"embedder.block{b}.conv.bias"]
        for r in (1, 2):
            for c in (1, 2):
                expected += [
                    f"embedder.block{b}.res{r}.conv{c}.weight",
                    f"embedder.block{b}.res{r}.conv{c}.bias",
                ]
    expected += ["embedder.fc.weight", "embedder.fc.bias"]
    expected += ["fc_policy.weight", "fc_policy.bias", "fc_value.weight", "fc_value.bias"]
    assert sorted(keys) == sorted(expected)
    assert sum(p.numel() for p in ImpalaPolicy(scale=1).parameters()) == 626_256


def test_parameter_count_scale4() -> None:
    with torch.device("meta"):
        policy = ImpalaPolicy(scale=4)
    assert sum(p.numel() for p in policy.parameters()) == 3_653_136  # the published scale-4 agent
    assert policy.scale == 4


def test_hook_names_in_forward_order_and_all_fire() -> None:
    policy = ImpalaPolicy(scale=1)
    names = policy.hook_names
    assert len(names) == 3 * (2 + 2 * 5) + 6 == len(set(names))
    assert set(names) == set(policy.hook_dict)
    assert names[-2:] == ("fc_policy_out", "fc_value_out")
    assert names[:2] == ("embedder.block1.conv_out", "embedder.block1.maxpool_out")
    assert names[2:7] == tuple(
        f"embedder.block1.res1.{s}_out" for s in ("relu1", "conv1", "relu2", "conv2", "resadd")
    )
    assert names[-6:-2] == (
        "embedder.relu3_out",
        "embedder.flatten_out",
        "embedder.fc_out",
        "embedder.relufc_out",
    )
    fired: list[str] = []
    hooks = [(n, lambda act, hook: fired.append(hook.name)) for n in names]
    policy.run_with_hooks(torch.rand(1, 3, 64, 64), fwd_hooks=hooks)
    assert tuple(fired) == names  # each fires once, in forward order


def test_ops_graph() -> None:
    policy = ImpalaPolicy(scale=1)
    ops = policy.ops
    assert all(isinstance(op, Op) for op in ops)
    assert tuple(op.name for op in ops) == policy.hook_names
    assert ops[0].inputs == (INPUT,)
    seen = {INPUT}
    for op in ops:
        assert set(op.inputs) <= seen, op  # inputs come earlier
        seen.add(op.name)
        if op.kind in ("conv", "linear", "maxpool"):
            assert isinstance(op.module, torch.nn.Conv2d | torch.nn.Linear | torch.nn.MaxPool2d)
        else:
            assert op.module is None
    add = next(op for op in ops if op.name == STEER)
    assert add.kind == "add"
    assert add.inputs == ("embedder.block2.res1.conv2_out", "embedder.block2.maxpool_out")
    conv1 = next(op for op in ops if op.name == "embedder.block2.res1.conv1_out")
    assert conv1.module is policy.embedder.block2.res1.conv1
    with pytest.raises(AttributeError):
        ops[0].name = "x"  # frozen


def test_steering_adds_vector_exactly_once() -> None:
    torch.manual_seed(1)
    policy = ImpalaPolicy(scale=1)
    obs = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        _, cache = policy.run_with_cache(obs)
        v = torch.randn(cache[STEER].shape[1:])
        steered = policy.run_with_hooks(obs, fwd_hooks=[(STEER, lambda act, hook: act + v)])
        manual = policy.run_segment(cache[STEER] + v, STEER, "fc_policy_out", context=cache)
        twice = policy.run_segment(cache[STEER] + 2 * v, STEER, "fc_policy_out", context=cache)
    torch.testing.assert_close(steered, manual, rtol=1e-6, atol=1e-6)
    assert (steered - twice).abs().max() > 1e-3  # a double application would be caught
    assert (steered - cache["fc_policy_out"]).abs().max() > 1e-3
    assert not any(hp.fwd_hooks for hp in policy.hook_dict.values())


def test_bad_observation_shape() -> None:
    with pytest.raises(ShapeMismatchError, match=r"\(N, 3, 64, 64\)"):
        ImpalaPolicy()(torch.rand(2, 64, 64, 3))


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="scale"):
        ImpalaPolicy(scale=0)


def test_imports_emit_no_deprecation_warning() -> None:
    import importlib

    import hookdiff.agent.impala as impala

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        importlib.reload(impala)
        impala.ImpalaPolicy(scale=1)
