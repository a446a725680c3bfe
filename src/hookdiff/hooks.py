"""The hook engine: inject t·v at one hook point, capture activations, run only a segment.

Works on an existing model: a TransformerLens ``HookedRootModule`` (hook names are its
``hook_dict`` names) or any ``torch.nn.Module`` (hook names are its ``named_modules()`` names).
Every hook lives inside a context manager that removes it in ``finally`` — on exit and on every
exception — and removes only the hooks it added, so a user's own hooks and TransformerLens's
permanent hooks survive. Hook functions follow TransformerLens's ``fn(activation, hook)``
signature, so :func:`steering_hook` also drops into a ``fwd_hooks`` list of ``run_with_hooks``.
The batched sweep over coefficients built on these lives in :mod:`hookdiff.sweeps`; the shape
checks of ``steer`` in :mod:`hookdiff._steer_shapes`.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from transformer_lens import HookedRootModule

from hookdiff._steer_shapes import _scaled
from hookdiff.errors import (
    HookTypeError,
    NotCapturedError,
    NotEnteredWarning,
    SegmentError,
    ShapeMismatchError,
    UnknownHookError,
    unknown_name_message,
)
from hookdiff.ops import tile_rows
from hookdiff.segments import as_segmented, is_bridge, locate

__all__ = [
    "Captured",
    "HookContext",
    "HookFn",
    "Segment",
    "as_coeffs",
    "attach",
    "capture",
    "downstream",
    "hook_chain",
    "hook_names",
    "resolve_hook",
    "steer",
    "steering_hook",
    "tile_rows",
    "tile_coeffs",
]

HookFn = Callable[..., Tensor | None]
"""TransformerLens's hook signature: ``fn(activation, hook) -> Tensor | None``."""


# --------------------------------------------------------------------------------------------
# Resolving hook sites
# --------------------------------------------------------------------------------------------


def hook_names(model: nn.Module) -> list[str]:
    """All names a hook can be attached to: ``hook_dict`` keys on a HookedRootModule, else modules.

    Example:
        >>> hook_names(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
        ['0', '1']
    """
    points = _hook_points(model)
    if points is not None:
        return list(points)
    return [name for name, _ in model.named_modules() if name]


def _hook_points(model: nn.Module) -> Mapping[str, nn.Module] | None:
    """``{name: HookPoint}`` of a model that names its hook points (a HookedRootModule, or a
    TransformerBridge, whose ``hook_dict`` lists its own names and its legacy aliases); None
    for a plain module (named by ``named_modules()``)."""
    if isinstance(model, HookedRootModule) or is_bridge(model):
        return model.hook_dict
    return None


def resolve_hook(model: nn.Module, name: str) -> nn.Module:
    """The module whose output is the activation called ``name``; the one place names resolve.

    Raises:
        UnknownHookError: ``name`` is not a hook site of ``model``; the message lists the closest.
        HookTypeError: ``name`` is not a string (e.g. a list of names).

    Example:
        >>> resolve_hook(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), "1")
        ReLU()
    """
    if not isinstance(name, str):
        several = (
            " steer(), downstream() and resolve_hook() take one hook name; capture() and "
            "sweep(capture=...) take a list of them"
            if isinstance(name, list | tuple)
            else ""
        )
        raise HookTypeError(
            f"a hook name is a string; got {type(name).__name__} {name!r}.{several}"
        )
    points = _hook_points(model)
    if points is not None:
        site = points.get(name)
        if site is not None:
            return site
        extra = ""
        if name in dict(model.named_modules()):
            outs = [h for h in points if h.startswith(name + ".") or h == name + "_out"]
            extra = (
                f". '{name}' is a submodule, not a hook point: on a {type(model).__name__} "
                f"hookdiff attaches only to HookPoints (e.g. {outs[-1]!r})."
                if outs
                else ""
            )
        raise UnknownHookError(_unknown_message(model, name, list(points)) + extra)
    modules = dict(model.named_modules())
    if name and name in modules:
        return modules[name]
    if name in getattr(model, "hook_names", ()):
        raise UnknownHookError(
            f"{name!r} is a point of {type(model).__name__}'s chain (its hook_names) but no module "
            f"outputs it, so there is nothing to attach a hook to: declare the model as a "
            f"hookdiff.OpGraph (every op's output is a hook point under the op's name), or pass "
            f"a module name of named_modules()"
        )
    raise UnknownHookError(_unknown_message(model, name, [n for n in modules if n]))


