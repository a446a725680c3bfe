"""The model contract: a user's own model (not the agent) gets every analysis feature.

``ResidualNet`` below is the kind of model a researcher writes: a plain ``nn.Module`` with a residual
add and an off-path auxiliary head, implementing hookdiff's protocols itself (its ops, segments,
output and one readout). Every expected value is computed by hand from its weights.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import hookdiff
from hookdiff.contract import (
    INPUT,
    DeclaresReadouts,
    Op,
    OpGraphModel,
    Readout,
    SegmentedModel,
)
from hookdiff.errors import NoHookChainError, UnknownHookError
from hookdiff.ops import apply_op


class ResidualNet(nn.Module):
    """x -> fc1 -> relu -> fc2 -> res = fc2 + relu -> head (2 logits); aux reads relu (off path)."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.fc1, self.fc2 = nn.Linear(3, 4), nn.Linear(4, 4)
        self.head, self.aux = nn.Linear(4, 2), nn.Linear(4, 1)
        for p in self.parameters():
            p.data = torch.randn(p.shape, generator=gen, dtype=torch.float64)
        self.ops = (
            Op("fc1", "linear", (INPUT,), self.fc1),
            Op("relu", "relu", ("fc1",)),
            Op("fc2", "linear", ("relu",), self.fc2),
            Op("res", "add", ("fc2", "relu")),
            Op("head", "linear", ("res",), self.head),
            Op("aux", "linear", ("relu",), self.aux),
        )
        self.hook_names = tuple(op.name for op in self.ops)
        self.output_hook = "head"
        self.output_dims = ("choice",)
        self.readouts = (Readout("probs", "head", lambda z: z.softmax(-1), "option", ("a", "b")),)

    def segment_ops(self, start: str, stop: str) -> tuple[tuple[Op, ...], tuple[str, ...]]:
        names = (INPUT, *self.hook_names)
        wanted, picked = {stop}, []
        for op in reversed(self.ops[names.index(start) : names.index(stop)]):
            if op.name in wanted:
                picked.append(op)
                wanted = (wanted - {op.name}) | set(op.inputs)
        return tuple(reversed(picked)), tuple(sorted(wanted - {start}, key=names.index))

    def run_segment(
        self, x: Tensor, start: str, stop: str, context: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        ops, needed = self.segment_ops(start, stop)
        env = {start: x, **{n: (context or {})[n] for n in needed}}
        for op in ops:
            env[op.name] = apply_op(op, [env[n] for n in op.inputs])
        return env[stop]

    def forward(self, x: Tensor) -> Tensor:
        return self.run_segment(x, INPUT, "head")


@torch.no_grad()
def _by_hand(net: ResidualNet, h1: Tensor) -> dict[str, Tensor]:
    """Every activation after fc1, from the weights directly."""
    r = torch.relu(h1)
    res = r @ net.fc2.weight.T + net.fc2.bias + r
    head = res @ net.head.weight.T + net.head.bias
    return {"relu": r, "res": res, "head": head, "probs": head.softmax(-1)}


@pytest.fixture()
def net() -> ResidualNet:
    return ResidualNet()


def test_the_user_model_satisfies_the_protocols(net: ResidualNet) -> None:
    assert isinstance(net, SegmentedModel)
    assert isinstance(net, OpGraphModel)
    assert isinstance(net, DeclaresReadouts)
    with pytest.raises(NoHookChainError, match="SegmentedModel"):
        hookdiff.downstream(nn.Linear(2, 2), "weight", 1)


def test_downstream_runs_the_declared_segment(net: ResidualNet) -> None:
    h1 = torch.randn(5, 4, dtype=torch.float64)
    f3 = hookdiff.downstream(net, "fc1", 3)  # relu, fc2, res
    assert f3.stop == "res"
    torch.testing.assert_close(f3(h1), _by_hand(net, h1)["res"])
    with pytest.raises(UnknownHookError, match="closest: 'fc2'"):
        hookdiff.downstream(net, "fc3", 1)


def test_nonlinearity_uses_the_declared_output_and_readout(net: ResidualNet) -> None:
    gen = torch.Generator().manual_seed(1)
    h1 = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    v = torch.randn(4, generator=gen, dtype=torch.float64)
    ts = [-2.0, -0.5, 0.0, 0.5, 2.0]
    ds = hookdiff.nonlinearity(net, h1, "fc1", v, ts, breakpoints=True)
    # the off-path aux head is left out by default, the readout comes last
    assert list(ds["depth"].values) == ["relu", "fc2", "res", "head", "probs"]
    assert ds["diff_logits"].dims == ("sample", "t", "choice")
    assert list(ds["option"].values) == ["a", "b"]
    base = _by_hand(net, h1)
    for k, t in enumerate(ts):
        steered = _by_hand(net, h1 + t * v)
        for name, var in (("head", "diff_logits"), ("probs", "diff_probs")):
            want = (steered[name] - base[name]).numpy()
            np.testing.assert_allclose(ds[var].values[:, k], want, rtol=1e-12, atol=1e-12)


def test_line_breakpoints_are_the_relu_zero_crossings(net: ResidualNet) -> None:
    h1 = torch.tensor([[1.0, -2.0, 0.5, 3.0]], dtype=torch.float64)
    v = torch.tensor([1.0, 1.0, -1.0, 0.25], dtype=torch.float64)
    ds = hookdiff.line_breakpoints(net, h1, "fc1", v, (-3.0, 3.0))
    # relu unit j turns at t = -h1_j / v_j: -1, 2, 0.5 and -12 (outside [-3, 3])
    np.testing.assert_allclose(hookdiff.breakpoints_at(ds, 0, "head"), [-1.0, 0.5, 2.0])
    assert int(ds["n_pieces"].sel(depth="probs").item()) == 4


def test_a_segment_reading_earlier_activations_asks_for_context(net: ResidualNet) -> None:
    h1 = torch.randn(3, 4, dtype=torch.float64)
    r = torch.relu(h1)
    h2 = _by_hand(net, h1)["res"] - r  # fc2's output
    v = torch.ones(4, dtype=torch.float64)
    with pytest.raises(UnknownHookError, match="'relu'"):
        hookdiff.nonlinearity(net, h2, "fc2", v, [1.0], breakpoints=False)
    ds = hookdiff.nonlinearity(net, h2, "fc2", v, [1.0], context={"relu": r}, breakpoints=False)
    want = v @ net.head.weight.detach().T  # the head is the only op after the add
    np.testing.assert_allclose(
        ds["diff_logits"].values[:, 0], want.expand(3, 2).numpy(), rtol=1e-12
    )


def test_engine_and_analysis_import_no_maze_agent_or_study() -> None:
    code = (
        "import sys, hookdiff, hookdiff.analysis, hookdiff.hooks, hookdiff.contract; "
        "print(sorted(m for m in sys.modules if m.startswith(('hookdiff.agent', "
        "'hookdiff.maze', 'hookdiff.study', 'hookdiff.training', 'procgen', 'gym'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("shape", "pool"),
    [((5, 6, 17, 16), nn.MaxPool2d(3, stride=2, padding=1)), ((2, 3, 9, 9), nn.MaxPool2d(2))],
)
def test_maxpool_op_gives_the_modules_values(shape, pool, dtype):
    """apply_op's max pool (the channels-last kernel on the CPU) equals the module bit for bit,
    ties, infinities and NaN included, in the input's NCHW layout; with a gradient, so are the
    gradients (routed to the same tied input)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(-3, 4, shape, generator=g).to(dtype)  # many ties within windows
    x[0, 0, 0, :3] = torch.tensor([float("inf"), -float("inf"), float("nan")])
    x[1] = torch.randn(shape[1:], generator=g, dtype=dtype)
    op = Op("y", "maxpool", ("x",), pool)
    got, want = apply_op(op, [x]), pool(x)
    assert got.is_contiguous() and got.dtype == dtype
    torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True)
    leaf = x.clone().requires_grad_(True)
    apply_op(op, [leaf]).nansum().backward()
    ref = x.clone().requires_grad_(True)
    pool(ref).nansum().backward()
    assert torch.equal(leaf.grad, ref.grad)
