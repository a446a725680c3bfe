"""Files and provenance: the one atomic writer, JSON output, and the package versions we record.

Every file hookdiff writes (datasets, figures, reports, checkpoints, model cards, JSON) goes through
:func:`atomic_write`, so an exception or a kill never leaves a half-written file under the final
name; the temporary names all follow one pattern (``.<name>.<random>.tmp``) that
:func:`remove_stale_temporaries` can clean up after a kill.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "atomic_write",
    "jsonable",
    "package_versions",
    "remove_stale_temporaries",
    "write_json",
]

#: Distributions whose versions are recorded beside every result.
RECORDED_PACKAGES = (
    "hookdiff",
    "torch",
    "numpy",
    "xarray",
    "transformer-lens",
    "procgen-mirror",
    "h5netcdf",
)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path`` (``os.replace``).

    An exception leaves ``path`` untouched and removes the temporary file (a kill leaves a
    ``.<name>.*.tmp`` file that :func:`remove_stale_temporaries` deletes).

    The file gets the mode a plain ``open`` would give it (0644 under the usual umask 022), not
    the temporary file's private 0600, so collaborators can read a run's outputs.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
        >>> with atomic_write(target) as tmp:
        ...     _ = tmp.write_text("done")
        >>> target.read_text()
        'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> None:
    """Delete the temporary files an interrupted :func:`atomic_write` left in ``folder`` (recursively)."""
    for p in Path(folder).rglob(".*.tmp"):
        p.unlink(missing_ok=True)


def jsonable(x: Any) -> Any:
    """``x`` with every value JSON can hold as it is: NaN as None (no number), ±inf as
    ``"inf"`` / ``"-inf"``, numpy scalars and arrays as Python numbers and lists, tuples as lists
    (dict keys as they are). The one sanitiser for run.json, the answer and the summary.

    Example:
        >>> jsonable({"a": float("nan"), "b": (float("inf"), np.float32(0.5))})
        {'a': None, 'b': ['inf', 0.5]}
    """
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, float):
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
    return x


def write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` as indented JSON (keys in insertion order), atomically; return the path."""
    path = Path(path)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    return path


def package_versions() -> dict[str, str]:
    """Python's and the recorded packages' versions, so that a result can be reproduced."""
    out = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