def _unknown_message(model: nn.Module, name: str, known: Sequence[str]) -> str:
    return unknown_name_message(f"hook point of {type(model).__name__}", name, known)


# --------------------------------------------------------------------------------------------
# Hook context managers
# --------------------------------------------------------------------------------------------


class HookContext(contextlib.AbstractContextManager):
    """What :func:`steer`, :func:`capture` and :func:`attach` return: use it in a ``with`` statement.

    Its hooks are attached on entry and removed on exit (and on every exception); it can be
    entered again later. Created and dropped without ever being entered, it did nothing, so it
    warns :class:`~hookdiff.errors.NotEnteredWarning`: ``hookdiff.steer(model, hook, v, 5.0)``
    on a line of its own is a silent no-op otherwise.
    """

    def __init__(self, verb: str, opener: Callable[[], contextlib.AbstractContextManager]):
        self._entered = False
        self._verb = verb
        self._opener = opener
        self._open: list[contextlib.AbstractContextManager] = []

    def __enter__(self) -> Any:
        self._entered = True
        cm = self._opener()
        value = cm.__enter__()
        self._open.append(cm)
        return value

    def __exit__(self, *exc: Any) -> bool | None:
        return self._open.pop().__exit__(*exc)

    def __getitem__(self, key: Any) -> Any:
        raise HookTypeError(
            f"hookdiff.{self._verb}(...) returns a context manager, not activations: write "
            f"`with hookdiff.{self._verb}(...) as acts:`, run the model inside the block, then "
            f"read acts[{key!r}]"
        )

    def __repr__(self) -> str:
        state = "entered" if self._open else "not entered"
        return f"<hookdiff.{self._verb} context manager, {state}>"

    def __del__(self) -> None:
        if getattr(self, "_entered", True):
            return
        with contextlib.suppress(Exception):  # never raise from a finalizer (interpreter exit)
            warnings.warn(
                NotEnteredWarning(
                    f"hookdiff.{self._verb}(...) was created but never entered, so it attached "
                    f"nothing and changed no forward pass. Use it as a context manager: "
                    f"`with hookdiff.{self._verb}(...):` around the forward passes it should affect."
                ),
                stacklevel=2,
            )


@contextlib.contextmanager
def _attached(
    model: nn.Module, fwd_hooks: Sequence[tuple[str, HookFn]], prepend: bool
) -> Iterator[None]:
    """Attach ``(name, fn)`` pairs; remove exactly these on exit and on every exception."""
    sites = [(resolve_hook(model, name), name, fn) for name, fn in fwd_hooks]  # resolve all first
    handles = []
    try:
        for site, name, fn in sites:
            torch_hook = _as_torch_hook(fn, site, name)
            handles.append(site.register_forward_hook(torch_hook, prepend=prepend))
        yield
    finally:
        for handle in handles:
            handle.remove()


def attach(
    model: nn.Module, fwd_hooks: Sequence[tuple[str, HookFn]], *, prepend: bool = False
) -> HookContext:
    """Attach ``(name, fn)`` pairs (TransformerLens's ``fwd_hooks`` list) inside the block.

    Every name is resolved before anything is attached; exactly these hooks are removed on exit
    and on every exception. ``prepend=True`` runs them before every hook already at the same
    point (as :func:`steer` does). ``steer`` and ``capture`` are built on it.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2))
        >>> with attach(net, [("0", lambda act, hook: torch.zeros_like(act))]):
        ...     net(torch.ones(1, 2))
        tensor([[0., 0.]])
    """
    pairs = list(fwd_hooks)
    for name, _ in pairs:
        resolve_hook(model, name)  # fail at the call, not at `with`
    return HookContext("attach", lambda: _attached(model, pairs, prepend))


