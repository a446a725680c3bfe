"""``sweep``: steer with many coefficients in one batched forward, captured as an xarray Dataset.

The K coefficients t of a sweep are tiled coefficient-major into K·B rows
(:func:`hookdiff.hooks.tile_coeffs`), steered at one hook point (:func:`hookdiff.hooks.steer`)
and captured downstream (:func:`hookdiff.hooks.capture`), in chunks of whole coefficients; the
result is labelled: dims named by what each capture holds, the t = 0 baseline beside every
variable. Its names stay importable from :mod:`hookdiff.hooks`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
import xarray as xr
from torch import Tensor, nn
from transformer_lens import HookedTransformer

from hookdiff.contract import DeclaresReadouts
from hookdiff.errors import HookTypeError, ShapeMismatchError, TrainingModeWarning
from hookdiff.hooks import as_coeffs, capture, hook_names, resolve_hook, steer, tile_coeffs
from hookdiff.segments import as_segmented, canonical, is_bridge, output_of

__all__ = ["OUTPUT", "OUTPUT_NAMES", "row_dims", "sweep"]


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
    """Whether ``name`` stands for the model's output in ``sweep(capture=...)`` (a bridge's
    unembed output under any of its names, too)."""
    if name == OUTPUT or (name in OUTPUT_NAMES and name not in hook_names(model)):
        return True
    if not is_bridge(model):
        return False
    segmented = as_segmented(model)
    return canonical(segmented, name) == output_of(segmented)[0]


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
        {n: row_dims(model, n, stacked[n].shape[2:]) for n in names},
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


def row_dims(model: nn.Module, name: str, shape: tuple[int, ...]) -> tuple[str, ...]:
    """Names of the per-row axes of the activation ``name`` (shape without the batch): the one
    naming of :func:`sweep`, :func:`~hookdiff.analysis.line_response` and
    :func:`~hookdiff.analysis.cut_scan`.

    The model's output (``"output"``/``"logits"``, or the hook its contract declares as output)
    takes the declared ``output_dims``, else ``(pos, vocab)`` / ``(logit,)`` by rank; a
    transformer's hooks (HookedTransformer or TransformerBridge) are named by what they hold
    (``pos``, ``d_model``, ``d_mlp``, ``head``, ...); anything else by rank.

    Example:
        >>> row_dims(nn.Sequential(nn.Conv2d(3, 4, 3)), "0", (4, 6, 6))
        ('channel', 'height', 'width')
    """
    rank = len(shape)
    if _is_output(model, name) or name == getattr(model, "output_hook", None):
        declared = (
            getattr(model, "output_dims", None) if isinstance(model, DeclaresReadouts) else None
        )
        if declared is not None and len(declared) == rank:
            return tuple(declared)
        return {1: ("logit",), 2: ("pos", "vocab")}.get(
            rank, tuple(f"logit_{i}" for i in range(rank))
        )
    if isinstance(model, HookedTransformer) or is_bridge(model):
        tl = _transformer_dims(model, name, shape)
        if tl is not None:
            return tl
    generic = {1: ("features",), 2: ("pos", "features"), 3: ("channel", "height", "width")}
    return generic.get(rank, tuple(f"d{i}" for i in range(rank)))


def _transformer_dims(
    model: nn.Module, name: str, shape: tuple[int, ...]
) -> tuple[str, ...] | None:
    """A transformer hook's axes by what the hook holds; None: use the generic names."""
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
