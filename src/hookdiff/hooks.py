"""The hook engine: inject t·v at one hook point, capture activations, run only a segment.

Works on an existing model: a TransformerLens ``HookedRootModule`` (hook names are its
``hook_dict`` names) or any ``torch.nn.Module`` (hook names are its ``named_modules()`` names).
Every hook lives inside a context manager that removes it in ``finally`` — on exit and on every
exception — and removes only the hooks it added, so a user's own hooks and TransformerLens's
permanent hooks survive. Hook functions follow TransformerLens's ``fn(activation, hook)``
signature, so :func:`steering_hook` also drops into a ``fwd_hooks`` list of ``run_with_hooks``.
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
import xarray as xr
from torch import Tensor, nn
from transformer_lens import HookedRootModule, HookedTransformer

from hookdiff.contract import DeclaresReadouts, tile_rows
from hookdiff.errors import (
    HookTypeError,
    NotCapturedError,
    NotEnteredWarning,
    SegmentError,
    ShapeMismatchError,
    TrainingModeWarning,
    UnknownHookError,
    unknown_name_message,
)
from hookdiff.segments import as_segmented, locate

__all__ = [
    "OUTPUT",
    "OUTPUT_NAMES",
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
    "sweep",
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
    if isinstance(model, HookedRootModule):
        return list(model.hook_dict)
    return [name for name, _ in model.named_modules() if name]


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
    if isinstance(model, HookedRootModule):
        site = model.hook_dict.get(name)
        if site is not None:
            return site
        extra = ""
        if name in dict(model.named_modules()):
            outs = [h for h in model.hook_dict if h.startswith(name + ".") or h == name + "_out"]
            extra = (
                f". '{name}' is a submodule, not a hook point: on a HookedRootModule hookdiff "
                f"attaches only to HookPoints (e.g. {outs[-1]!r})."
                if outs
                else ""
            )
        raise UnknownHookError(_unknown_message(model, name, list(model.hook_dict)) + extra)
    modules = dict(model.named_modules())
    if name and name in modules:
        return modules[name]
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


def _scaled(
    activation: Tensor, vec: Tensor, c: Tensor, mask: Tensor | None, where: str
) -> tuple[Tensor, Tensor]:
    """``(scale, direction)`` with ``scale · direction`` the tensor to add to ``activation``.

    ``scale`` holds one coefficient per row (shaped to broadcast over the row), ``direction`` the
    (masked) vector; kept apart so the add is one fused ``addcmul`` in the activation's layout.
    """
    vec = _fitted_vector(
        activation, vec.to(device=activation.device, dtype=activation.dtype), where
    )
    if mask is not None:
        vec = vec * _fitted_mask(activation, torch.as_tensor(mask), where)
    return _row_coeffs(activation, c, where), vec


def _fitted_vector(activation: Tensor, vec: Tensor, where: str) -> Tensor:
    """The vector as added: per-row shape, or ``(rows, ...)`` for one vector per sample."""
    row_shape = tuple(activation.shape[1:])
    rows = activation.shape[0]
    if vec.ndim != activation.ndim:  # one direction for every row
        if not _broadcasts_to(tuple(vec.shape), row_shape):
            raise ShapeMismatchError(
                f"steering vector of shape {tuple(vec.shape)} does not broadcast to the activation "
                f"at {where}, whose per-row shape is {row_shape} (full shape "
                f"{tuple(activation.shape)}); expected the activation's shape without the batch "
                f"dimension, or (B, *shape) for one vector per sample"
                + _fewer_positions_hint("vector", tuple(vec.shape), row_shape)
            )
        return vec
    if tuple(vec.shape[1:]) != row_shape or rows % vec.shape[0]:  # (B, ...): one per sample
        raise ShapeMismatchError(
            f"per-sample steering vectors of shape {tuple(vec.shape)} do not fit the activation at "
            f"{where} of shape {tuple(activation.shape)}: expected (B, *{row_shape}) with the "
            f"activation's rows a multiple K·B of B, laid out coefficient-major (row i is sample "
            f"i % B; hookdiff.tile_coeffs builds such a batch)"
            + _fewer_positions_hint("vector", tuple(vec.shape[1:]), row_shape)
        )
    return tile_rows(vec, rows // vec.shape[0])  # row i: v[i % B]


def _fitted_mask(activation: Tensor, mask: Tensor, where: str) -> Tensor:
    """The mask as a 0/1 factor broadcasting against the activation (per position or per row)."""
    row_shape = tuple(activation.shape[1:])
    rows = activation.shape[0]
    m = mask.to(device=activation.device, dtype=activation.dtype)
    if tuple(m.shape) == row_shape[: m.ndim]:  # one mask for every row: (pos,) ...
        return m.reshape(m.shape + (1,) * (len(row_shape) - m.ndim))
    per_row = m.ndim >= 2 and tuple(m.shape[1:]) == row_shape[: m.ndim - 1]
    if per_row and rows % m.shape[0] == 0:  # one mask per sample: (B, pos) ...
        m = tile_rows(m, rows // m.shape[0])  # row i: mask[i % B]
        return m.reshape(m.shape + (1,) * (len(row_shape) - m.ndim + 1))
    hint = _fewer_positions_hint("mask", tuple(m.shape), row_shape)
    if not hint and m.ndim >= 2:
        hint = _fewer_positions_hint("mask", tuple(m.shape[1:]), row_shape)
    raise ShapeMismatchError(
        f"position mask of shape {tuple(m.shape)} fits neither the leading per-row dimensions "
        f"{row_shape[: m.ndim]} of the activation at {where} (one mask for every row) nor "
        f"(B, *{row_shape[: max(m.ndim - 1, 1)]}) with B dividing its {rows} rows (one mask per "
        f"sample); full shape {tuple(activation.shape)}" + hint
    )


def _fewer_positions_hint(what: str, given: tuple[int, ...], row_shape: tuple[int, ...]) -> str:
    """Why a position-indexed vector or mask longer than the activation fails, and the fixes."""
    if not given or not row_shape or given[0] <= row_shape[0]:
        return ""
    if len(given) > 1 and not _broadcasts_to(given[1:], row_shape[1 : len(given)]):
        return ""
    return (
        f". The {what} covers {given[0]} positions but this forward has {row_shape[0]}: in "
        f"KV-cached generation (model.generate(..., use_past_kv_cache=True)) each forward after "
        f"the first sees only the new tokens, so a position-indexed {what} cannot line up. Fix: "
        f"a vector without a position axis (shape {row_shape[1:]}) and no mask steers every "
        f"position of every forward; to steer only the prompt, run the prompt's forward inside "
        f"steer() and continue from its KV cache outside the block"
    )


def _row_coeffs(activation: Tensor, c: Tensor, where: str) -> Tensor:
    """The coefficient of every row, shaped to broadcast over the row (coefficient-major)."""
    c = c.to(device=activation.device, dtype=activation.dtype)
    if c.ndim == 0:
        return c
    rows, k = activation.shape[0], c.shape[0]
    if rows % k:
        raise ShapeMismatchError(
            f"{k} coefficients need a coefficient-major batch of K·B rows at {where} (all B "
            f"inputs at coeffs[0], then all at coeffs[1], ...; row i gets coeffs[i // B]); the "
            f"activation has {rows} rows, not a multiple of K={k}. Build the batch with "
            f"hookdiff.tile_coeffs(inputs, coeffs)"
        )
    per_row = c.repeat_interleave(rows // k)  # row i gets coeffs[i // B]
    return per_row.reshape((rows,) + (1,) * (activation.ndim - 1))


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether ``shape`` broadcasts to exactly ``target`` (never enlarging the activation)."""
    try:
        return torch.broadcast_shapes(shape, target) == target
    except RuntimeError:
        return False


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
# Sweeps over coefficients
# --------------------------------------------------------------------------------------------

