"""Compare two study datasets exactly: dims, coords, variables, values and attrs.

A refactor of :mod:`hookdiff.study` must leave the dataset unchanged for the same config and
seed. This reads two ``study.nc`` files (or run folders) and lists every difference: a dimension
size, a coordinate or variable missing on one side, different dims or dtype, any value that differs
(NaN equals NaN, nothing else is tolerated), and attrs. Attrs that legitimately differ between two
runs (``timings``, package ``versions``, the ``checkpoint`` path and the config's ``out_dir``) are
skipped. The order of the variables is reported but is not a difference.

Run: ``.venv/bin/python benchmarks/compare_study.py OLD NEW``; exit status 0 when identical.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

#: Dataset attrs that may differ between two runs of the same study.
SKIP_ATTRS = {"timings", "versions", "checkpoint"}
#: Config fields that may differ between two runs of the same study.
SKIP_CONFIG = {"out_dir"}


def load(path: Path) -> xr.Dataset:
    """The dataset at ``path`` (a ``.nc`` file or a run folder holding ``study.nc``)."""
    path = path / "study.nc" if path.is_dir() else path
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def _same_values(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def _compare_arrays(kind: str, a: xr.Dataset, b: xr.Dataset, names: list[str]) -> list[str]:
    out = []
    for name in names:
        x, y = a[name], b[name]
        if x.dims != y.dims:
            out.append(f"{kind} {name}: dims {x.dims} vs {y.dims}")
        elif x.dtype != y.dtype:
            out.append(f"{kind} {name}: dtype {x.dtype} vs {y.dtype}")
        elif not _same_values(x.values, y.values):
            out.append(f"{kind} {name}: values differ{_where(x.values, y.values)}")
        if dict(x.attrs) != dict(y.attrs):
            out.append(f"{kind} {name}: attrs {dict(x.attrs)} vs {dict(y.attrs)}")
    return out


def _where(a: np.ndarray, b: np.ndarray) -> str:
    if a.dtype.kind not in "fc" or a.shape != b.shape:
        return ""
    bad = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    return f" at {int(bad.sum())} of {bad.size} entries, max |Δ| {np.nanmax(np.abs(a - b)):.3g}"


def _config(attrs: dict[str, Any]) -> dict[str, Any]:
    config = json.loads(attrs.get("config", "{}"))
    return {k: v for k, v in config.items() if k not in SKIP_CONFIG}


def compare(a: xr.Dataset, b: xr.Dataset) -> tuple[list[str], list[str]]:
    """``(differences, notes)`` between ``a`` and ``b``; notes are not differences."""
    diffs, notes = [], []
    if dict(a.sizes) != dict(b.sizes):
        diffs.append(f"dims {dict(a.sizes)} vs {dict(b.sizes)}")
    for kind, xa, xb in [("coord", a.coords, b.coords), ("variable", a.data_vars, b.data_vars)]:
        only = set(xa) ^ set(xb)
        if only:
            diffs.append(f"{kind}s only in one: old {set(xa) - set(xb)}, new {set(xb) - set(xa)}")
        diffs += _compare_arrays(kind, a, b, sorted(set(xa) & set(xb)))
    if list(a.data_vars) != list(b.data_vars):
        notes.append("variable order differs")
    keys = (set(a.attrs) | set(b.attrs)) - SKIP_ATTRS - {"config"}
    diffs += [
        f"attr {k}: {a.attrs.get(k)!r} vs {b.attrs.get(k)!r}"
        for k in sorted(keys)
        if a.attrs.get(k) != b.attrs.get(k)
    ]
    if _config(a.attrs) != _config(b.attrs):
        diffs.append(f"attr config (less {SKIP_CONFIG}) differs")
    return diffs, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="baseline study.nc or run folder")
    parser.add_argument("new", type=Path, help="study.nc or run folder to check")
    args = parser.parse_args(argv)
    a, b = load(args.old), load(args.new)
    diffs, notes = compare(a, b)
    counts = f"{len(b.data_vars)} variables, {len(b.coords)} coords, {len(b.sizes)} dims"
    for line in diffs + [f"note: {n}" for n in notes]:
        print(line)
    print(f"{'IDENTICAL' if not diffs else f'{len(diffs)} DIFFERENCES'} ({counts})")
    return 0 if not diffs else 1


if __name__ == "__main__":
    sys.exit(main())
