"""The one registry of the study's figures: stem, drawing function, needs, caption.

:data:`FIGURE_SPECS` lists every figure in report order (the answer's, one per claim; the vector
fields; per site the supporting figures; the later-layer selection). :func:`figure_names`,
:func:`draw_figures` and the report all read it, so a new figure is one row.
"""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr
from matplotlib.figure import Figure

from hookdiff.study.figures.answer_figures import ANSWER_FIGURES as _ANSWER_SPECS
from hookdiff.study.figures.common import FigureSpec, figure_sites, save
from hookdiff.study.figures.support import SUPPORT_FIGURES

__all__ = [
    "ANSWER_FIGURES",
    "FIGURES",
    "FIGURE_SPECS",
    "answer_figure_names",
    "draw",
    "draw_answer_figures",
    "draw_figures",
    "figure_names",
    "figure_spec",
]

#: Every figure of the study, in report order.
FIGURE_SPECS: tuple[FigureSpec, ...] = (*_ANSWER_SPECS, *SUPPORT_FIGURES)
#: The answer's figures as ``(stem, draw, needs)`` (the earlier form of the registry's rows).
ANSWER_FIGURES = tuple((f.stem, f.draw, f.needs) for f in _ANSWER_SPECS)
#: Figure stems per site (``<stem>_<site>.png``) and once per run (not the answer's).
FIGURES = {
    "per_site": tuple(f.stem for f in SUPPORT_FIGURES if f.per_site),
    "per_run": tuple(f.stem for f in SUPPORT_FIGURES if not f.per_site),
}


def figure_spec(stem: str) -> FigureSpec:
    """The registry row of ``stem`` (a KeyError naming the stems otherwise)."""
    found = {f.stem: f for f in FIGURE_SPECS}
    if stem not in found:
        raise KeyError(f"no figure {stem!r}; the figures are {sorted(found)}")
    return found[stem]


def _drawn(ds: xr.Dataset) -> list[tuple[FigureSpec, str | None]]:
    """``(spec, site)`` of every figure drawn for ``ds`` in report order (site None: once per
    run): the answer's and the vector fields, per site the supporting ones, then the rest."""
    specs = [f for f in FIGURE_SPECS if all(v in ds for v in f.needs)]
    first = [(f, None) for f in specs if not f.per_site and f.section == "answer"]
    sited = [(f, s) for s in figure_sites(ds) for f in specs if f.per_site]
    last = [(f, None) for f in specs if not f.per_site and f.section != "answer"]
    return first + sited + last


def _name(spec: FigureSpec, site: str | None) -> str:
    return f"{spec.stem}.png" if site is None else f"{spec.stem}_{site}.png"


def draw(ds: xr.Dataset, stem: str, site: str | None = None) -> Figure:
    """Draw the figure ``stem`` (at ``site`` for a per-site figure) from ``ds``."""
    spec = figure_spec(stem)
    return spec.draw(ds, site) if spec.per_site else spec.draw(ds)


def figure_names(ds: xr.Dataset) -> list[str]:
    """File names of every figure :func:`draw_figures` writes for ``ds``, in report order."""
    return [_name(f, s) for f, s in _drawn(ds)]


def answer_figure_names(ds: xr.Dataset) -> list[str]:
    """File names of the answer's figures that ``ds`` has the variables for, in claim order."""
    return [_name(f, s) for f, s in _drawn(ds) if f in _ANSWER_SPECS]


def draw_answer_figures(ds: xr.Dataset, run_dir: str | os.PathLike[str]) -> list[Path]:
    """Draw the answer's figures (:func:`answer_figure_names`) into ``run_dir/figures``."""
    out = Path(run_dir) / "figures"
    return [
        save(draw(ds, f.stem, s), out / _name(f, s)) for f, s in _drawn(ds) if f in _ANSWER_SPECS
    ]


def draw_figures(ds: xr.Dataset, run_dir: str | os.PathLike[str]) -> list[Path]:
    """Draw every figure of a study Dataset into ``run_dir/figures``; returns the paths.

    Args:
        ds: the study dataset (as written to ``study.nc``).
        run_dir: the run folder.

    Usage: ``draw_figures(load_dataset("runs/study"), "runs/study")`` (what ``hookdiff plot``
    runs).
    """
    out = Path(run_dir) / "figures"
    return [save(draw(ds, f.stem, s), out / _name(f, s)) for f, s in _drawn(ds)]
