"""The measurements behind the answer, as one labelled dataset (no verdicts here).

Per base input, at ±t along a + t·v (a: the input's activation at the hook, v: the task's
vector) and read by the task's readout r:

- ``even`` / ``odd``: E = r(t) + r(−t) − 2 r(0) and O = r(t) − r(−t) on the exact model;
- ``rm_*``: random directions of the vector's norm, each input's coefficient bisected until
  |O| equals the vector's own |O| (controls matched in *effect*), and their E there;
- ``cut_even`` / ``cut_odd``: E and O with the model linearised or symmetrised at each valid cut
  (the asymmetry made after the cut);
- ``ko_even`` / ``ko_odd``: E and O with one nonlinear state held at its t = 0 value (knock-out),
  beside O so a knock-out that only kills the steering is seen as such.

Every input is computed from forwards that hold only its rows where a search runs per input,
and from one batched forward elsewhere; the readout sees the model's output rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import xarray as xr
from torch import Tensor
from tqdm.auto import tqdm

from hookdiff.analysis import cut_scan, freezable, line_response
from hookdiff.analysis.matching import matched_t
from hookdiff.asymmetry.task import SteeringTask, activations, output_depth, steering_vector

__all__ = ["RANDOM_GRID", "even_odd_of", "measure"]

#: Grid points of the coefficient search before bisection (:func:`matched_t`).
RANDOM_GRID = 8


def _read(task: SteeringTask, response: np.ndarray, lead: int) -> np.ndarray:
    """The readout of a response whose first ``lead`` axes index rows (the rest is the model's
    output per row) → those ``lead`` axes (float64)."""
    rows = torch.as_tensor(response).reshape(-1, *response.shape[lead:])
    with torch.no_grad():
        values = task.readout(rows)
    return values.double().cpu().numpy().reshape(response.shape[:lead])


def even_odd_of(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E and O from readouts at (−t, 0, t) along the first axis.

    Example:
        >>> even_odd_of(np.array([[1.0], [0.0], [3.0]]))
        (array([4.]), array([2.]))
    """
    return r[2] + r[0] - 2 * r[1], r[2] - r[0]


def _line(task: SteeringTask, a: Tensor, u: Tensor, ts: Sequence[float], **kw) -> np.ndarray:
    """Readouts along a + t·u for ``ts``: ``(t, sample)``."""
    depth = output_depth(task.model)
    response = line_response(task.model, a, task.hook, u, list(ts), depth=depth, **kw)
    return _read(task, response.values, lead=2)


def _random_matched(
    task: SteeringTask, a: Tensor, v: Tensor, goal: np.ndarray, draws: int, seed: int,
    t_max: float, steps: int, advance: Callable[[], None],
) -> dict[str, np.ndarray]:  # fmt: skip
    """Per draw and input: the matched coefficient, and E and O there (NaN: not reached)."""
    n = a.shape[0]
    out = {k: np.full((draws, n), np.nan) for k in ("rm_t", "rm_even", "rm_odd")}
    for d in range(draws):
        gen = torch.Generator().manual_seed(
            int(np.random.SeedSequence([seed, d]).generate_state(1)[0])
        )
        u = torch.randn(v.shape, generator=gen, dtype=torch.float64)
        u = (u * (v.double().norm() / u.norm())).to(v.dtype)
        for i in range(n):
            row = a[i : i + 1]

            def size(ts: Sequence[float], row: Tensor = row, u: Tensor = u) -> np.ndarray:
                r = _line(task, row, u, [-x for x in ts] + list(ts))[:, 0]
                return np.abs(r[len(ts) :] - r[: len(ts)])

            t_star = matched_t(size, float(goal[i]), t_max, steps, grid=RANDOM_GRID, rtol=1e-9)
            out["rm_t"][d, i] = t_star
            if np.isfinite(t_star):
                e, o = even_odd_of(_line(task, row, u, [-t_star, 0.0, t_star]))
                out["rm_even"][d, i], out["rm_odd"][d, i] = e[0], o[0]
        advance()
    return out