OUTPUT = "output"
"""Name under which :func:`sweep` stores the model's own output (``"logits"`` is accepted too)."""

#: Names :func:`sweep` reads as the model's output (``"logits"`` only where no hook has that name).
OUTPUT_NAMES = (OUTPUT, "logits")

#: Modules that make one row of a batch depend on the others, or on chance, in training mode.
_ROW_COUPLING = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)


def sweep(
    model: nn.Module,
    inputs: Tensor,
    hook: str,
    vector: Tensor,
    coeffs: Sequence[float] | Tensor | np.ndarray,
    capture: str | Sequence[str] = (OUTPUT,),
    *,
    mask: Tensor | None = None,
    max_rows: int | None = None,
    forward: Callable[[nn.Module, Tensor], Tensor] | None = None,
) -> xr.Dataset:
    """Steer at ``hook`` with every coefficient in one batched forward; capture downstream.

    The B inputs are tiled coefficient-major into K·B rows (:func:`tile_coeffs`) and run
    together (in chunks of whole coefficients of at most ``max_rows`` rows, the caller's memory
    budget; a chunk is never less than one coefficient, so B > ``max_rows`` forwards B rows). The t = 0 baseline is always returned: from the sweep when 0 is among the
    coefficients, else from one extra chunk. A model in training mode with BatchNorm or dropout
    warns :class:`~hookdiff.errors.TrainingModeWarning` (rows of one batch would leak into each
    other): call ``model.eval()`` first.

    Args:
        model: the model; called as ``forward(model, batch)`` (default ``model(batch)``).
        inputs: B inputs (batch first): observations, tokens, ...
        hook: where to add ``t · vector``.
        vector: the steering vector (the activation's shape without the batch dimension).
        coeffs: K coefficients t.
        capture: hook names to capture, and/or ``"output"`` (or ``"logits"``) for the model's
            output.
        mask: optional position mask, as in :func:`steer`.
        max_rows: at most this many rows per forward, but at least one coefficient's B rows
            (None: all K·B rows at once).
        forward: how to call the model, e.g. ``lambda m, x: m(x, return_type="logits")``.

    Returns:
        An ``xarray.Dataset`` with, per captured name, a variable of dims ``(coeff, batch, ...)``
        and its t = 0 baseline ``<name>_baseline`` of dims ``(batch, ...)`` (``ds.output`` and
        ``ds.output_baseline`` for the output; until 0.1 the baseline was ``<name>:baseline``).
        The coordinate ``coeff`` is float64. The per-row dims are named by what they hold:
        the output ``(logit,)``, ``(pos, vocab)`` on a transformer or the model's declared
        ``output_dims`` (the maze agent: ``(action,)``), as in :func:`hookdiff.nonlinearity`;
        a HookedTransformer's hooks ``(pos, d_model)``, ``(pos, d_mlp)``, ``(pos, head,
        d_head)``, ``(head, query_pos, key_pos)``; elsewhere ``(features,)``, ``(pos,
        features)``, ``(channel, height, width)``. A dim name that would have different sizes
        in two variables is prefixed with the variable's name there (``"2.height"``). Every
        variable has ``long_name`` and ``description`` attrs.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2))
        >>> ds = sweep(net, torch.zeros(3, 2), "0", torch.ones(2), [-1.0, 1.0])
        >>> ds.output.dims, ds.output_baseline.dims
        (('coeff', 'batch', 'logit'), ('batch', 'logit'))
    """
    names = _capture_names(model, hook, capture)
    _warn_if_rows_coupled(model)
    c = as_coeffs(coeffs).reshape(-1)
    b = inputs.shape[0]
    k_per_chunk = len(c) if max_rows is None else max(1, max_rows // max(b, 1))
    has_zero = bool((c == 0).any())
    chunks = [c[i : i + k_per_chunk] for i in range(0, len(c), k_per_chunk)]
    if not has_zero:
        chunks.append(torch.zeros(1, dtype=c.dtype))
    pieces: dict[str, list[Tensor]] = {n: [] for n in names}
    with torch.no_grad():
        for chunk in chunks:
            got = _sweep_chunk(model, inputs, hook, vector, chunk, names, mask, forward)
            for n, value in got.items():
                pieces[n].append(value.reshape((len(chunk), b) + tuple(value.shape[1:])))
    return _sweep_dataset(model, pieces, c, has_zero, hook, vector, names)


def _capture_names(model: nn.Module, hook: str, capture: str | Sequence[str]) -> list[str]:
    """The captured names, every hook resolved before any forward."""
    names = [capture] if isinstance(capture, str) else list(capture)
    if not names:
        raise ShapeMismatchError("capture is empty; name at least one hook, or 'output'")
    resolve_hook(model, hook)
    for n in names:
        if not _is_output(model, n):
            resolve_hook(model, n)
    return names


def _is_output(model: nn.Module, name: str) -> bool:
    """Whether ``name`` stands for the model's output in ``sweep(capture=...)``."""
    return name == OUTPUT or (name in OUTPUT_NAMES and name not in hook_names(model))


def _warn_if_rows_coupled(model: nn.Module) -> None:
    """Warn when BatchNorm / dropout would make the rows of one batched forward depend on others."""
    coupled = [
        name or type(model).__name__
        for name, m in model.named_modules()
        if isinstance(m, _ROW_COUPLING)
        and (m.training or getattr(m, "track_running_stats", True) is False)
    ]
    if coupled:
        warnings.warn(
            TrainingModeWarning(
                f"sweep runs all coefficients in one batch, but {type(model).__name__} has "
                f"BatchNorm / dropout modules in training mode ({', '.join(coupled[:5])}): "
                f"BatchNorm normalises each row with the statistics of the whole batch, so the "
                f"rows of different coefficients change each other (and its running statistics "
                f"are updated), and dropout zeroes random units. Call model.eval() before sweep."
            ),
            stacklevel=3,
        )


def _sweep_chunk(
    model: nn.Module,
    inputs: Tensor,
    hook: str,
    vector: Tensor,
    chunk: Tensor,
    names: Sequence[str],
    mask: Tensor | None,
    forward: Callable[[nn.Module, Tensor], Tensor] | None,
) -> dict[str, Tensor]:
    """One steered forward of the coefficients ``chunk``; the captured tensors, K·B rows each."""
    hook_sites = [n for n in names if not _is_output(model, n)]
    batch = tile_coeffs(inputs, chunk)
    with steer(model, hook, vector, chunk, mask=mask), capture_ctx(model, hook_sites) as acts:
        out = forward(model, batch) if forward is not None else model(batch)
    if any(_is_output(model, n) for n in names) and not isinstance(out, Tensor):
        raise HookTypeError(
            f"{type(model).__name__} returned a {type(out).__name__}, not a tensor: pass "
            f"forward=lambda m, x: m(x)[0] (or whichever part is the output) to sweep"
        )
    return {n: out.detach() if _is_output(model, n) else acts[n] for n in names}


capture_ctx = capture  # ``sweep``'s ``capture`` argument shadows the function inside it


def _sweep_dataset(
    model: nn.Module,
    pieces: dict[str, list[Tensor]],
    c: Tensor,
    has_zero: bool,
    hook: str,
    vector: Tensor,
    names: Sequence[str],
) -> xr.Dataset:
    """The labelled sweep: per name the swept values and the baseline, with dims and attrs."""
    zero_index = int((c == 0).nonzero()[0]) if has_zero else None
    stacked = {n: torch.cat(pieces[n], dim=0).cpu().numpy() for n in names}
    dims = _unique_dims(
        {n: _row_dims(model, n, stacked[n].shape[2:]) for n in names},
        {n: stacked[n].shape[2:] for n in names},
    )
    data_vars = {}
    for n in names:
        swept = stacked[n][: len(c)]
        baseline = swept[zero_index] if has_zero else stacked[n][len(c)]
        what = "model output" if _is_output(model, n) else f"activation at {n!r}"
        data_vars[n] = xr.Variable(
            ("coeff", "batch") + dims[n],
            swept,
            {
                "long_name": f"{what}, steered",
                "description": f"the {what} with t·v added at {hook!r}: [coeff k, batch b] is "
                f"input b steered with t = coeff[k]",
            },
        )
        data_vars[f"{n}_baseline"] = xr.Variable(
            ("batch",) + dims[n],
            baseline,
            {
                "long_name": f"{what} at t = 0",
                "description": f"the unsteered {what} of each input (t = 0), the baseline of {n!r}",
            },
        )
    coeff = xr.Variable(
        "coeff",
        c.detach().cpu().double().numpy(),
        {"long_name": "steering coefficient t", "description": f"t of the t·v added at {hook!r}"},
    )
    return xr.Dataset(
        data_vars,
        coords={"coeff": coeff},
        attrs={
            "hook": hook,
            "vector_norm": float(torch.as_tensor(vector).float().norm()),
            "layout": "coefficient-major: the K·B rows of a forward are the B inputs at coeff[0], "
            "then at coeff[1], ...",
        },
    )


def _row_dims(model: nn.Module, name: str, shape: tuple[int, ...]) -> tuple[str, ...]:
    """Names of the per-row axes of a captured activation (see :func:`sweep`)."""
    rank = len(shape)
    if _is_output(model, name):
        declared = (
            getattr(model, "output_dims", None) if isinstance(model, DeclaresReadouts) else None
        )
        if declared is not None and len(declared) == rank:
            return tuple(declared)
        return {1: ("logit",), 2: ("pos", "vocab")}.get(
            rank, tuple(f"logit_{i}" for i in range(rank))
        )
    if isinstance(model, HookedTransformer):
        tl = _transformer_dims(model, name, shape)
        if tl is not None:
            return tl
    generic = {1: ("features",), 2: ("pos", "features"), 3: ("channel", "height", "width")}
    return generic.get(rank, tuple(f"d{i}" for i in range(rank)))


def _transformer_dims(
    model: HookedTransformer, name: str, shape: tuple[int, ...]
) -> tuple[str, ...] | None:
    """A HookedTransformer hook's axes by what the hook holds; None: use the generic names."""
    leaf = name.rsplit(".", 1)[-1]
    cfg = model.cfg
    if leaf in ("hook_pattern", "hook_attn_scores") and len(shape) == 3:
        return ("head", "query_pos", "key_pos")
    if leaf in ("hook_q", "hook_k", "hook_v", "hook_z") and len(shape) == 3:
        return ("pos", "head", "d_head")
    if leaf == "hook_result" and len(shape) == 3:
        return ("pos", "head", "d_model")
    if len(shape) == 2:
        named = {cfg.d_model: "d_model", cfg.d_mlp: "d_mlp"}
        return ("pos", named.get(shape[1], "features"))
    return None


def _unique_dims(
    dims: Mapping[str, tuple[str, ...]], shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, tuple[str, ...]]:
    """Prefix a dim name with its variable's name wherever the same name has different sizes."""
    sizes: dict[str, set[int]] = {}
    for n, ds in dims.items():
        for d, size in zip(ds, shapes[n]):
            sizes.setdefault(d, set()).add(int(size))
    clash = {d for d, s in sizes.items() if len(s) > 1}
    return {n: tuple(f"{n}.{d}" if d in clash else d for d in ds) for n, ds in dims.items()}


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
