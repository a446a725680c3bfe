"""A researcher's own small codebase, using hookdiff only through its public API.

Three models as a user has them: a HookedTransformer built from a config with a mean-difference
steering vector, a conv net with its own ``forward`` (with an eval-mode BatchNorm) that declares
its op graph through :mod:`hookdiff.contract`, and the maze agent. The tests beside this file
exercise the first hour of such a user: steering, capturing, sweeping, the analysis, and every
trap that used to be silent.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import torch
from torch import Tensor, nn
from transformer_lens import HookedTransformer, HookedTransformerConfig

import hookdiff
from hookdiff.contract import INPUT, Op
from hookdiff.ops import apply_op


def build_transformer(seed: int = 0) -> HookedTransformer:
    """A 2-layer HookedTransformer from a config (random weights, no download)."""
    cfg = HookedTransformerConfig(
        n_layers=2,
        d_model=32,
        n_ctx=32,
        d_head=8,
        n_heads=4,
        d_mlp=64,
        d_vocab=50,
        act_fn="gelu",
        normalization_type="LN",
        seed=seed,
        device="cpu",
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*HookedTransformer is deprecated.*")
        return HookedTransformer(cfg).eval()


def mean_difference_vector(
    model: nn.Module, hook: str, positive: Tensor, negative: Tensor
) -> Tensor:
    """The mean activation at ``hook`` on ``positive`` minus that on ``negative``: ``(d_model,)``."""
    means = []
    for tokens in (positive, negative):
        with hookdiff.capture(model, [hook]) as acts:
            model(tokens)
        means.append(acts[hook].mean(dim=(0, 1)))
    return means[0] - means[1]


class MyConvNet(nn.Module):
    """A conv net with its own forward; it declares its ops, so hookdiff can run its segments.

    Hook names are its module names plus ``relu`` and ``flat`` (ops without a module, so only the
    segment runner, not a torch hook, can stop there).
    """

    def __init__(self, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(6 * 4 * 4, 4)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.4)
            self.bn.running_mean.copy_(torch.randn(6, generator=gen) * 0.2)
            self.bn.running_var.copy_(torch.rand(6, generator=gen) + 0.5)
        self.ops = (
            Op("conv", "conv", (INPUT,), self.conv),
            Op("bn", "linear", ("conv",), self.bn),  # eval-mode BatchNorm: affine per channel
            Op("relu", "relu", ("bn",)),
            Op("pool", "maxpool", ("relu",), self.pool),
            Op("flat", "flatten", ("pool",)),
            Op("fc", "linear", ("flat",), self.fc),
        )

    @property
    def hook_names(self) -> tuple[str, ...]:
        return tuple(op.name for op in self.ops)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(torch.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(x, 1))

    def segment_ops(self, start: str, stop: str) -> tuple[tuple[Op, ...], tuple[str, ...]]:
        names = self.hook_names
        first = 0 if start == INPUT else names.index(start) + 1
        return self.ops[first : names.index(stop) + 1], ()

    def run_segment(
        self, x: Tensor, start: str, stop: str, context: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        for op in self.segment_ops(start, stop)[0]:
            x = apply_op(op, [x])
        return x