def _as_torch_hook(fn: HookFn, site: nn.Module, name: str) -> Callable[..., Tensor | None]:
    hook_arg = site if isinstance(getattr(site, "name", None), str) else _NamedSite(site, name)

    def torch_hook(module: nn.Module, inputs: Any, output: Any) -> Tensor | None:
        return fn(output, hook=hook_arg)

    return torch_hook


@dataclass
class _NamedSite:
    """What a hook function receives as ``hook`` on a plain module: the module and its name."""

    module: nn.Module
    name: str | None = None


# --------------------------------------------------------------------------------------------
# Steering
# --------------------------------------------------------------------------------------------


def as_coeffs(coeffs: float | Sequence[float] | Tensor | np.ndarray) -> Tensor:
    """Coefficients as a float tensor: 0-d for a scalar, 1-d for K coefficients."""
    c = torch.as_tensor(np.asarray(coeffs) if not isinstance(coeffs, Tensor) else coeffs)
    if c.ndim > 1:
        raise ShapeMismatchError(
            f"coeffs must be a scalar or a 1-d sequence of K coefficients; got shape {tuple(c.shape)}"
        )
    if c.ndim == 1 and c.numel() == 0:
        raise ShapeMismatchError("coeffs is empty; expected a scalar or at least one coefficient")
    return c.to(torch.get_default_dtype()) if not c.is_floating_point() else c


def tile_coeffs(inputs: Tensor, coeffs: float | Sequence[float] | Tensor | np.ndarray) -> Tensor:
    """The coefficient-major batch for K coefficients: the B ``inputs`` repeated K times.

    Row i is ``inputs[i % B]``, and ``steer(..., coeffs)`` steers it with ``coeffs[i // B]``:
    all B inputs at the first coefficient, then all at the second, and so on. Reshape an output
    to ``(K, B, ...)`` with ``out.reshape(K, B, *out.shape[1:])``. (A sample-major batch — each
    input's K copies side by side — would be steered with the wrong coefficients, silently.)

    Example:
        >>> x = torch.tensor([[1.0], [2.0]])                       # B = 2 inputs
        >>> tile_coeffs(x, [-1.0, 0.0, 1.0]).flatten().tolist()     # K = 3 coefficients
        [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]
    """
    c = as_coeffs(coeffs)
    x = torch.as_tensor(inputs)
    if x.ndim == 0:
        raise ShapeMismatchError("inputs must have a batch dimension; got a 0-d tensor")
    k = 1 if c.ndim == 0 else int(c.shape[0])
    return tile_rows(x, k)  # coefficient-major: row i is x[i % B]


