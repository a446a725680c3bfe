"""Tiny randomly initialised models for the demo, examples and tests (no download, no pytest).

``make_tiny_transformer`` builds a 2-layer TransformerLens ``HookedTransformer`` from a config;
``make_tiny_convnet`` a small conv net as an ``nn.Sequential``. Both are seeded, so the same seed
gives the same weights. :mod:`hookdiff.testing` re-exports them next to its pytest fixtures.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = ["make_tiny_convnet", "make_tiny_transformer"]


def make_tiny_transformer(
    seed: int = 0, *, act_fn: str = "gelu", dtype: torch.dtype = torch.float32
) -> HookedTransformer:
    """A tiny randomly initialised HookedTransformer (2 layers, d_model 16, vocab 23), offline.

    ``dtype=torch.float64`` builds it in float64 throughout (its config's dtype too), for checks
    that need exact arithmetic.

    Example:
        >>> make_tiny_transformer(seed=1).cfg.n_layers
        2
    """
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(
        n_layers=2,
        d_model=16,
        n_ctx=8,
        d_head=4,
        n_heads=4,
        d_mlp=32,
        d_vocab=23,
        act_fn=act_fn,
        normalization_type="LN",
        seed=seed,
        device="cpu",
        dtype=dtype,
    )
    with warnings.catch_warnings():  # TL 3.x announces HookedTransformer's removal in 4.0
        warnings.filterwarnings("ignore", message=".*HookedTransformer is deprecated.*")
        model = HookedTransformer(cfg)
    model.eval()
    return model


def make_tiny_convnet(seed: int = 0) -> nn.Sequential:
    """A tiny randomly initialised conv net (conv, relu, maxpool, flatten, linear) as a Sequential.

    Example:
        >>> make_tiny_convnet()(torch.zeros(1, 3, 8, 8)).shape
        torch.Size([1, 5])
    """
    gen = torch.Generator().manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 5),
    )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return net.eval()
