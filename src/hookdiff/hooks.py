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
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import Tensor, nn
from transformer_lens import HookedRootModule

from hookdiff.contract import tile_rows
from hookdiff.errors import ShapeMismatchError, UnknownHookError, unknown_name_message
from hookdiff.segments import as_segmented, locate

__all__ = [
    "Captured",
    "attach",
    "HookFn",
    "Segment",
    "as_coeffs",
    "capture",
    "downstream",
    "hook_chain",
    "hook_names",
    "resolve_hook",
    "steer",
    "steering_hook",
    "tile_rows",
    "sweep",
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
    """
    if not isinstance(name, str):
        raise TypeError(f"hook names are strings; got {type(name).__name__} {name!r}")
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
    ``coeffs[i // B]``). ``mask`` (optional)
    selects positions: its shape is a prefix of the activation's per-row shape, e.g. ``(pos,)`` for
    a residual stream ``(batch, pos, d_model)``; masked-out positions are left untouched.

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
            raise TypeError(
                f"hookdiff steers tensors; the activation at {_hook_label(hook)} is a "
                f"{type(activation).__name__}"
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
    row_shape = tuple(activation.shape[1:])
    vec = vec.to(device=activation.device, dtype=activation.dtype)
    rows = activation.shape[0]
    per_sample = vec.ndim == activation.ndim  # (B, ...): one vector per sample, tiled over K
    if per_sample and (tuple(vec.shape[1:]) != row_shape or rows % vec.shape[0]):
        raise ShapeMismatchError(
            f"per-sample steering vectors of shape {tuple(vec.shape)} do not fit the activation at "
            f"{where} of shape {tuple(activation.shape)}: expected (B, *{row_shape}) with the "
            f"activation's rows a multiple K·B of B (coefficient-major)"
        )
    if not per_sample and not _broadcasts_to(tuple(vec.shape), row_shape):
        raise ShapeMismatchError(
            f"steering vector of shape {tuple(vec.shape)} does not broadcast to the activation at "
            f"{where}, whose per-row shape is {row_shape} (full shape {tuple(activation.shape)}); "
            f"expected the activation's shape without the batch dimension, or (B, *shape) for "
            f"one vector per sample"
        )
    if per_sample and vec.shape[0] != rows:
        vec = tile_rows(vec, rows // vec.shape[0])  # row i: v[i % B]
    if mask is not None:
        m = torch.as_tensor(mask).to(device=activation.device)
        if tuple(m.shape) != row_shape[: m.ndim]:
            raise ShapeMismatchError(
                f"position mask of shape {tuple(m.shape)} does not match the leading per-row "
                f"dimensions {row_shape[: m.ndim]} of the activation at {where} "
                f"(full shape {tuple(activation.shape)})"
            )
        vec = vec * m.to(activation.dtype).reshape(m.shape + (1,) * (len(row_shape) - m.ndim))
        # (a per-sample vec has one more leading dim; the mask broadcasts over it)
    c = c.to(device=activation.device, dtype=activation.dtype)
    if c.ndim == 0:
        return c, vec
    k = c.shape[0]
    if rows % k:
        raise ShapeMismatchError(
            f"{k} coefficients need a coefficient-major batch of K·B rows at {where}; the "
            f"activation has {rows} rows, not a multiple of K={k}"
        )
    per_row = c.repeat_interleave(rows // k)  # row i gets coeffs[i // B]
    return per_row.reshape((rows,) + (1,) * len(row_shape)), vec


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether ``shape`` broadcasts to exactly ``target`` (never enlarging the activation)."""
    try:
        return torch.broadcast_shapes(shape, target) == target
    except RuntimeError:
        return False


@contextlib.contextmanager
def attach(model: nn.Module, fwd_hooks: Sequence[tuple[str, HookFn]]) -> Iterator[None]:
    """Attach ``(name, fn)`` pairs (TransformerLens's ``fwd_hooks`` list) inside the block.

    Every name is resolved before anything is attached; exactly these hooks are removed on exit
    and on every exception. ``steer`` and ``capture`` are built on it.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2))
        >>> with attach(net, [("0", lambda act, hook: act * 0)]):
        ...     net(torch.ones(1, 2))
        tensor([[0., 0.]])
    """
    sites = [(resolve_hook(model, name), name, fn) for name, fn in fwd_hooks]  # resolve all first
    handles = []
    try:
        for site, name, fn in sites:
            handles.append(site.register_forward_hook(_as_torch_hook(fn, site, name)))
        yield
    finally:
        for handle in handles:
            handle.remove()


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


@contextlib.contextmanager
def steer(
    model: nn.Module,
    hook: str,
    vector: Tensor,
    coeffs: float | Sequence[float] | Tensor = 1.0,
    *,
    mask: Tensor | None = None,
) -> Iterator[None]:
    """Add ``coeffs · vector`` to the activation at ``hook`` for every forward inside the block.

    Args:
        model: a HookedRootModule or any nn.Module.
        hook: a hook name (``hook_dict`` name, or a ``named_modules()`` name on a plain module).
        vector: the activation's shape without the batch dimension (broadcastable to it).
        coeffs: a scalar, or K coefficients for a coefficient-major batch of K·B rows.
        mask: optional positions to steer (a prefix of the per-row shape, e.g. ``(pos,)``).

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        >>> with steer(net, "0", torch.ones(2), [0.0, 1.0]):
        ...     out = net(torch.zeros(2, 2))   # row 0: t=0, row 1: t=1
    """
    fn = steering_hook(vector, coeffs, mask)
    with attach(model, [(hook, fn)]):
        yield


class Captured(Mapping[str, Tensor]):
    """Detached activations captured by :func:`capture`, keyed by hook name (last forward wins)."""

    def __init__(self, names: Sequence[str]):
        self._names = list(names)
        self._values: dict[str, Tensor] = {}

    def __getitem__(self, name: str) -> Tensor:
        if name not in self._names:
            raise UnknownHookError(f"{name!r} was not captured; captured hooks: {self._names}")
        if name not in self._values:
            raise KeyError(f"{name!r} has not run yet: no forward pass reached it inside capture()")
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(n for n in self._names if n in self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        shapes = {k: tuple(v.shape) for k, v in self._values.items()}
        return f"Captured({shapes})"


@contextlib.contextmanager
def capture(model: nn.Module, hooks: str | Sequence[str]) -> Iterator[Captured]:
    """Record detached copies of the activations at ``hooks`` during the forwards in the block.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        >>> with capture(net, ["0"]) as acts:
        ...     _ = net(torch.zeros(4, 2))
        >>> acts["0"].shape
        torch.Size([4, 3])
    """
    names = [hooks] if isinstance(hooks, str) else list(hooks)
    store = Captured(names)

    def recorder(name: str) -> HookFn:
        def record(activation: Tensor, hook: Any = None) -> None:
            store._values[name] = activation.detach().clone()

        return record

    with attach(model, [(n, recorder(n)) for n in names]):
        yield store


# --------------------------------------------------------------------------------------------
# Sweeps over coefficients
# --------------------------------------------------------------------------------------------

OUTPUT = "output"
"""Name under which :func:`sweep` stores the model's own output."""

_DIM_NAMES = {1: ("features",), 2: ("pos", "features"), 3: ("channel", "height", "width")}


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

    The B inputs are tiled coefficient-major into K·B rows and run together (in chunks of whole
    coefficients of at most ``max_rows`` rows, the caller's memory budget). The t = 0 baseline is
    always returned: from the sweep when 0 is among the coefficients, else from one extra chunk.

    Args:
        model: the model; called as ``forward(model, batch)`` (default ``model(batch)``).
        inputs: B inputs (batch first): observations, tokens, ...
        hook: where to add ``t · vector``.
        vector: the steering vector (the activation's shape without the batch dimension).
        coeffs: K coefficients t.
        capture: hook names to capture, and/or ``"output"`` for the model's output.
        mask: optional position mask, as in :func:`steer`.
        max_rows: at most this many rows per forward (None: all K·B rows at once).
        forward: how to call the model, e.g. ``lambda m, x: m(x, return_type="logits")``.

    Returns:
        An ``xarray.Dataset`` with one variable per captured name, dims ``(coeff, batch, ...)``,
        coordinate ``coeff``, and ``<name>:baseline`` variables of dims ``(batch, ...)``.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2))
        >>> ds = sweep(net, torch.zeros(3, 2), "0", torch.ones(2), [-1.0, 1.0])
        >>> ds["output"].dims
        ('coeff', 'batch', 'features')
    """
    names = [capture] if isinstance(capture, str) else list(capture)
    if not names:
        raise ValueError("capture is empty; name at least one hook, or 'output'")
    hook_sites = [n for n in names if n != OUTPUT]
    for n in [hook, *hook_sites]:
        resolve_hook(model, n)  # fail before any forward
    c = as_coeffs(coeffs).reshape(-1)
    b = inputs.shape[0]
    run = forward or (lambda m, x: m(x))
    k_per_chunk = len(c) if max_rows is None else max(1, max_rows // max(b, 1))
    has_zero = bool((c == 0).any())
    chunks = [c[i : i + k_per_chunk] for i in range(0, len(c), k_per_chunk)]
    if not has_zero:
        chunks.append(torch.zeros(1, dtype=c.dtype))

    pieces: dict[str, list[Tensor]] = {n: [] for n in names}
    with torch.no_grad():
        for chunk in chunks:
            k = len(chunk)
            batch = tile_rows(inputs, k)  # coefficient-major
            with (
                steer(model, hook, vector, chunk, mask=mask),
                capture_ctx(model, hook_sites) as acts,
            ):
                out = run(model, batch)
            for n in names:
                value = out.detach() if n == OUTPUT else acts[n]
                pieces[n].append(value.reshape((k, b) + tuple(value.shape[1:])))
    return _sweep_dataset(pieces, c, has_zero, hook, vector, names)


capture_ctx = capture  # ``sweep``'s ``capture`` argument shadows the function inside it


def _sweep_dataset(
    pieces: dict[str, list[Tensor]],
    c: Tensor,
    has_zero: bool,
    hook: str,
    vector: Tensor,
    names: Sequence[str],
) -> xr.Dataset:
    data_vars = {}
    zero_index = int((c == 0).nonzero()[0]) if has_zero else None
    for n in names:
        stacked = torch.cat(pieces[n], dim=0).cpu().numpy()
        swept = stacked[: len(c)]
        baseline = swept[zero_index] if has_zero else stacked[len(c)]
        per_row = _DIM_NAMES.get(swept.ndim - 2, tuple(f"d{i}" for i in range(swept.ndim - 2)))
        dims = tuple(f"{n}.{d}" for d in per_row)
        data_vars[n] = (("coeff", "batch") + dims, swept)
        data_vars[f"{n}:baseline"] = (("batch",) + dims, baseline)
    return xr.Dataset(
        data_vars,
        coords={"coeff": c.cpu().numpy()},
        attrs={"hook": hook, "vector_norm": float(torch.as_tensor(vector).float().norm())},
    )


# --------------------------------------------------------------------------------------------
# Segments: f_n, the n hook points after a hook
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """f_n: maps the activation at ``start`` to the activation at ``stop`` (n points later).

    Call it on a batch of activations at ``start``; ``context`` supplies tensors produced before
    ``start`` that the segment still reads (e.g. a residual block's input), where needed.
    """

    model: nn.Module
    start: str
    stop: str
    n: int
    _run: Callable[..., Tensor]

    def __call__(self, activation: Tensor, context: Mapping[str, Tensor] | None = None) -> Tensor:
        return self._run(activation, context)


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

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
        >>> f2 = downstream(net, "0", 2)      # ReLU then the last Linear
        >>> f2(torch.ones(5, 2)).shape
        torch.Size([5, 1])
    """
    segmented = as_segmented(model)
    start = locate(segmented, hook)
    chain = list(segmented.hook_names)
    i = chain.index(start)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1 or i + n >= len(chain):
        raise ValueError(
            f"n={n!r} is out of range for a segment starting at {hook!r}: expected an int in "
            f"1..{len(chain) - 1 - i} (the chain ends at {chain[-1]!r})"
        )
    stop = chain[i + n]

    def run(x: Tensor, context: Mapping[str, Tensor] | None = None) -> Tensor:
        return segmented.run_segment(x, start, stop, context=context)

    return Segment(model, hook, stop, n, run)
