"""The study's figures, drawn from the saved dataset alone (``hookdiff plot RUN_DIR`` redraws them).

Nothing here runs a model or an env: every figure reads variables of the study Dataset (see
:mod:`hookdiff.study.dataset`), so a run folder can be redrawn anywhere the netCDF file is.
Figures are ``matplotlib.figure.Figure`` objects rendered by Agg (no pyplot global state) and
saved atomically. Per site (the steering layer and the later layer): ‖diff‖ and ‖L‖ vs t per
depth, the residual heat map (t × depth), asymmetry vs |t|, pattern flips and breakpoints vs t,
behaviour vs t beside the nonlinearity of the logits; then the vector fields of the example
mazes and the later-layer selection.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from hookdiff._io import atomic_write
from hookdiff.maze.plot import plot_vector_field
from hookdiff.maze.state import MazeState

__all__ = ["FIGURES", "OUTPUT_DEPTH", "draw_figures", "figure_names", "pick_depths"]

#: The depth whose nonlinearity is set beside behaviour: the policy logits.
OUTPUT_DEPTH = "fc_policy_out"

#: Figure stems per site (``<stem>_<site>.png``) and once per run.
FIGURES = {
    "per_site": ("norms", "residual_heatmap", "asymmetry", "flips_breakpoints", "behaviour"),
    "per_run": ("vector_fields", "later_layers"),
}

_POSITION = "decision_square"


def figure_names(ds: xr.Dataset) -> list[str]:
    """File names of every figure :func:`draw_figures` writes for ``ds``."""
    sites = [str(s) for s in ds["site"].values]
    names = [f"{stem}_{s}.png" for s in sites for stem in FIGURES["per_site"]]
    return names + [f"{stem}.png" for stem in FIGURES["per_run"]]


def _save(fig: Figure, path: Path) -> Path:
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return path


def pick_depths(ds: xr.Dataset, site: str, n: int = 6) -> list[str]:
    """About ``n`` depths spread along the chain of ``site`` (the logits always included)."""
    valid = _site_depths(ds, site)
    real = [d for d in valid if d != "directions"]
    if len(real) <= n:
        return real
    idx = np.unique(np.linspace(0, len(real) - 1, n).round().astype(int))
    return [real[i] for i in idx]


def _site_depths(ds: xr.Dataset, site: str) -> list[str]:
    """Depths downstream of the site's hook (the others are NaN in the joined dataset)."""
    base = ds["base_norm"].sel(site=site, position=_POSITION).isel(vector=0, maze=0)
    return [str(d) for d, ok in zip(ds["depth"].values, np.isfinite(base.values)) if ok]


def _short(depth: str) -> str:
    return depth.replace("embedder.", "")


