"""The supporting figures: the nonlinearity of diff(t) per site, behaviour, the vector fields
and the later-layer selection, drawn from the saved dataset alone.

Per site (the steering layer, and the later layer when it is another one): ‖diff‖ and ‖L‖ vs t
per depth, the residual heat map, asymmetry vs |t|, pattern flips and breakpoints, behaviour vs
t; once per run: the vector fields of the example mazes as changes (steered − unsteered, cropped
to the inner maze) and the later-layer candidates.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from hookdiff.maze.plot import plot_vector_field
from hookdiff.maze.state import MazeState
from hookdiff.study.figures.common import (
    OUTPUT_DEPTH,
    POSITION,
    FigureSpec,
    flag,
    median,
    pick_depths,
    quantiles,
    short,
    site_depths,
    title,
)
from hookdiff.study.select import outcomes, reach_targets
from hookdiff.study.targets import VECTOR_SPECS

__all__ = ["SUPPORT_FIGURES", "field_state"]


def _norms(ds: xr.Dataset, site: str) -> Figure:
    fig = Figure(figsize=(11, 4.2))
    axes = fig.subplots(1, len(ds["vector"]), sharey=True)
    depths = pick_depths(ds, site)
    colors = [f"C{i}" for i in range(len(depths))]
    t = ds["t"].values
    nz = t != 0
    for ax, vec in zip(np.atleast_1d(axes), ds["vector"].values):
        sel = dict(site=site, vector=vec, position=POSITION)
        base = ds["base_norm"].sel(**sel)
        for d, c in zip(depths, colors):
            diff = median(ds["diff_norm"].sel(**sel, depth=d) / base.sel(depth=d))
            lin = median(ds["linear_norm"].sel(**sel, depth=d) / base.sel(depth=d))
            ax.plot(t[nz], diff.values[nz], "-o", color=c, ms=3, label=short(d))
            ax.plot(t[nz], lin.values[nz], "--", color=c, lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("t")
        ax.set_title(f"{vec} vector")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("‖diff‖ (solid), ‖L‖ (dashed) / ‖f_n(a)‖, median")
    np.atleast_1d(axes)[-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title(ds, site) + " — mouse on the decision square")
    return fig


def _heatmap(ds: xr.Dataset, site: str) -> Figure:
    depths = site_depths(ds, site)
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
            r = median(ds["residual"].sel(site=site, vector=vec, position=pos, depth=depths))
            im = ax.imshow(
                r.transpose("depth", "t").values,
                aspect="auto",
                cmap="magma",
                vmin=0,
                vmax=1,
                interpolation="nearest",
            )
            ax.set_xticks(range(len(t)), [f"{x:g}" for x in t], fontsize=7, rotation=90)
            ax.set_yticks(range(len(depths)), [short(d) for d in depths], fontsize=6)
            ax.set_title(f"{vec} vector, mouse at {pos}", fontsize=9)
            ax.set_xlabel("t")
    if im is not None:
        label = "relative residual ‖diff − L‖ / max(‖diff‖, ‖L‖)"
        fig.colorbar(im, ax=axes.ravel().tolist(), label=label)
    fig.suptitle(title(ds, site) + f" — median over mazes (threshold {ds.attrs['threshold']:g})")
    return fig


def _asymmetry(ds: xr.Dataset, site: str) -> Figure:
    fig = Figure(figsize=(11, 4.2))
    axes = np.atleast_1d(fig.subplots(1, len(ds["vector"]), sharey=True))
    depths = pick_depths(ds, site) + (["directions"] if "directions" in ds["depth"] else [])
    for ax, vec in zip(axes, ds["vector"].values):
        sel = dict(site=site, vector=vec, position=POSITION)
        for i, d in enumerate(depths):
            a = median(ds["asymmetry"].sel(**sel, depth=d))
            ax.plot(ds["t_pos"].values, a.values, "-o", ms=3, color=f"C{i}", label=short(d))
        ax.set_xlabel("|t|")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{vec} vector")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("asymmetry ‖diff(t)+diff(−t)‖ / (‖diff(t)‖+‖diff(−t)‖)")
    axes[-1].legend(fontsize=7)
    fig.suptitle(title(ds, site) + " — 0 for a map linear along v")
    return fig


def _flips_breakpoints(ds: xr.Dataset, site: str) -> Figure:
    vectors = ds["vector"].values
    has_bp = "breakpoint_density" in ds
    rows = 2 if has_bp else 1
    fig = Figure(figsize=(11, 3.8 * rows))
    axes = np.array(fig.subplots(rows, len(vectors), squeeze=False))
    t = ds["t"].values
    for j, vec in enumerate(vectors):
        sel = dict(site=site, vector=vec, position=POSITION)
        ax = axes[0, j]
        flips = median(ds["flip_fraction"].sel(**sel))
        for i, layer in enumerate(ds["layer"].values):
            y = flips.sel(layer=layer).values
            if np.isfinite(y).any():
                ax.plot(t, y, "-o", ms=3, color=f"C{i % 10}", label=short(str(layer)))
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
                    ds["t_bin"].values,
                    dens.sel(depth=d).values,
                    where="mid",
                    color=f"C{i}",
                    label=short(d),
                )
            ax.set_yscale("symlog", linthresh=1)
            ax.set_xlabel("t")
            ax.set_ylabel("exact breakpoints per unit t (mean, walked mazes)")
            ax.set_title(f"{vec} vector: breakpoints of f_n along a + t·v", fontsize=9)
            ax.grid(alpha=0.3)
            if j == len(vectors) - 1:
                ax.legend(fontsize=7)
    fig.suptitle(title(ds, site) + " — mouse on the decision square")
    return fig


def _behaviour(ds: xr.Dataset, site: str) -> Figure:
    vectors = ds["vector"].values
    fig = Figure(figsize=(12, 3.8 * len(vectors)))
    axes = np.array(fig.subplots(len(vectors), 2, squeeze=False))
    t = ds["t"].values
    thr = float(ds.attrs["threshold"])
    for i, vec in enumerate(vectors):
        ax = axes[i, 0]
        for k, spec in enumerate(_target_specs(ds)):
            name, label, c = spec.target_var, f"P(toward {spec.target}) at decision sq.", f"C{k}"
            da = ds[name].sel(site=site, vector=vec)
            m = da.mean("maze").values
            lo, hi = da.quantile([0.25, 0.75], dim="maze").values
            ax.plot(t, m, "-o", ms=3, color=c, label=label)
            ax.fill_between(t, lo, hi, color=c, alpha=0.15)
        reach = [
            (outcomes()[o], f"rollouts: reach {o.replace('_', '-')}", f"C{k}")
            for k, o in enumerate(reach_targets(ds))
        ]
        for name, label, c in [*reach, ("timed_out", "rollouts: timeout", "grey")]:
            da = ds[name].sel(site=site, vector=vec)  # the rate over mazes (and episodes)
            r = da.mean([d for d in da.dims if d != "t"], skipna=True).values
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
            r = ds["residual"].sel(site=site, vector=vec, position=POSITION, depth=d)
            med = median(r).values
            lo, hi = quantiles(r, [0.25, 0.75])
            ax.plot(t, med, "-o", ms=3, color=c, label=f"residual at {d}")
            ax.fill_between(t, lo, hi, color=c, alpha=0.15)
        ax.axhline(thr, color="k", lw=0.8, ls="--", label=f"threshold {thr:g}")
        ax.set_xlabel("t")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{vec} vector: nonlinearity of the output (median, IQR)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title(ds, site))
    return fig


def _target_specs(ds: xr.Dataset) -> list:
    """The vector specs whose target readout the dataset holds, one per target variable."""
    seen = {spec.target_var: spec for spec in VECTOR_SPECS.values() if spec.target_var in ds}
    return list(seen.values())


def field_state(ds: xr.Dataset, i: int) -> MazeState:
    """The ``i``-th example maze of the vector fields, rebuilt from its saved state bytes."""
    n = int(ds["field_state_len"].values[i])
    return MazeState.from_bytes(bytes(ds["field_state"].values[i, :n].astype(np.uint8)))


#: The direction order :func:`~hookdiff.maze.plot.plot_vector_field` takes its probabilities in.
_PLOT_DIRECTIONS = ["left", "down", "up", "right", "none"]
#: At most this magnification of the changes of one panel (so noise is not blown up to a step).
_MAX_GAIN = 10.0


def _vector_fields(ds: xr.Dataset) -> Figure:
    """Per example maze and vector: the unsteered policy's mean step, then the change each
    steered t makes (steered − unsteered, magnified per panel as its title says), cropped to the
    inner maze."""
    n_f, ts = ds.sizes.get("field_maze", 0), [float(t) for t in ds["field_t"].values]
    vectors, steered = [str(v) for v in ds["vector"].values], [t for t in ts if t != 0]
    rows = max(1, n_f * len(vectors))
    fig = Figure(figsize=(4.6 * (1 + len(steered)), 4.8 * rows), layout="constrained")
    axes = np.array(fig.subplots(rows, 1 + len(steered), squeeze=False))
    if n_f == 0 or 0.0 not in ts:
        axes[0, 0].text(0.5, 0.5, "no example mazes with an unsteered (t = 0) field", ha="center")
        return fig
    for i in range(n_f):
        state, cells = field_state(ds, i), ds["field_cells"].values[i]
        keep = cells[:, 0] >= 0
        cells = [tuple(c) for c in cells[keep]]
        probs = ds["field_probs"].isel(field_maze=i, field_cell=np.flatnonzero(keep))
        probs = probs.sel(direction=_PLOT_DIRECTIONS).transpose(..., "field_cell", "direction")
        for k, vec in enumerate(vectors):
            row = axes[i * len(vectors) + k]
            base = probs.sel(vector=vec, field_t=0.0).values
            plot_vector_field(
                state, cells, base, ax=row[0], color="k", title=f"maze {i}: unsteered"
            )
            for ax, t in zip(row[1:], steered):
                change = probs.sel(vector=vec, field_t=t).values - base
                gain = _arrow_gain(change)
                plot_vector_field(
                    state,
                    cells,
                    gain * change,
                    ax=ax,
                    title=f"{vec}, t = {t:+g}: change (×{gain:.2g})",
                    color="tab:red" if t < 0 else "tab:blue",
                )
            for ax in row:
                _crop(ax, state)
    hook = ds.attrs.get("steering_hook", "")
    fig.suptitle(
        f"Change of the policy's mean step at every cell (steered − unsteered), "
        f"steering at {hook}" + flag(ds)
    )
    return fig


def _arrow_gain(change: np.ndarray) -> float:
    """The factor that draws the largest change as a full step, at most :data:`_MAX_GAIN`.

    ``change`` is ``(cell, 5)`` over left, down, up, right, none: the step is (right − left,
    up − down)."""
    biggest = float(np.hypot(change[:, 3] - change[:, 0], change[:, 2] - change[:, 1]).max())
    return min(_MAX_GAIN, 1.0 / biggest) if biggest > 0 else 1.0


def _crop(ax: Any, state: MazeState) -> None:
    """Show the inner maze only (not the wall margin around it)."""
    lo, hi = state.margin - 0.5, state.margin + state.maze_dim - 0.5
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)


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
        ax.axvline(cands.index(later), color="tab:red", ls="--", label=f"chosen: {short(later)}")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(x, [short(c) for c in cands], rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("steering effect at the published t")
    ax.set_title(
        "Later layers: each vector at its published t, the change of P(toward its target) "
        "in the published direction",
        fontsize=9,
    )
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    return fig


# --------------------------------------------------------------------------------------------
# The answer's figures: one per claim, each number with its 95 % interval
# --------------------------------------------------------------------------------------------


# fmt: skip (below): one row per entry reads as a table
#: The supporting figures: the vector fields (shown beside the answer's), per site the
#: nonlinearity of diff(t) and behaviour, and once the later-layer selection.
SUPPORT_FIGURES = (
    FigureSpec("vector_fields", _vector_fields, (),
               "Vector fields: the unsteered mean step, then the change steering makes."),
    FigureSpec("norms", _norms, (), "‖diff‖ and ‖L‖ against t per depth (median over mazes).",
               "support", per_site=True),
    FigureSpec("residual_heatmap", _heatmap, (),
               "The relative residual of the linear prediction per depth and t.", "support",
               per_site=True),
    FigureSpec("asymmetry", _asymmetry, (), "The asymmetry of diff(±t) against |t| per depth.",
               "support", per_site=True),
    FigureSpec("flips_breakpoints", _flips_breakpoints, (),
               "Relu / maxpool pattern flips and exact breakpoints along the line.", "support",
               per_site=True),
    FigureSpec("behaviour", _behaviour, (),
               "Behaviour and the nonlinearity of the output against t.", "support",
               per_site=True),
    FigureSpec("later_layers", _later_layers, (),
               "The later-layer candidates' steering effects and the chosen later layer.",
               "support"),
)  # fmt: skip
