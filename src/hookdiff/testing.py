"""Assertions and pytest fixtures for hook-level unit tests, ours and other codebases'.

Installing hookdiff registers this module as a pytest plugin (entry point ``pytest11``), so any
project's tests can use the fixtures ``tiny_transformer``, ``tiny_convnet`` and
``no_leaked_hooks`` without importing anything; the assertion helpers are plain functions.
Heavy imports (TransformerLens) happen inside the fixtures so that loading the plugin is cheap.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
import torch
from torch import nn

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = [
    "HookSnapshot",
    "assert_hooks_unchanged",
    "assert_no_hooks",
    "hook_snapshot",
    "make_tiny_convnet",
    "make_tiny_transformer",
]

_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
)

HookSnapshot = dict[str, dict[str, frozenset[int]]]
"""Per module name, per hook kind, the ids of the torch hooks registered there."""


def hook_snapshot(model: nn.Module) -> HookSnapshot:
    """Every torch hook currently on ``model`` and its submodules, by module name and kind."""
    snap: HookSnapshot = {}
    for name, module in model.named_modules():
        kinds = {k: frozenset(getattr(module, k, {})) for k in _HOOK_DICTS}
        kinds = {k: ids for k, ids in kinds.items() if ids}
        if kinds:
            snap[name or "<root>"] = kinds
    return snap


def _describe(model: nn.Module, snap: HookSnapshot) -> list[str]:
    modules = {(n or "<root>"): m for n, m in model.named_modules()}
    lines = []
    for name, kinds in snap.items():
        for kind, ids in kinds.items():
            hooks = getattr(modules[name], kind, {})
            fns = [getattr(hooks.get(i), "__name__", repr(hooks.get(i))) for i in sorted(ids)]
            lines.append(f"  {name}: {kind} {fns}")
    return lines


def _permanent_ids(model: nn.Module) -> set[int]:
    """Ids of TransformerLens permanent hooks, which are meant to stay."""
    ids: set[int] = set()
    for module in model.modules():
        for handle in [*getattr(module, "fwd_hooks", []), *getattr(module, "bwd_hooks", [])]:
            if getattr(handle, "is_permanent", False):
                ids.add(handle.hook.id)
    return ids


def assert_no_hooks(model: nn.Module, *, allow_permanent: bool = True) -> None:
    """Fail if any forward/backward hook is left on ``model`` (TransformerLens permanent excepted).

    Example:
        >>> net = nn.Linear(2, 2)
        >>> assert_no_hooks(net)
    """
    keep = _permanent_ids(model) if allow_permanent else set()
    snap = hook_snapshot(model)
    left = {
        name: {k: ids - keep for k, ids in kinds.items() if ids - keep}
        for name, kinds in snap.items()
    }
    left = {name: kinds for name, kinds in left.items() if kinds}
    if left:
        raise AssertionError(
            f"{type(model).__name__} still has hooks attached:\n"
            + "\n".join(_describe(model, left))
        )


def assert_hooks_unchanged(model: nn.Module, before: HookSnapshot) -> None:
    """Fail if hooks were added to or removed from ``model`` since ``before`` was taken.

    Example:
        >>> net = nn.Linear(2, 2)
        >>> snap = hook_snapshot(net)
        >>> assert_hooks_unchanged(net, snap)
    """
    after = hook_snapshot(model)
    if after == before:
        return
    added: HookSnapshot = {}
    removed: HookSnapshot = {}
    for name in set(after) | set(before):
        a, b = after.get(name, {}), before.get(name, {})
        for kind in set(a) | set(b):
            plus, minus = (
                a.get(kind, frozenset()) - b.get(kind, frozenset()),
                b.get(kind, frozenset()) - a.get(kind, frozenset()),
            )
            if plus:
                added.setdefault(name, {})[kind] = plus
            if minus:
                removed.setdefault(name, {})[kind] = minus
    msg = [f"hooks on {type(model).__name__} changed:"]
    if added:
        msg += ["added (left behind):", *_describe(model, added)]
    if removed:
        msg += ["removed (someone else's hooks were taken off):"]
        msg += [f"  {n}: {k} ids {sorted(i)}" for n, ks in removed.items() for k, i in ks.items()]
    raise AssertionError("\n".join(msg))


def make_tiny_transformer(seed: int = 0, *, act_fn: str = "gelu") -> HookedTransformer:
    """A tiny randomly initialised HookedTransformer, built offline from a config."""
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
    )
    with warnings.catch_warnings():  # TL 3.x announces HookedTransformer's removal in 4.0
        warnings.filterwarnings("ignore", message=".*HookedTransformer is deprecated.*")
        model = HookedTransformer(cfg)
    model.eval()
    return model


def make_tiny_convnet(seed: int = 0) -> nn.Sequential:
    """A tiny randomly initialised conv net (conv, relu, maxpool, flatten, linear) as a Sequential."""
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


@pytest.fixture
def tiny_transformer() -> HookedTransformer:
    """A fresh tiny random HookedTransformer (2 layers, d_model 16, vocab 23, seed 0)."""
    return make_tiny_transformer()


@pytest.fixture
def tiny_convnet() -> nn.Sequential:
    """A fresh tiny random conv net taking ``(N, 3, 8, 8)`` inputs."""
    return make_tiny_convnet()


@pytest.fixture
def no_leaked_hooks() -> Iterator[Callable[[nn.Module], nn.Module]]:
    """Watch models: the test fails if a watched model's hooks differ at teardown.

    Example (in any codebase with hookdiff installed)::

        def test_my_patch(no_leaked_hooks, tiny_transformer):
            model = no_leaked_hooks(tiny_transformer)
            with my_patching_context(model):
                model(tokens)
    """
    watched: list[tuple[nn.Module, HookSnapshot]] = []

    def watch(model: nn.Module) -> nn.Module:
        watched.append((model, hook_snapshot(model)))
        return model

    yield watch
    for model, before in watched:
        assert_hooks_unchanged(model, before)