def _cuts(task: SteeringTask, a: Tensor, v: Tensor) -> tuple[xr.Dataset, list[str]]:
    """E and O with the model cut at every valid cut, per variant: ``(variant, cut, input)``."""
    t = task.t
    depth = output_depth(task.model)
    scan = cut_scan(task.model, a, task.hook, v, [-t, 0.0, t], depth=depth)
    r = _read(task, scan.values, lead=4)  # (variant, cut, t, sample)
    e, o = r[:, :, 2] + r[:, :, 0] - 2 * r[:, :, 1], r[:, :, 2] - r[:, :, 0]
    cuts = [str(c) for c in scan["cut"].values]
    dims = ("variant", "cut", "input")
    coords = {"variant": [str(x) for x in scan["variant"].values], "cut": cuts}
    return xr.Dataset({"cut_even": (dims, e), "cut_odd": (dims, o)}, coords=coords), cuts


def _knockouts(task: SteeringTask, a: Tensor, v: Tensor) -> xr.Dataset:
    """E and O with each freezable state held at t = 0 alone: ``(frozen, input)``."""
    names = freezable(task.model, task.hook, output_depth(task.model))
    e = np.full((len(names), a.shape[0]), np.nan)
    o = np.full_like(e, np.nan)
    t = task.t
    for k, name in enumerate(names):
        e[k], o[k] = even_odd_of(_line(task, a, v, [-t, 0.0, t], freeze=[name]))
    dims = ("frozen", "input")
    return xr.Dataset({"ko_even": (dims, e), "ko_odd": (dims, o)}, coords={"frozen": names})


def measure(
    task: SteeringTask,
    *,
    seed: int = 0,
    random_draws: int = 4,
    random_max_t: float = 16.0,
    random_steps: int = 12,
    progress: bool = True,
) -> xr.Dataset:
    """Every measurement of the answer for ``task`` as one dataset over ``input`` (see the
    module docstring); attrs record the hook, depth, t, seed and the vector's norm."""
    v = steering_vector(task)
    a = activations(task.model, task.hook, task.inputs)
    t = task.t
    bar = tqdm(total=random_draws + 2, desc="asymmetry", disable=not progress, leave=False)
    even, odd = even_odd_of(_line(task, a, v, [-t, 0.0, t]))
    rm = _random_matched(
        task, a, v, np.abs(odd), random_draws, seed, random_max_t, random_steps, bar.update
    )
    cuts, _ = _cuts(task, a, v)
    bar.update()
    ko = _knockouts(task, a, v)
    bar.update()
    bar.close()
    ds = xr.Dataset(
        {
            "even": (("input",), even),
            "odd": (("input",), odd),
            **{k: (("draw", "input"), x) for k, x in rm.items()},
        },
        coords={"input": np.arange(a.shape[0]), "draw": np.arange(random_draws)},
    )
    ds = xr.merge([ds, cuts, ko])
    ds.attrs.update(
        hook=task.hook,
        depth=output_depth(task.model),
        t=float(t),
        seed=int(seed),
        vector=task.name,
        readout=task.readout_name,
        vector_norm=float(v.double().norm()),
        model=type(task.model).__name__,
    )
    return _labelled(ds)


#: long_name of each variable (the readout is the task's).
_NAMES = {
    "even": "E = r(t) + r(−t) − 2 r(0) of the vector",
    "odd": "O = r(t) − r(−t) of the vector",
    "rm_t": "matched coefficient of a random direction (|O| equal to the vector's)",
    "rm_even": "E of a random direction at its matched coefficient",
    "rm_odd": "O of a random direction at its matched coefficient",
    "cut_even": "E with the model cut (variant) at the cut",
    "cut_odd": "O with the model cut (variant) at the cut",
    "ko_even": "E with one nonlinear state held at its t = 0 value",
    "ko_odd": "O with one nonlinear state held at its t = 0 value",
}


def _labelled(ds: xr.Dataset) -> xr.Dataset:
    for name, text in _NAMES.items():
        ds[name].attrs["long_name"] = text
    return ds