def steering_hook(
    vector: Tensor,
    coeffs: float | Sequence[float] | Tensor = 1.0,
    mask: Tensor | None = None,
) -> HookFn:
    """A TransformerLens-style hook function adding ``coeffs · vector`` to an activation.

    ``vector`` has the activation's shape without the batch dimension (or any shape that
    broadcasts to it), or ``(B, *shape)`` for one vector per sample (row i gets ``v[i % B]``, as
    the published cheese vector is each maze's own). A scalar coefficient is added to every row; K
    coefficients expect a batch of K·B rows laid out coefficient-major (row i gets
    ``coeffs[i // B]``; :func:`tile_coeffs` builds it). ``mask`` (optional) selects positions:
    its shape is a prefix of the activation's per-row shape, e.g. ``(pos,)`` for a residual
    stream ``(batch, pos, d_model)``, or ``(B, pos)`` for one mask per sample (row i gets
    ``mask[i % B]``); masked-out positions are left untouched.

    The function never edits its input in place, and adds the vector once per activation even if
    the same tensor reaches it twice (a parent module returning its child's output).

    Example:
        >>> fn = steering_hook(torch.ones(3), 2.0)
        >>> fn(torch.zeros(2, 3), hook=None)
        tensor([[2., 2., 2.],
                [2., 2., 2.]])
    """
    c = as_coeffs(coeffs)
    vec = torch.as_tensor(vector)
    steered: weakref.WeakValueDictionary[int, Tensor] = weakref.WeakValueDictionary()

    def hook_fn(activation: Tensor, hook: Any = None) -> Tensor | None:
        if not isinstance(activation, Tensor):
            raise HookTypeError(
                f"hookdiff steers tensors; the activation at {_hook_label(hook)} is a "
                f"{type(activation).__name__}. Steer a hook point whose output is one tensor."
            )
        if steered.get(id(activation)) is activation:  # the tensor we returned, seen again
            return None
        scale, direction = _scaled(activation, vec, c, mask, _hook_label(hook))
        out = torch.addcmul(activation, scale, direction)  # activation + scale·direction
        steered[id(out)] = out
        return out

    return hook_fn


def _hook_label(hook: Any) -> str:
    name = getattr(hook, "name", None)
    return repr(name) if name else "the hook point"


def steer(
    model: nn.Module,
    hook: str,
    vector: Tensor,
    coeffs: float | Sequence[float] | Tensor = 1.0,
    *,
    mask: Tensor | None = None,
) -> HookContext:
    """Add ``coeffs · vector`` to the activation at ``hook`` for every forward inside the block.

    Steering runs before every other hook at the same point, whichever was added first: a
    :func:`capture` there, your own hook or TransformerLens's ``run_with_hooks`` / ``run_with_cache``
    see the steered activation. Without ``with`` it does nothing and warns
    :class:`~hookdiff.errors.NotEnteredWarning`.

    Args:
        model: a HookedRootModule or any nn.Module.
        hook: a hook name (``hook_dict`` name, or a ``named_modules()`` name on a plain module).
        vector: the activation's shape without the batch dimension (broadcastable to it), or
            ``(B, *shape)`` for one vector per sample.
        coeffs: a scalar, or K coefficients for a coefficient-major batch of K·B rows (row i gets
            ``coeffs[i // B]``; build it with :func:`tile_coeffs`).
        mask: optional positions to steer: a prefix of the per-row shape, e.g. ``(pos,)``, or
            ``(B, pos)`` for one mask per sample.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        >>> with steer(net, "0", torch.ones(2), [0.0, 1.0]):
        ...     out = net(torch.zeros(2, 2))   # row 0: t=0, row 1: t=1
    """
    resolve_hook(model, hook)  # fail at the call, not at `with`
    fn = steering_hook(vector, coeffs, mask)
    return HookContext("steer", lambda: _attached(model, [(hook, fn)], prepend=True))


