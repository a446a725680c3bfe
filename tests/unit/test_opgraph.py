"""Own models without copying: a model declared as ops gets the contract and op-named hook points.

``Residual`` below is ``test_contract.ResidualNet`` written as a :class:`hookdiff.OpGraph`: no
``segment_ops`` / ``run_segment`` of its own. Its values are checked against the weights by hand.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import hookdiff
from hookdiff.contract import DeclaresReadouts, OpGraphModel, Readout
from hookdiff.errors import ConfigError, UnknownHookError


class Residual(hookdiff.OpGraph):
    """x -> fc1 -> relu -> fc2 -> res = fc2 + relu -> head; aux reads relu (off the path)."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.fc1, self.fc2 = nn.Linear(3, 4), nn.Linear(4, 4)
        self.head, self.aux = nn.Linear(4, 2), nn.Linear(4, 1)
        for p in self.parameters():
            p.data = torch.randn(p.shape, generator=gen, dtype=torch.float64)
        op = hookdiff.op
        self.set_ops(
            [
                op("fc1", self.fc1),
                op("relu", nn.ReLU()),
                op("fc2", self.fc2),
                op("res", "add", "fc2", "relu"),
                op("head", self.head, "res"),
                op("aux", self.aux, "relu"),
            ],
            output="head",
            output_dims=("choice",),
            readouts=[Readout("probs", "head", lambda z: z.softmax(-1), "option")],
        )


def _by_hand(net: Residual, x: torch.Tensor, relu_add: torch.Tensor | None = None) -> dict:
    h1 = x @ net.fc1.weight.T + net.fc1.bias
    r = torch.relu(h1) + (0 if relu_add is None else relu_add)
    res = r @ net.fc2.weight.T + net.fc2.bias + r
    return {"fc1": h1, "relu": r, "res": res, "head": res @ net.head.weight.T + net.head.bias}


@pytest.fixture()
def net() -> Residual:
    return Residual()


def test_the_ops_alone_give_the_contract_and_the_forward(net):
    assert isinstance(net, OpGraphModel) and isinstance(net, DeclaresReadouts)
    assert net.hook_names == ("fc1", "relu", "fc2", "res", "head", "aux")
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(net(x), _by_hand(net, x)["head"])
    ops, context = net.segment_ops("fc2", "head")
    assert [o.name for o in ops] == ["res", "head"] and context == ("relu",)


def test_steer_and_capture_take_the_op_names(net):
    x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    v = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    with hookdiff.capture(net, ["relu", "res"]) as acts:
        net(x)
    want = _by_hand(net, x)
    torch.testing.assert_close(acts["relu"], want["relu"])
    torch.testing.assert_close(acts["res"], want["res"])
    with hookdiff.steer(net, "relu", v, 3.0):
        steered = net(x)
    torch.testing.assert_close(steered, _by_hand(net, x, relu_add=3.0 * v)["head"])
    seg = hookdiff.downstream(net, "fc1", 1)
    torch.testing.assert_close(seg(want["fc1"]), want["relu"])


def test_the_analysis_reads_the_declared_ops(net):
    """The exact line walk's breakpoints are the relu's zero crossings along a + t·v at fc1."""
    a = torch.tensor([[0.5, -1.0, 2.0, -0.25]], dtype=torch.float64)
    v = torch.tensor([1.0, 1.0, -1.0, 1.0], dtype=torch.float64)
    walk = hookdiff.line_breakpoints(net, a, "fc1", v, (-3.0, 3.0), depths=["relu"])
    ts = sorted(float(t) for t in walk["breakpoint_t"].values)
    assert ts == pytest.approx(sorted([-0.5, 1.0, 2.0, 0.25]))


def test_bad_op_lists_and_chain_names_without_hooks_are_explained():
    class Bad(hookdiff.OpGraph):
        def __init__(self, ops):
            super().__init__()
            self.set_ops(ops)

    with pytest.raises(ConfigError, match="reads \\['nope'\\]"):
        Bad([hookdiff.op("a", "relu"), hookdiff.op("b", "relu", "nope")])
    with pytest.raises(ConfigError, match="unique"):
        Bad([hookdiff.op("a", "relu"), hookdiff.op("a", "relu")])

    class Manual(nn.Module):  # implements the protocol by hand, no hook point on "relu"
        hook_names = ("fc", "relu")

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

    with pytest.raises(UnknownHookError, match="no module outputs it.*hookdiff.OpGraph"):
        hookdiff.steer(Manual(), "relu", torch.zeros(2), 1.0)
