"""The study's one ``xarray.Dataset``: its coordinates, the records of its inputs, its attrs, I/O.

Each measurement (:mod:`hookdiff.study.measure`) returns its own labelled part; this module
stacks the parts of the two sites, records the inputs (mazes, vectors), merges everything into
one Dataset over (site, vector, position, t, depth, maze, ...) with the config, seeds, package
versions and checkpoint hash as attrs, and writes it as netCDF (``study.nc``) or reads it back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from hookdiff._io import atomic_write, package_versions
from hookdiff.study.schema import DATASET_NAME, POSITIONS, SITES
from hookdiff.study.targets import VECTORS

if TYPE_CHECKING:
    from hookdiff.study.config import StudyConfig
    from hookdiff.study.inputs import StudyMazes, StudyVectors

__all__ = [
    "AGENT_ATTRS",
    "DATASET_NAME",
    "MAZE_DIMS",
    "MAZE_VARS",
    "POSITIONS",
    "SITES",
    "VECTORS",
    "agent_var",
    "agent_view",
    "concat_agents",
    "concat_blocks",
    "concat_labelled",
    "load_dataset",
    "maze_record",
    "merge_parts",
    "per_site",
    "shift_mazes",
    "study_attrs",
    "vector_record",
    "write_dataset",
]


def concat_labelled(
    parts: Sequence[xr.Dataset], dim: str, labels: Sequence[str], combine_attrs: str = "drop"
) -> xr.Dataset:
    """Stack Datasets along a new labelled dim; depths/layers missing from a part become NaN.

    The union of each ordered coordinate (``depth``, ``layer``) keeps forward order (the order of
    first appearance: the steering site comes first and holds every later site's depths).
    ``combine_attrs``: xarray's rule for the attrs (``"drop_conflicts"`` keeps the variables'
    ``long_name`` and ``description``).
    """
    parts = list(parts)
    for name in ("depth", "layer"):
        union: list[Any] = []
        for p in parts:
            if name in p.indexes:
                union.extend(x for x in p[name].values.tolist() if x not in union)
        if union:
            parts = [p.reindex({name: union}) if name in p.indexes else p for p in parts]
    return xr.concat(
        parts,
        dim=xr.DataArray(list(labels), dims=dim, name=dim),
        join="outer",
        combine_attrs=combine_attrs,
        fill_value=np.nan,
        coords="minimal",
        compat="override",
    )


#: Dims that index studied mazes (all of them, or the first K): a block of mazes covers a slice.
MAZE_DIMS = ("maze", "kink_maze", "field_maze")
#: Attrs that describe one agent: over ``agent`` they become variables (:func:`agent_var`).
AGENT_ATTRS = ("agent", "checkpoint", "checkpoint_sha256", "untrained", "warning", "later_hook")
#: Variables of the mazes alone (:func:`maze_record`): one copy, shared by every agent.
MAZE_VARS = ("decision_square", "level_seed", "maze_dim")


def agent_var(attr: str) -> str:
    """The variable over ``agent`` that holds the per-agent attr ``attr``.

    Example:
        >>> agent_var("agent"), agent_var("later_hook")
        ('agent_description', 'agent_later_hook')
    """
    return "agent_description" if attr == "agent" else f"agent_{attr}"


def shift_mazes(part: xr.Dataset, start: int) -> xr.Dataset:
    """``part`` of mazes ``start:...`` with its maze coordinates counted from ``start``."""
    shifted = {d: part[d].values + start for d in MAZE_DIMS if d in part.indexes}
    return part.assign_coords(shifted)


def concat_blocks(parts: Sequence[xr.Dataset]) -> xr.Dataset:
    """Partial Datasets of consecutive maze blocks joined along every maze dim (:data:`MAZE_DIMS`).

    A variable with a maze dim is concatenated along it (NaN in a block that lacks it, e.g. the
    breakpoint figures of a block whose mazes are not walked); one without is the same in every
    block and taken from the first.
    """
    parts = list(parts)
    if len(parts) == 1:
        return parts[0]
    names = list(dict.fromkeys(v for p in parts for v in p.data_vars))
    out = {}
    for name in names:
        have = [p for p in parts if name in p.data_vars]
        dims = [d for d in MAZE_DIMS if d in have[0][name].dims]
        if not dims:
            out[name] = have[0][name]
            continue
        arrays = [
            p[name] if name in p.data_vars else _nan_like(have[0][name], p, dims[0]) for p in parts
        ]
        out[name] = xr.concat(arrays, dim=dims[0], join="outer", combine_attrs="drop_conflicts")
    return xr.Dataset(out)


def _nan_like(template: xr.DataArray, part: xr.Dataset, dim: str) -> xr.DataArray:
    """``template`` filled with NaN and sized to ``part``'s mazes along ``dim``."""
    empty = template.isel({dim: slice(0, 0)})
    size = part.sizes.get(dim, 0)
    pad = empty.astype(float).pad({dim: (0, size)}, constant_values=np.nan)
    if dim in part.indexes:
        pad = pad.assign_coords({dim: part[dim].values})
    return pad