class Captured(Mapping[str, Tensor]):
    """Detached activations captured by :func:`capture`, keyed by hook name (last forward wins).

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        >>> with capture(net, ["0", "1"]) as acts:
        ...     _ = net(torch.zeros(4, 2))
        >>> acts
        Captured({'0': (4, 3), '1': (4, 3)})
    """

    def __init__(self, names: Sequence[str]):
        self._names = list(names)
        self._values: dict[str, Tensor] = {}

    def __getitem__(self, name: str) -> Tensor:
        if name not in self._names:
            raise UnknownHookError(unknown_name_message("captured hook", name, self._names))
        if name not in self._values:
            raise NotCapturedError(
                f"{name!r} has no activation yet: no forward pass inside the capture() block "
                f"reached it. Run the model inside `with hookdiff.capture(...) as acts:` before "
                f"reading acts[{name!r}] (or check that the forward goes through that hook point)"
            )
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(n for n in self._names if n in self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        shapes = {k: tuple(v.shape) for k, v in self._values.items()}
        return f"Captured({shapes})"


@contextlib.contextmanager
def _capturing(model: nn.Module, names: Sequence[str]) -> Iterator[Captured]:
    store = Captured(names)

    def recorder(name: str) -> HookFn:
        def record(activation: Tensor, hook: Any = None) -> None:
            store._values[name] = activation.detach().clone()

        return record

    with _attached(model, [(n, recorder(n)) for n in names], prepend=False):
        yield store


def capture(model: nn.Module, hooks: str | Sequence[str]) -> HookContext:
    """Record detached copies of the activations at ``hooks`` during the forwards in the block.

    A capture sees the activation after any :func:`steer` at the same hook point (steering runs
    first there, whichever block was entered first). Reading a hook before a forward reached it
    raises :class:`~hookdiff.errors.NotCapturedError`.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        >>> with capture(net, ["0"]) as acts:
        ...     _ = net(torch.zeros(4, 2))
        >>> acts["0"].shape
        torch.Size([4, 3])
    """
    names = [hooks] if isinstance(hooks, str) else list(hooks)
    for name in names:
        resolve_hook(model, name)  # fail at the call, not at `with`
    return HookContext("capture", lambda: _capturing(model, names))


# --------------------------------------------------------------------------------------------
# Segments: f_n, the n hook points after a hook
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """f_n: maps the activation at ``start`` to the activation at ``stop`` (n points later).

    Call it on a batch of activations at ``start``; ``context`` supplies tensors produced before
    ``start`` that the segment still reads (e.g. a residual block's input), where needed. Its
    ``repr`` is one line (the model's class, not the whole model).

    Example:
        >>> f1 = downstream(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), "0", 1)
        >>> f1, f1(torch.tensor([[-1.0, 2.0]]))
        (Segment(Sequential: '0' -> '1', n=1), tensor([[0., 2.]]))
    """

    model: nn.Module
    start: str
    stop: str
    n: int
    _run: Callable[..., Tensor]

    def __call__(self, activation: Tensor, context: Mapping[str, Tensor] | None = None) -> Tensor:
        return self._run(activation, context)

    def __repr__(self) -> str:
        return f"Segment({type(self.model).__name__}: {self.start!r} -> {self.stop!r}, n={self.n})"


def hook_chain(model: nn.Module) -> list[str]:
    """The ordered hook points ``downstream`` walks along, or a clear error if there are none.

    A model declares its chain by implementing :class:`hookdiff.contract.SegmentedModel` (the maze
    agent does). A HookedTransformer's chain is its residual stream; an ``nn.Sequential``'s its
    children.

    Example:
        >>> hook_chain(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
        ['0', '1']
    """
    return list(as_segmented(model).hook_names)


def downstream(model: nn.Module, hook: str, n: int) -> Segment:
    """f_n as a callable: runs only the segment from ``hook`` to ``n`` hook points later.

    Raises:
        SegmentError: ``n`` is not in 1 .. (hook points left after ``hook``).

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
        >>> f2 = downstream(net, "0", 2)      # ReLU then the last Linear
        >>> f2(torch.ones(5, 2)).shape
        torch.Size([5, 1])
        >>> f2
        Segment(Sequential: '0' -> '2', n=2)
    """
    segmented = as_segmented(model)
    start = locate(segmented, hook)
    chain = list(segmented.hook_names)
    i = chain.index(start)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1 or i + n >= len(chain):
        raise SegmentError(
            f"n={n!r} is out of range for a segment starting at {hook!r}: expected an int in "
            f"1..{len(chain) - 1 - i} (the chain ends at {chain[-1]!r})"
        )
    stop = chain[i + n]

    def run(x: Tensor, context: Mapping[str, Tensor] | None = None) -> Tensor:
        return segmented.run_segment(x, start, stop, context=context)

    return Segment(model, hook, stop, n, run)


#: The names that moved to :mod:`hookdiff.sweeps`, importable from here (imported on first use:
#: that module builds on this one).
