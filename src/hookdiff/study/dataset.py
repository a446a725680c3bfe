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

if TYPE_CHECKING:
    from hookdiff.study.config import StudyConfig
    from hookdiff.study.inputs import StudyMazes, StudyVectors

__all__ = [
    "DATASET_NAME",
    "POSITIONS",
    "SITES",
    "VECTORS",
    "concat_labelled",
    "load_dataset",
    "maze_record",
    "merge_parts",
    "per_site",
    "study_attrs",
    "vector_record",
    "write_dataset",
]

#: File name of the dataset inside a run folder.
DATASET_NAME = "study.nc"
#: The two steering vectors, in the order of the ``vector`` coordinate.
VECTORS = ("cheese", "top_right")
#: Where the nonlinearity is measured: mouse on the decision square, mouse at the start.
POSITIONS = ("decision_square", "start")
#: The two studied hook points: the steering layer and the selected later layer.
SITES = ("steering", "later")


def concat_labelled(parts: Sequence[xr.Dataset], dim: str, labels: Sequence[str]) -> xr.Dataset:
    """Stack Datasets along a new labelled dim; depths/layers missing from a part become NaN.

    The union of each ordered coordinate (``depth``, ``layer``) keeps forward order (the order of
    first appearance: the steering site comes first and holds every later site's depths).
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
        combine_attrs="drop",
        fill_value=np.nan,
        coords="minimal",
        compat="override",
    )


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
    norms = [[vectors.norm(site_hooks[s], v) for v in VECTORS] for s in SITES]
    data: dict[str, Any] = {
        "site_hook": (("site",), np.array([site_hooks[s] for s in SITES], dtype=str)),
        "vector_norm": (("site", "vector"), np.array(norms)),
    }
    for s in SITES:
        pairs = vectors.pairs[site_hooks[s]]
        v = np.stack([pairs[n].flatten(1).cpu().numpy() for n in VECTORS])
        data[f"vector_{s}"] = (("vector", "vector_maze", f"{s}_feature"), v)
    seeds = np.array([m.level_seed for m in vectors.mazes], dtype=np.int64)
    data["vector_level_seed"] = (("vector_maze",), seeds)
    return xr.Dataset(data, coords={"site": list(SITES), "vector": list(VECTORS)})


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