def concat_agents(datasets: Sequence[xr.Dataset], names: Sequence[str]) -> xr.Dataset:
    """The studies of several agents stacked over a new ``agent`` dim (coordinate: ``names``).

    The mazes' own variables (:data:`MAZE_VARS`) stay without ``agent``. Per-agent attrs
    (:data:`AGENT_ATTRS`) become variables over ``agent`` (:func:`agent_var`), and the attrs hold
    them as JSON lists; the other attrs are the first study's. Unlabelled dims that differ in
    size (a later layer's feature count) are padded with NaN.
    """
    sizes: dict[str, int] = {}
    for ds in datasets:
        for d, n in ds.sizes.items():
            if d not in ds.indexes:
                sizes[d] = max(sizes.get(d, 0), n)
    padded = []
    for ds in datasets:
        pad = {d: (0, sizes[d] - n) for d, n in ds.sizes.items() if d in sizes and n < sizes[d]}
        per_agent = {agent_var(k): ds.attrs[k] for k in AGENT_ATTRS}
        ds = ds.drop_vars([v for v in MAZE_VARS if v in ds])
        padded.append((ds.pad(pad, constant_values=np.nan) if pad else ds).assign(per_agent))
    shared = datasets[0][[v for v in MAZE_VARS if v in datasets[0]]]
    stacked = concat_labelled(padded, "agent", names, combine_attrs="drop_conflicts")
    out = xr.merge([stacked, shared], join="outer", combine_attrs="drop_conflicts")
    out.attrs = dict(datasets[0].attrs)
    for k in AGENT_ATTRS:
        out.attrs[k] = json.dumps([_plain(ds.attrs[k]) for ds in datasets])
    return out


def _plain(x: Any) -> Any:
    """A numpy scalar as a Python one (for JSON)."""
    return x.item() if isinstance(x, np.generic) else x


def agent_view(ds: xr.Dataset, name: str) -> xr.Dataset:
    """One agent's study out of a many-agent Dataset, shaped as a one-agent study."""
    one = ds.sel(agent=name, drop=True)
    attrs = dict(ds.attrs)
    for k in AGENT_ATTRS:
        attrs[k] = one[agent_var(k)].values.item()
    one = one.drop_vars([agent_var(k) for k in AGENT_ATTRS])
    one.attrs = attrs
    return one


def per_site(site_hooks: Mapping[str, str], measure: Callable[[str], xr.Dataset]) -> xr.Dataset:
    """``measure(hook)`` stacked over :data:`SITES`; a hook shared by two sites is measured once."""
    by_hook = {h: measure(h) for h in dict.fromkeys(site_hooks[s] for s in SITES)}
    return concat_labelled([by_hook[site_hooks[s]] for s in SITES], "site", SITES)