@contextlib.contextmanager
def _all_nan_is_nan() -> Iterator[None]:
    """Statistics over mazes are NaN where every maze is NaN (the residual at t = 0): no warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        yield


def _quantiles(da: xr.DataArray, q: list[float]) -> np.ndarray:
    with _all_nan_is_nan():
        return da.quantile(q, dim="maze", skipna=True).values


def _median(da: xr.DataArray) -> xr.DataArray:
    with _all_nan_is_nan():
        return da.median("maze", skipna=True).compute()


def _title(ds: xr.Dataset, site: str) -> str:
    hook = str(ds["site_hook"].sel(site=site).values)
    flag = "  [UNTRAINED AGENT]" if int(ds.attrs.get("untrained", 0)) else ""
    return f"{site} site: steering at {hook}{flag}"


def _norms(ds: xr.Dataset, site: str) -> Figure:
    fig = Figure(figsize=(11, 4.2))
    axes = fig.subplots(1, len(ds["vector"]), sharey=True)
    depths = pick_depths(ds, site)
    colors = [f"C{i}" for i in range(len(depths))]
    t = ds["t"].values
    nz = t != 0
    for ax, vec in zip(np.atleast_1d(axes), ds["vector"].values):
        sel = dict(site=site, vector=vec, position=_POSITION)
        base = ds["base_norm"].sel(**sel)
        for d, c in zip(depths, colors):
            diff = _median(ds["diff_norm"].sel(**sel, depth=d) / base.sel(depth=d))
            lin = _median(ds["linear_norm"].sel(**sel, depth=d) / base.sel(depth=d))
            ax.plot(t[nz], diff.values[nz], "-o", color=c, ms=3, label=_short(d))
            ax.plot(t[nz], lin.values[nz], "--", color=c, lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("t")
        ax.set_title(f"{vec} vector")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("‖diff‖ (solid), ‖L‖ (dashed) / ‖f_n(a)‖, median")
    np.atleast_1d(axes)[-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(_title(ds, site) + " — mouse on the decision square")
    return fig


def _heatmap(ds: xr.Dataset, site: str) -> Figure:
    depths = _site_depths(ds, site)
    vectors, positions = ds["vector"].values, ds["position"].values
    fig = Figure(
        figsize=(5 * len(positions) + 3, 0.28 * len(depths) * len(vectors) + 2.5),
        layout="constrained",
    )
    axes = np.array(fig.subplots(len(vectors), len(positions), squeeze=False))
    t = ds["t"].values
    im = None
    for i, vec in enumerate(vectors):
        for j, pos in enumerate(positions):
            ax = axes[i, j]
            r = _median(ds["residual"].sel(site=site, vector=vec, position=pos, depth=depths))
            im = ax.imshow(
                r.transpose("depth", "t").values,
                aspect="auto",
                cmap="magma",
                vmin=0,
                vmax=1,
                interpolation="nearest",
            )
            ax.set_xticks(range(len(t)), [f"{x:g}" for x in t], fontsize=7, rotation=90)
            ax.set_yticks(range(len(depths)), [_short(d) for d in depths], fontsize=6)
            ax.set_title(f"{vec} vector, mouse at {pos}", fontsize=9)
            ax.set_xlabel("t")
    if im is not None:
        label = "relative residual ‖diff − L‖ / max(‖diff‖, ‖L‖)"
        fig.colorbar(im, ax=axes.ravel().tolist(), label=label)
    fig.suptitle(_title(ds, site) + f" — median over mazes (threshold {ds.attrs['threshold']:g})")
    return fig


def _asymmetry(ds: xr.Dataset, site: str) -> Figure:
    fig = Figure(figsize=(11, 4.2))
    axes = np.atleast_1d(fig.subplots(1, len(ds["vector"]), sharey=True))
    depths = pick_depths(ds, site) + (["directions"] if "directions" in ds["depth"] else [])
    for ax, vec in zip(axes, ds["vector"].values):
        sel = dict(site=site, vector=vec, position=_POSITION)
        for i, d in enumerate(depths):
            a = _median(ds["asymmetry"].sel(**sel, depth=d))
            ax.plot(ds["t_pos"].values, a.values, "-o", ms=3, color=f"C{i}", label=_short(d))
        ax.set_xlabel("|t|")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{vec} vector")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("asymmetry ‖diff(t)+diff(−t)‖ / (‖diff(t)‖+‖diff(−t)‖)")
    axes[-1].legend(fontsize=7)
    fig.suptitle(_title(ds, site) + " — 0 for a map linear along v")
    return fig


def _flips_breakpoints(ds: xr.Dataset, site: str) -> Figure:
    vectors = ds["vector"].values
    has_bp = "breakpoint_density" in ds
    rows = 2 if has_bp else 1
    fig = Figure(figsize=(11, 3.8 * rows))
    axes = np.array(fig.subplots(rows, len(vectors), squeeze=False))
    t = ds["t"].values
    for j, vec in enumerate(vectors):
        sel = dict(site=site, vector=vec, position=_POSITION)
        ax = axes[0, j]
        flips = _median(ds["flip_fraction"].sel(**sel))
        for i, layer in enumerate(ds["layer"].values):
            y = flips.sel(layer=layer).values
            if np.isfinite(y).any():
                ax.plot(t, y, "-o", ms=3, color=f"C{i % 10}", label=_short(str(layer)))
        ax.set_xlabel("t")
        ax.set_ylabel("fraction of units flipped (median)")
        ax.set_title(f"{vec} vector: relu / maxpool pattern flips")
        ax.grid(alpha=0.3)
        if j == len(vectors) - 1:
            ax.legend(fontsize=6)
        if has_bp:
            ax = axes[1, j]
            dens = ds["breakpoint_density"].sel(**sel).mean("maze")
            for i, d in enumerate(pick_depths(ds, site, 4)):
                ax.step(
                    ds["t_bin"].values, dens.sel(depth=d).values, where="mid",
                    color=f"C{i}", label=_short(d),
                )  # fmt: skip
            ax.set_yscale("symlog", linthresh=1)
            ax.set_xlabel("t")
            ax.set_ylabel("exact breakpoints per unit t (mean, walked mazes)")
            ax.set_title(f"{vec} vector: breakpoints of f_n along a + t·v", fontsize=9)
            ax.grid(alpha=0.3)
            if j == len(vectors) - 1:
                ax.legend(fontsize=7)
    fig.suptitle(_title(ds, site) + " — mouse on the decision square")
    return fig


def _behaviour(ds: xr.Dataset, site: str) -> Figure:
    vectors = ds["vector"].values
    fig = Figure(figsize=(12, 3.8 * len(vectors)))
    axes = np.array(fig.subplots(len(vectors), 2, squeeze=False))
    t = ds["t"].values
    thr = float(ds.attrs["threshold"])
    for i, vec in enumerate(vectors):
        ax = axes[i, 0]
        for name, label, c in [
            ("p_toward_cheese", "P(toward cheese) at decision sq.", "goldenrod"),
            ("p_toward_top_right", "P(toward top-right) at decision sq.", "tab:green"),
        ]:
            da = ds[name].sel(site=site, vector=vec)
            m = da.mean("maze").values
            lo, hi = da.quantile([0.25, 0.75], dim="maze").values
            ax.plot(t, m, "-o", ms=3, color=c, label=label)
            ax.fill_between(t, lo, hi, color=c, alpha=0.15)
        for name, label, c in [
            ("reached_cheese", "rollouts: reach cheese", "goldenrod"),
            ("reached_top_right", "rollouts: reach top-right", "tab:green"),
            ("timed_out", "rollouts: timeout", "grey"),
        ]:
            r = ds[name].sel(site=site, vector=vec).mean("maze", skipna=True).values
            ok = np.isfinite(r)
            ax.plot(t[ok], r[ok], ":s", ms=4, color=c, label=label)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("t")
        ax.set_title(f"{vec} vector: behaviour (mean, IQR)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax = axes[i, 1]
        for d, c in [(OUTPUT_DEPTH, "tab:purple"), ("directions", "tab:blue")]:
            if d not in ds["depth"]:
                continue
            r = ds["residual"].sel(site=site, vector=vec, position=_POSITION, depth=d)
            med = _median(r).values
            lo, hi = _quantiles(r, [0.25, 0.75])
            ax.plot(t, med, "-o", ms=3, color=c, label=f"residual at {d}")
            ax.fill_between(t, lo, hi, color=c, alpha=0.15)
        ax.axhline(thr, color="k", lw=0.8, ls="--", label=f"threshold {thr:g}")
        ax.set_xlabel("t")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{vec} vector: nonlinearity of the output (median, IQR)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(_title(ds, site))
    return fig


def field_state(ds: xr.Dataset, i: int) -> MazeState:
    """The ``i``-th example maze of the vector fields, rebuilt from its saved state bytes."""
    n = int(ds["field_state_len"].values[i])
    return MazeState.from_bytes(bytes(ds["field_state"].values[i, :n].astype(np.uint8)))


def _vector_fields(ds: xr.Dataset) -> Figure:
    n_f = ds.sizes.get("field_maze", 0)
    ts = ds["field_t"].values
    vectors = ds["vector"].values
    rows = max(1, n_f * len(vectors))
    fig = Figure(figsize=(3.4 * len(ts), 3.5 * rows))
    axes = np.array(fig.subplots(rows, len(ts), squeeze=False))
    if n_f == 0:
        axes[0, 0].text(0.5, 0.5, "no example mazes (field_mazes = 0)", ha="center")
        return fig
    hook = ds.attrs.get("steering_hook", "")
    for i in range(n_f):
        state = field_state(ds, i)
        cells = ds["field_cells"].values[i]
        keep = cells[:, 0] >= 0
        for vi, vec in enumerate(vectors):
            for j, t in enumerate(ts):
                probs = ds["field_probs"].sel(vector=vec).values[i, j][keep]
                plot_vector_field(
                    state,
                    [tuple(c) for c in cells[keep]],
                    probs,
                    ax=axes[i * len(vectors) + vi, j],
                    title=f"maze {i}: {vec} vector, t = {t:g}",
                    color="tab:red" if t < 0 else ("tab:blue" if t > 0 else "k"),
                )
    flag = "  [UNTRAINED AGENT]" if int(ds.attrs.get("untrained", 0)) else ""
    fig.suptitle(f"Mean step of the policy at every cell, steering at {hook}{flag}")
    return fig


def _later_layers(ds: xr.Dataset) -> Figure:
    fig = Figure(figsize=(10, 4))
    ax = fig.subplots()
    cands = [str(c) for c in ds["candidate"].values]
    x = np.arange(len(cands))
    eff = ds["candidate_effect"]
    w = 0.38
    for k, vec in enumerate(ds["vector"].values):
        ax.bar(x + (k - 0.5) * w, eff.sel(vector=vec).values, w, label=f"{vec} vector")
    ax.plot(x, ds["candidate_score"].values, "kD", label="score (mean)")
    later = ds.attrs.get("later_hook")
    if later in cands:
        ax.axvline(cands.index(later), color="tab:red", ls="--", label=f"chosen: {_short(later)}")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(x, [_short(c) for c in cands], rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("steering effect at the published t")
    ax.set_title(
        "Later layers: cheese t=−1 (drop of P(toward cheese)), top-right t=+1 "
        "(rise of P(toward top-right))",
        fontsize=9,
    )
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    return fig


def draw_figures(ds: xr.Dataset, run_dir: str | os.PathLike[str]) -> list[Path]:
    """Draw every figure of a study Dataset into ``run_dir/figures``; returns the paths.

    Args:
        ds: the study dataset (as written to ``study.nc``).
        run_dir: the run folder.

    Example:
        >>> draw_figures(load_dataset("runs/study"), "runs/study")  # doctest: +SKIP
    """
    out = Path(run_dir) / "figures"
    paths = []
    per_site = {
        "norms": _norms,
        "residual_heatmap": _heatmap,
        "asymmetry": _asymmetry,
        "flips_breakpoints": _flips_breakpoints,
        "behaviour": _behaviour,
    }
    for site in [str(s) for s in ds["site"].values]:
        for stem, draw in per_site.items():
            paths.append(_save(draw(ds, site), out / f"{stem}_{site}.png"))
    paths.append(_save(_vector_fields(ds), out / "vector_fields.png"))
    paths.append(_save(_later_layers(ds), out / "later_layers.png"))
    return paths
