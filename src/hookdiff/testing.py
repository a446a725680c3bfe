"""Assertions and pytest fixtures for hook-level unit tests, ours and other codebases'.

Installing hookdiff registers this module as a pytest plugin (entry point ``pytest11``), so any
project's tests can use the fixtures ``hookdiff_tiny_transformer``, ``hookdiff_tiny_convnet`` and
``hookdiff_no_leaked_hooks`` without importing anything (the unprefixed names still work and warn
that they are deprecated); the assertion helpers are plain functions, usable without pytest
installed. Loading the plugin imports
neither torch nor TransformerLens: the fixtures import them when a test asks for a model. The tiny
models live in :mod:`hookdiff.tiny` and are re-exported here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

try:
    import pytest

    _fixture = pytest.fixture
except ImportError:  # the assertion helpers work without pytest; only the fixtures need it

    def _fixture(fn: Callable[..., Any]) -> Callable[..., Any]:
        return fn


if TYPE_CHECKING:
    from torch import nn
    from transformer_lens import HookedTransformer
    from transformer_lens.model_bridge import TransformerBridge

    from hookdiff.tiny import (
        make_tiny_bridge,
        make_tiny_convnet,
        make_tiny_gpt2_bridge,
        make_tiny_transformer,
    )

__all__ = [
    "HookSnapshot",
    "assert_hooks_unchanged",
    "assert_no_hooks",
    "hook_snapshot",
    "make_tiny_bridge",
    "make_tiny_convnet",
    "make_tiny_gpt2_bridge",
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
    """Every torch hook currently on ``model`` and its submodules, by module name and kind.

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(2, 2))
        >>> handle = net[0].register_forward_hook(lambda m, i, o: None)
        >>> list(hook_snapshot(net))
        ['0']
        >>> handle.remove()
    """
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
        >>> from torch import nn
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
        >>> from torch import nn
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


_TINY_MODELS = (
    "make_tiny_bridge",
    "make_tiny_convnet",
    "make_tiny_gpt2_bridge",
    "make_tiny_transformer",
)


def __getattr__(name: str) -> Any:
    """Re-export the tiny models of :mod:`hookdiff.tiny` on first use (it imports torch)."""
    if name in _TINY_MODELS:
        from hookdiff import tiny

        return getattr(tiny, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@_fixture
def hookdiff_tiny_transformer() -> HookedTransformer:
    """A fresh tiny random HookedTransformer (2 layers, d_model 16, vocab 23, seed 0)."""
    from hookdiff.tiny import make_tiny_transformer

    return make_tiny_transformer()


@_fixture
def hookdiff_tiny_bridge() -> TransformerBridge:
    """A fresh tiny random TransformerBridge (``boot_native``: 2 layers, d_model 16, vocab 23)."""
    from hookdiff.tiny import make_tiny_bridge

    return make_tiny_bridge()


@_fixture
def hookdiff_tiny_convnet() -> nn.Sequential:
    """A fresh tiny random conv net taking ``(N, 3, 8, 8)`` inputs."""
    from hookdiff.tiny import make_tiny_convnet

    return make_tiny_convnet()


@_fixture
def hookdiff_no_leaked_hooks() -> Iterator[Callable[[nn.Module], nn.Module]]:
    """Watch models: the test fails if a watched model's hooks differ at teardown.

    Example (in any codebase with hookdiff installed)::

        def test_my_patch(hookdiff_no_leaked_hooks, hookdiff_tiny_transformer):
            model = hookdiff_no_leaked_hooks(hookdiff_tiny_transformer)
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


def _deprecated(old: str) -> None:
    warnings.warn(
        f"the pytest fixture {old!r} is deprecated; use 'hookdiff_{old}' (hookdiff's fixtures are "
        f"prefixed so they cannot collide with a project's own)",
        DeprecationWarning,
        stacklevel=2,
    )


@_fixture
def tiny_transformer(hookdiff_tiny_transformer: HookedTransformer) -> HookedTransformer:
    """Deprecated alias of ``hookdiff_tiny_transformer``."""
    _deprecated("tiny_transformer")
    return hookdiff_tiny_transformer


@_fixture
def tiny_convnet(hookdiff_tiny_convnet: nn.Sequential) -> nn.Sequential:
    """Deprecated alias of ``hookdiff_tiny_convnet``."""
    _deprecated("tiny_convnet")
    return hookdiff_tiny_convnet


@_fixture
def no_leaked_hooks(
    hookdiff_no_leaked_hooks: Callable[[nn.Module], nn.Module],
) -> Callable[[nn.Module], nn.Module]:
    """Deprecated alias of ``hookdiff_no_leaked_hooks``."""
    _deprecated("no_leaked_hooks")
    return hookdiff_no_leaked_hooks