def maze_record(mazes: StudyMazes) -> xr.Dataset:
    """The studied mazes: level seeds, sizes and decision squares, over ``maze``."""
    return xr.Dataset(
        {
            "decision_square": (("maze", "cell"), np.array(mazes.squares, dtype=np.int64)),
            "level_seed": (("maze",), np.array([m.level_seed for m in mazes.states], np.int64)),
            "maze_dim": (("maze",), np.array([m.maze_dim for m in mazes.states], np.int64)),
        },
        coords={"maze": np.arange(len(mazes.states)), "cell": ["row", "col"]},
    )


def vector_record(vectors: StudyVectors, site_hooks: Mapping[str, str]) -> xr.Dataset:
    """The vectors at each site: the applied vectors' norms and every pair's own vector.

    ``vector_{site}`` holds each pair's vector (float32, as computed) flattened; the study steers
    with the same maze's (``same_maze``) or with their mean (``pairs``).
    """
    names = vectors.names
    norms = [[vectors.norm(site_hooks[s], v) for v in names] for s in SITES]
    data: dict[str, Any] = {
        "site_hook": (("site",), np.array([site_hooks[s] for s in SITES], dtype=str)),
        "vector_norm": (("site", "vector"), np.array(norms)),
    }
    for s in SITES:
        pairs = vectors.pairs[site_hooks[s]]
        v = np.stack([pairs[n].flatten(1).cpu().numpy() for n in names])
        data[f"vector_{s}"] = (("vector", "vector_maze", f"{s}_feature"), v)
    seeds = np.array([m.level_seed for m in vectors.mazes], dtype=np.int64)
    data["vector_level_seed"] = (("vector_maze",), seeds)
    return xr.Dataset(data, coords={"site": list(SITES), "vector": list(names)})


def merge_parts(parts: Sequence[xr.Dataset], attrs: Mapping[str, Any]) -> xr.Dataset:
    """The one Dataset: every part joined on shared coordinates (outer), with ``attrs``; the
    variables keep their own attrs (``long_name``, ``description``)."""
    ds = xr.merge(list(parts), compat="override", join="outer", combine_attrs="drop_conflicts")
    ds.attrs = dict(attrs)
    return ds


def study_attrs(
    config: StudyConfig,
    policy_info: Mapping[str, Any],
    later_hook: str,
    effect_t: Mapping[str, float],
) -> dict[str, Any]:
    """The Dataset's attrs: config, seeds, package versions, the policy, the two sites, and
    ``effect_t`` (the coefficient at which each vector's candidate effect was measured)."""
    return {
        "title": "hookdiff study: nonlinearity of steering tied to behaviour",
        "config": config.to_json(),
        "seeds": json.dumps(config.seeds(), sort_keys=True),
        "versions": json.dumps(package_versions(), sort_keys=True),
        "agent": policy_info["agent"],
        "checkpoint": policy_info["checkpoint"],
        "checkpoint_sha256": policy_info["checkpoint_sha256"],
        "untrained": int(policy_info["untrained"]),
        "warning": policy_info["warning"],
        "steering_hook": config.hook,
        "later_hook": later_hook,
        "threshold": float(config.threshold),
        "vectors_from": config.vectors_from,
        "effect_t": json.dumps(dict(effect_t)),
    }


def write_dataset(ds: xr.Dataset, path: Path) -> None:
    """Write ``ds`` as netCDF (h5netcdf) atomically."""
    with atomic_write(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")


def load_dataset(run_dir: str | os.PathLike[str]) -> xr.Dataset:
    """The study dataset of a run folder, loaded into memory (the file is closed).

    Usage: ``load_dataset("runs/study")`` after ``hookdiff study --out runs/study``.
    """
    path = Path(run_dir) / DATASET_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: {run_dir} is not a finished study run folder "
            f"(run `hookdiff study --out {run_dir}` first)"
        )
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()
