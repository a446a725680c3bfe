"""Shared pieces of the study's figures: the saving, the short names, intervals as error bars.

Every figure of :mod:`hookdiff.study.figures` draws with these, so an interval is drawn the
same way everywhere (:func:`errorbars`: its estimate with the 95 % bounds as error bars).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from hookdiff._io import atomic_write
from hookdiff.stats import Interval

__all__ = [
    "OUTPUT_DEPTH",
    "FigureSpec",
    "POSITION",
    "band",
    "errorbars",
    "figure_sites",
    "flag",
    "median",
    "pick_depths",
    "quantiles",
    "save",
    "short",
    "site_depths",
    "title",
    "zero",
]

#: The depth whose nonlinearity is set beside behaviour: the policy logits.
OUTPUT_DEPTH = "fc_policy_out"
#: The mouse position the figures read (the decision square).
POSITION = "decision_square"


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the study: its file stem, how it is drawn, what it needs, its caption.

    Attributes:
        stem: the file name without ``.png`` (per site: ``<stem>_<site>.png``).
        draw: ``draw(ds)`` (or ``draw(ds, site)`` when ``per_site``) -> a matplotlib Figure.
        needs: the dataset variables it reads (absent: the figure is not drawn).
        caption: what it shows, in the report.
        section: ``"answer"`` (beside the claims) or ``"support"`` (the supporting measurements).
        per_site: drawn once per site of :func:`figure_sites`.
    """

    stem: str
    draw: Callable[..., Figure]
    needs: tuple[str, ...]
    caption: str
    section: str = "answer"
    per_site: bool = False


def figure_sites(ds: xr.Dataset) -> list[str]:
    """The sites drawn: the steering layer, and the later layer only when it is another hook."""
    same = ds.attrs.get("later_hook") == ds.attrs.get("steering_hook")
    return [str(s) for s in ds["site"].values if not (same and s == "later")]


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (atomically) and return the path."""
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return path


def pick_depths(ds: xr.Dataset, site: str, n: int = 6) -> list[str]:
    """About ``n`` depths spread along the chain of ``site`` (the logits always included)."""
    valid = site_depths(ds, site)
    real = [d for d in valid if d != "directions"]
    if len(real) <= n:
        return real
    idx = np.unique(np.linspace(0, len(real) - 1, n).round().astype(int))
    return [real[i] for i in idx]


def site_depths(ds: xr.Dataset, site: str) -> list[str]:
    """Depths downstream of the site's hook (the others are NaN in the joined dataset)."""
    base = ds["base_norm"].sel(site=site, position=POSITION).isel(vector=0, maze=0)
    return [str(d) for d, ok in zip(ds["depth"].values, np.isfinite(base.values)) if ok]


def short(depth: str) -> str:
    """A hook name without the ``embedder.`` prefix (axis labels)."""
    return depth.replace("embedder.", "")


@contextlib.contextmanager
def all_nan_is_nan() -> Iterator[None]:
    """Statistics over mazes are NaN where every maze is NaN (the residual at t = 0): no warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        yield


def quantiles(da: xr.DataArray, q: list[float]) -> np.ndarray:
    """The ``q`` quantiles over mazes, NaN where every maze is NaN (no warning)."""
    with all_nan_is_nan():
        return da.quantile(q, dim="maze", skipna=True).values


def median(da: xr.DataArray) -> xr.DataArray:
    """The median over mazes, NaN where every maze is NaN (no warning)."""
    with all_nan_is_nan():
        return da.median("maze", skipna=True).compute()


def title(ds: xr.Dataset, site: str) -> str:
    """A figure title naming the site and its hook (and an untrained agent)."""
    hook = str(ds["site_hook"].sel(site=site).values)
    return f"{site} site: steering at {hook}{flag(ds)}"


def errorbars(ax: Any, x: np.ndarray, ivs: list[Interval], **kw: Any) -> None:
    """Points (or bars) at ``x`` with their 95 % intervals as error bars."""
    est = np.array([iv.estimate for iv in ivs])
    err = np.array([[iv.estimate - iv.lo for iv in ivs], [iv.hi - iv.estimate for iv in ivs]])
    ax.errorbar(x, est, yerr=np.nan_to_num(err), fmt=kw.pop("fmt", "o"), capsize=3, **kw)


def band(ax: Any, x: np.ndarray, ivs: list[Interval], color: str, label: str) -> None:
    """A line through the estimates with its 95 % interval shaded."""
    ax.plot(x, [iv.estimate for iv in ivs], "-o", ms=4, color=color, label=label)
    ax.fill_between(x, [iv.lo for iv in ivs], [iv.hi for iv in ivs], color=color, alpha=0.2)


def zero(ax: Any) -> None:
    """A line at 0 and a light grid on ``ax``."""
    ax.axhline(0.0, color="k", lw=0.7)
    ax.grid(alpha=0.3)


def flag(ds: xr.Dataset) -> str:
    """``"  [UNTRAINED AGENT]"`` for a random-init agent's dataset, else ``""``."""
    return "  [UNTRAINED AGENT]" if int(ds.attrs.get("untrained", 0)) else ""
