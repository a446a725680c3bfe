"""The study's figures, drawn from the saved dataset alone (``hookdiff plot RUN_DIR`` redraws them).

Nothing here runs a model or an env: every figure reads variables of the study Dataset (see
:mod:`hookdiff.study.dataset`), so a run folder can be redrawn anywhere the netCDF file is.
Figures are ``matplotlib.figure.Figure`` objects rendered by Agg (no pyplot global state) and
saved atomically. First the answer's figures, one per claim of :mod:`hookdiff.study.answer`
(each number with its 95 % interval): the add/subtract asymmetry, the cut scan, the softmax-only
test, knock-out / knock-in per layer, the exact kink attribution, the base swap, the controls
and rollouts, the rollouts with the network cut, the later layers at a matched effect; then the vector fields of the example mazes as changes (steered − unsteered),
cropped to the inner maze. Then the supporting figures per site (the steering layer, and the
later layer when it is another one): ‖diff‖ and ‖L‖ vs t per depth, the residual heat map,
asymmetry vs |t|, pattern flips and breakpoints, behaviour vs t; and the later-layer selection.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from hookdiff._io import atomic_write
from hookdiff.maze.plot import plot_vector_field
from hookdiff.maze.state import MazeState
from hookdiff.stats import Interval, bootstrap_mean, wilson
from hookdiff.study.answer import (
    CONTROLS,
    CUT_READOUT,
    LOGITS,
    PRIMARY,
    READOUTS,
    SOFTMAX_READOUTS,
    bootstrap_seed,
    cut_intervals,
    cut_rollout_rates,
    even_of_target,
    exact_rollout_rates,
    later_steers,
    loc_values,
    t_loc_one,
    target_readout,
)

__all__ = [
    "ANSWER_FIGURES",
    "FIGURES",
    "OUTPUT_DEPTH",
    "answer_figure_names",
    "draw_answer_figures",
    "draw_figures",
    "figure_names",
    "figure_sites",
    "pick_depths",
]

#: The depth whose nonlinearity is set beside behaviour: the policy logits.
OUTPUT_DEPTH = "fc_policy_out"

#: Figure stems per site (``<stem>_<site>.png``) and once per run.
FIGURES = {
    "per_site": ("norms", "residual_heatmap", "asymmetry", "flips_breakpoints", "behaviour"),
    "per_run": ("vector_fields", "later_layers"),
}

_POSITION = "decision_square"


def figure_sites(ds: xr.Dataset) -> list[str]:
    """The sites drawn: the steering layer, and the later layer only when it is another hook."""
    same = ds.attrs.get("later_hook") == ds.attrs.get("steering_hook")
    return [str(s) for s in ds["site"].values if not (same and s == "later")]


def figure_names(ds: xr.Dataset) -> list[str]:
    """File names of every figure :func:`draw_figures` writes for ``ds``, in report order."""
    names = answer_figure_names(ds) + ["vector_fields.png"]
    names += [f"{stem}_{s}.png" for s in figure_sites(ds) for stem in FIGURES["per_site"]]
    return names + ["later_layers.png"]


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
            plot_vector_field(state, cells, base, ax=row[0], color="k",
                              title=f"maze {i}: unsteered")  # fmt: skip
            for ax, t in zip(row[1:], steered):
                change = probs.sel(vector=vec, field_t=t).values - base
                gain = _arrow_gain(change)
                plot_vector_field(state, cells, gain * change, ax=ax,
                                  title=f"{vec}, t = {t:+g}: change (×{gain:.2g})",
                                  color="tab:red" if t < 0 else "tab:blue")  # fmt: skip
            for ax in row:
                _crop(ax, state)
    hook = ds.attrs.get("steering_hook", "")
    fig.suptitle(f"Change of the policy's mean step at every cell (steered − unsteered), "
                 f"steering at {hook}" + _flag(ds))  # fmt: skip
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


# --------------------------------------------------------------------------------------------
# The answer's figures: one per claim, each number with its 95 % interval
# --------------------------------------------------------------------------------------------


def _errorbars(ax: Any, x: np.ndarray, ivs: list[Interval], **kw: Any) -> None:
    """Points (or bars) at ``x`` with their 95 % intervals as error bars."""
    est = np.array([iv.estimate for iv in ivs])
    err = np.array([[iv.estimate - iv.lo for iv in ivs], [iv.hi - iv.estimate for iv in ivs]])
    ax.errorbar(x, est, yerr=np.nan_to_num(err), fmt=kw.pop("fmt", "o"), capsize=3, **kw)


def _band(ax: Any, x: np.ndarray, ivs: list[Interval], color: str, label: str) -> None:
    """A line through the estimates with its 95 % interval shaded."""
    ax.plot(x, [iv.estimate for iv in ivs], "-o", ms=4, color=color, label=label)
    ax.fill_between(x, [iv.lo for iv in ivs], [iv.hi for iv in ivs], color=color, alpha=0.2)


def _zero(ax: Any) -> None:
    ax.axhline(0.0, color="k", lw=0.7)
    ax.grid(alpha=0.3)


def _fig_asymmetry(ds: xr.Dataset) -> Figure:
    """E(|t|) of the target readout, and the signed effects r(t) − r(0) against −(r(−t) − r(0))."""
    seed, t_pos = bootstrap_seed(ds), _positive_ts(ds)
    fig = Figure(figsize=(12, 8), layout="constrained")
    axes = np.array(fig.subplots(2, len(SOFTMAX_READOUTS), squeeze=False))
    for j, readout in enumerate(SOFTMAX_READOUTS):
        for k, vec in enumerate(ds["vector"].values):
            r, c = target_readout(ds, str(vec), readout), f"C{k}"
            e = [bootstrap_mean(even_of_target(r, t), seed=seed) for t in t_pos]
            _band(axes[0, j], t_pos, e, c, f"{vec} vector")
            base = r.sel(t=0.0)
            up = [bootstrap_mean((r.sel(t=t) - base).values, seed=seed) for t in t_pos]
            down = [bootstrap_mean((base - r.sel(t=-t)).values, seed=seed) for t in t_pos]
            _band(axes[1, j], t_pos, up, c, f"{vec}: r(+t) − r(0)")
            axes[1, j].plot(t_pos, [iv.estimate for iv in down], "--s", ms=4, color=c,
                            label=f"{vec}: r(0) − r(−t)")  # fmt: skip
            axes[1, j].fill_between(t_pos, [iv.lo for iv in down], [iv.hi for iv in down],
                                    color=c, alpha=0.1, hatch="//")  # fmt: skip
        name = "P(toward target)" if readout == "p" else "log-odds of P(toward target)"
        axes[0, j].set_title(f"even part E(t) = r(t) + r(−t) − 2r(0), r = {name}", fontsize=9)
        axes[1, j].set_title(f"effect of +t and mirrored effect of −t ({name}); equal if linear",
                             fontsize=9)  # fmt: skip
        for ax in axes[:, j]:
            _zero(ax)
            ax.set_xlabel("|t|")
            ax.legend(fontsize=7)
    fig.suptitle(f"Add/subtract asymmetry at the decision square: mean over {ds.sizes['maze']} "
                 "mazes, 95 % bootstrap bands" + _flag(ds))  # fmt: skip
    return fig


def _positive_ts(ds: xr.Dataset) -> np.ndarray:
    """The t > 0 of the grid whose −t and 0 are on it too."""
    ts = set(ds["t"].values.tolist())
    return np.array(sorted(t for t in ts if t > 0 and -t in ts and 0.0 in ts))


def _flag(ds: xr.Dataset) -> str:
    return "  [UNTRAINED AGENT]" if int(ds.attrs.get("untrained", 0)) else ""


def _fig_cuts(ds: xr.Dataset) -> Figure:
    """E(t≈1) with the network cut at each cut, symmetrised and linearised, beside the exact E."""
    seed, t = bootstrap_seed(ds), t_loc_one(ds)
    cuts = [str(c) for c in ds["cut"].values]
    x = np.arange(len(cuts))
    vectors = [str(v) for v in ds["vector"].values]
    fig = Figure(figsize=(5 * len(READOUTS), 4.2 * len(vectors)), layout="constrained")
    axes = np.array(fig.subplots(len(vectors), len(READOUTS), squeeze=False))
    for i, vec in enumerate(vectors):
        for j, readout in enumerate(READOUTS):
            ax = axes[i, j]
            for k, variant in enumerate(("symmetrize", "linearize")):
                scan = cut_intervals(ds, vec, variant, readout, t, seed)
                _band(ax, x, [iv for _, iv in scan], f"C{k}", f"cut and {variant}")
            exact = bootstrap_mean(
                loc_values(ds, "loc_even", vec, t, control="vector", readout=readout), seed=seed
            )
            ax.axhspan(exact.lo, exact.hi, color="grey", alpha=0.25, label="exact network")
            _zero(ax)
            ax.set_xticks(x, [_short(c) for c in cuts], rotation=30, ha="right", fontsize=7)
            ax.set_title(f"{vec} vector, readout {readout}: E({t:g}) with the network cut",
                         fontsize=9)  # fmt: skip
            ax.legend(fontsize=7)
    fig.suptitle(
        f"Where the asymmetry is created: the first cut from which every band of "
        f"{CUT_READOUT} holds 0 (the margin is the log-odds linearised in the logits; "
        f"P and log-odds keep the softmax's own even part)" + _flag(ds),
        fontsize=10,
    )
    return fig


def _fig_softmax(ds: xr.Dataset) -> Figure:
    """Exact E against E with the logits symmetrised (the softmax-only test), per readout."""
    seed, t = bootstrap_seed(ds), t_loc_one(ds)
    vectors = [str(v) for v in ds["vector"].values]
    fig = Figure(figsize=(4.5 * len(READOUTS), 4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(READOUTS)))
    x = np.arange(len(vectors))
    for ax, readout in zip(axes, READOUTS):
        for k, (label, name, sel) in enumerate([
            ("exact network", "loc_even", dict(control="vector")),
            ("logits symmetrised (softmax only)", "loc_even_cut",
             dict(variant="symmetrize", cut=LOGITS)),
        ]):  # fmt: skip
            ivs = [
                bootstrap_mean(loc_values(ds, name, v, t, readout=readout, **sel), seed=seed)
                for v in vectors
            ]
            _errorbars(ax, x + (k - 0.5) * 0.3, ivs, color=f"C{k}", label=label, fmt="s")
        _zero(ax)
        ax.set_xticks(x, [f"{v} vector" for v in vectors])
        ax.set_title(f"E({t:g}) of readout {readout}", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Softmax-only test: does a logit response without even part explain E?"
                 + _flag(ds))  # fmt: skip
    return fig


def _fig_layers(ds: xr.Dataset) -> Figure:
    """E with one layer frozen (knock-out) and with only one layer free (knock-in), per layer."""
    seed, t = bootstrap_seed(ds), t_loc_one(ds)
    layers = [str(x) for x in ds["frozen_layer"].values]
    vectors = [str(v) for v in ds["vector"].values]
    x = np.arange(len(layers))
    fig = Figure(figsize=(6 * len(vectors), 4.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(vectors)))
    for ax, vec in zip(axes, vectors):
        for k, (name, label) in enumerate([
            ("loc_even_knockout", "knock-out: only this layer frozen"),
            ("loc_even_knockin", "knock-in: only this layer free"),
        ]):  # fmt: skip
            ivs = [
                bootstrap_mean(
                    loc_values(ds, name, vec, t, frozen_layer=layer, readout=PRIMARY), seed=seed
                )
                for layer in layers
            ]
            _errorbars(ax, x + (k - 0.5) * 0.3, ivs, color=f"C{k}", label=label, fmt="s")
        exact = bootstrap_mean(
            loc_values(ds, "loc_even", vec, t, control="vector", readout=PRIMARY), seed=seed
        )
        ax.axhspan(exact.lo, exact.hi, color="grey", alpha=0.25, label="exact network")
        _zero(ax)
        ax.set_xticks(x, [_short(s) for s in layers], rotation=30, ha="right", fontsize=7)
        ax.set_title(f"{vec} vector: E({t:g}) of the target log-odds", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Which layers carry the asymmetry: relu / maxpool patterns frozen at t = 0"
                 + _flag(ds))  # fmt: skip
    return fig


def _fig_kinks(ds: xr.Dataset) -> Figure:
    """The exact even part per layer from the kinks of the line, on the walked mazes."""
    seed, t = bootstrap_seed(ds), t_loc_one(ds)
    layers = [str(x) for x in ds["frozen_layer"].values]
    vectors = [str(v) for v in ds["vector"].values]
    fig = Figure(figsize=(6 * len(vectors), 4.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(vectors)))
    for ax, vec in zip(axes, vectors):
        total = ds["kink_even_total"].sel(vector=vec, t_loc=t).values
        walked = np.isfinite(total)
        ivs = [
            bootstrap_mean(
                ds["kink_even"].sel(vector=vec, t_loc=t, frozen_layer=x).values[walked], seed=seed
            )
            for x in layers
        ]
        tot = bootstrap_mean(total, seed=seed)
        ax.bar(np.arange(len(layers)), [iv.estimate for iv in ivs], color="C2", alpha=0.6)
        _errorbars(ax, np.arange(len(layers)), ivs, color="k", fmt="none")
        ax.axhspan(tot.lo, tot.hi, color="grey", alpha=0.25, label=f"total {tot.estimate:+.3f}")
        _zero(ax)
        ax.set_xticks(np.arange(len(layers)), [_short(s) for s in layers], rotation=30,
                      ha="right", fontsize=7)  # fmt: skip
        ax.set_title(f"{vec} vector: {int(walked.sum())} walked mazes", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"Exact attribution: even part at t = {t:g} of the linearised log-odds readout "
                 "summed per layer from the kinks" + _flag(ds))  # fmt: skip
    return fig


def _fig_base_swap(ds: xr.Dataset) -> Figure:
    """E on the maze's own base against E on the paired base; the distances of a ± v."""
    seed, t = bootstrap_seed(ds), t_loc_one(ds)
    vectors = [str(v) for v in ds["vector"].values]
    x = np.arange(len(vectors))
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    ax_e, ax_d = fig.subplots(1, 2)
    if "loc_even" in ds and "base_swap" in ds["control"].values:
        for k, control in enumerate(("vector", "base_swap")):
            ivs = [
                bootstrap_mean(
                    loc_values(ds, "loc_even", v, t, control=control, readout=PRIMARY), seed=seed
                )
                for v in vectors
            ]
            label = "own base" if control == "vector" else "paired base (swapped)"
            _errorbars(ax_e, x + (k - 0.5) * 0.3, ivs, color=f"C{k}", label=label, fmt="s")
        ax_e.legend(fontsize=7)
    ax_e.set_title(f"E({t:g}) of the target log-odds", fontsize=9)
    if "base_swap_distance" in ds:
        for k, sign in enumerate(("+t", "-t")):
            ivs = [
                bootstrap_mean(ds["base_swap_distance"].sel(vector=v, sign=sign).values, seed=seed)
                for v in vectors
            ]
            _errorbars(ax_d, x + (k - 0.5) * 0.3, ivs, color=f"C{k + 2}", label=f"a {sign[0]} v",
                       fmt="s")  # fmt: skip
        ax_d.axhline(1.0, color="grey", ls="--", lw=0.8, label="as far as the base itself")
        ax_d.legend(fontsize=7)
    ax_d.set_title("‖a ± v − a_paired‖ / ‖a_paired − a‖ at the decision square", fontsize=9)
    for ax in (ax_e, ax_d):
        _zero(ax)
        ax.set_xticks(x, [f"{v} vector" for v in vectors])
    fig.suptitle("Base swap: does the asymmetry follow the base?" + _flag(ds))
    return fig


def _fig_controls(ds: xr.Dataset) -> Figure:
    """E for the maze's own vector and the controls side by side; rollout reach rates."""
    seed = bootstrap_seed(ds)
    vectors = [str(v) for v in ds["vector"].values]
    fig = Figure(figsize=(13, 4.5), layout="constrained")
    ax_e, ax_r = fig.subplots(1, 2)
    if "loc_even" in ds:
        t = t_loc_one(ds)
        controls = [c for c in ("vector", *CONTROLS) if c in ds["control"].values]
        x = np.arange(len(controls))
        for k, vec in enumerate(vectors):
            ivs = [
                bootstrap_mean(
                    loc_values(ds, "loc_even", vec, t, control=c, readout=PRIMARY), seed=seed
                )
                for c in controls
            ]
            _errorbars(ax_e, x + (k - 0.5) * 0.3, ivs, color=f"C{k}", label=f"{vec}", fmt="s")
        ax_e.set_xticks(x, ["own vector" if c == "vector" else c for c in controls])
        ax_e.set_title(f"E({t:g}) of the target log-odds", fontsize=9)
        ax_e.legend(fontsize=7)
    _rollout_rates(ds, ax_r)
    _zero(ax_e)
    fig.suptitle("Controls beside each maze's own vector, and rollouts" + _flag(ds))
    return fig


def _rollout_rates(ds: xr.Dataset, ax: Any) -> None:
    """Per vector: the rate of reaching its target vs t (Wilson 95 % intervals)."""
    for k, vec in enumerate([str(v) for v in ds["vector"].values]):
        name = "reached_cheese" if vec == "cheese" else "reached_top_right"
        reach = ds[name].sel(site="steering", vector=vec)
        ts, ivs = [], []
        for t in reach["t"].values:
            x = reach.sel(t=t).values
            x = x[np.isfinite(x)]
            if x.size:
                ts.append(float(t))
                ivs.append(wilson(int(x.sum()), int(x.size)))
        if ts:
            _errorbars(ax, np.array(ts), ivs, color=f"C{k}", fmt="-o",
                       label=f"{vec} vector: reach its target (n = {ivs[0].n})")  # fmt: skip
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("t")
    ax.set_title("rollouts: rate of reaching the vector's target (Wilson 95 %)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _fig_cut_rollouts(ds: xr.Dataset) -> Figure:
    """Reach rates at ±t with the network cut at the chosen cuts, beside the exact network's."""
    vectors = [str(v) for v in ds["vector"].values]
    targets = (("cheese", "reach cheese"), ("top_right", "reach top-right"))
    fig = Figure(figsize=(12, 4.2 * len(vectors)), layout="constrained")
    axes = np.array(fig.subplots(len(vectors), len(targets), squeeze=False))
    t = float(ds.attrs.get("loc_roll_t", t_loc_one(ds)))
    for i, vec in enumerate(vectors):
        rows = cut_rollout_rates(ds, vec)
        exact = exact_rollout_rates(ds, vec)
        labels = (["exact"] if exact is not None else []) + [
            f"{variant[:3]}@{_short(cut)}" for variant, cut, _ in rows
        ]
        per = ([exact] if exact is not None else []) + [r for _, _, r in rows]
        x = np.arange(len(labels))
        for j, (target, name) in enumerate(targets):
            ax = axes[i, j]
            for k, sign in enumerate(("+t", "-t")):
                ivs = [r[target, sign] for r in per]
                _errorbars(ax, x + (k - 0.5) * 0.25, ivs, color=f"C{k}", fmt="s",
                           label=f"t = {'+' if sign == '+t' else '−'}{t:g}")  # fmt: skip
            ax.set_xticks(x, labels, rotation=25, ha="right", fontsize=7)
            ax.set_ylim(-0.02, 1.02)
            n = max([iv.n for r in per for iv in r.values()], default=0)
            ax.set_title(f"{vec} vector: {name} (Wilson 95 %, n = {n} mazes)", fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle("Rollouts with the network cut where the scan locates the asymmetry"
                 + _flag(ds))  # fmt: skip
    return fig


def _fig_later(ds: xr.Dataset) -> Figure:
    """Matched |t| per later layer and pair position, and the cut scan at the latest that steers."""
    seed = bootstrap_seed(ds)
    vectors = [str(v) for v in ds["vector"].values]
    layers = [str(x) for x in ds["matched_layer"].values]
    fig = Figure(figsize=(13, 4.5), layout="constrained")
    ax_t, ax_s = fig.subplots(1, 2)
    x = np.arange(len(layers))
    for k, (vec, pos) in enumerate([(v, str(p)) for v in vectors
                                    for p in ds["pair_position"].values]):  # fmt: skip
        sel = dict(vector=vec, pair_position=pos)
        t = np.abs(ds["matched_t"].sel(**sel).values)
        ok = ds["still_steers"].sel(**sel).values == 1
        c, off = f"C{k}", (k - 1.5) * 0.12
        ax_t.plot(x + off, t, "o", mfc="none", color=c, label=f"{vec}, {pos} pairs")
        ax_t.plot((x + off)[ok], t[ok], "o", color=c)
    t_max = json.loads(ds.attrs.get("config", "{}")).get("later_max_t")
    if t_max:
        ax_t.axhline(t_max, color="grey", ls="--", lw=0.8, label=f"|t| searched up to {t_max:g}")
    ax_t.set_xticks(x, [_short(h) for h in layers], rotation=25, ha="right", fontsize=7)
    ax_t.set_ylabel("|matched t| (filled: still steers)")
    ax_t.set_title("coefficient matched to the steering layer's effect at the published t",
                   fontsize=9)  # fmt: skip
    ax_t.legend(fontsize=7)
    ax_t.grid(alpha=0.3)
    cuts = [str(c) for c in ds["later_cut"].values]
    for k, vec in enumerate(vectors):
        found = later_steers(ds, vec)
        if found is None or not cuts:
            continue
        e = ds["later_even_cut"].sel(vector=vec, variant="symmetrize", readout=CUT_READOUT)
        xs = [i for i, c in enumerate(cuts) if np.isfinite(e.sel(later_cut=c).values).any()]
        ivs = [bootstrap_mean(e.sel(later_cut=cuts[i]).values, seed=seed) for i in xs]
        _band(ax_s, np.array(xs, dtype=float), ivs, f"C{k}",
              f"{vec}: at {_short(found[0])}, |t| = {found[2]:.3g}")  # fmt: skip
    ax_s.set_xticks(np.arange(len(cuts)), [_short(c) for c in cuts], rotation=25, ha="right",
                    fontsize=7)  # fmt: skip
    ax_s.set_title("E of the margin (target log-odds linearised in the logits), symmetrised at "
                   "each cut (latest steering layer)", fontsize=9)  # fmt: skip
    if ax_s.lines:
        ax_s.legend(fontsize=7)
    else:
        ax_s.text(0.5, 0.5, "no later layer still steers", ha="center", transform=ax_s.transAxes)
    _zero(ax_s)
    fig.suptitle("Later layers at a common effect size" + _flag(ds))
    return fig


#: The answer's figures: file stem, drawing function, the variables it needs.
ANSWER_FIGURES: tuple[tuple[str, Callable[[xr.Dataset], Figure], tuple[str, ...]], ...] = (
    ("answer_asymmetry", _fig_asymmetry, ()),
    ("answer_cuts", _fig_cuts, ("loc_even_cut", "loc_even")),
    ("answer_softmax", _fig_softmax, ("loc_even_cut", "loc_even")),
    ("answer_layers", _fig_layers, ("loc_even_knockout", "loc_even_knockin", "loc_even")),
    ("answer_kinks", _fig_kinks, ("kink_even", "kink_even_total")),
    ("answer_base_swap", _fig_base_swap, ("base_swap_distance",)),
    ("answer_controls", _fig_controls, ()),
    (
        "answer_cut_rollouts",
        _fig_cut_rollouts,
        ("loc_roll_reached_cheese", "loc_roll_reached_top_right", "loc_roll_cut_chosen"),
    ),
    (
        "answer_later",
        _fig_later,
        ("matched_t", "still_steers", "later_even_cut", "later_scan_layer"),
    ),
)


def answer_figure_names(ds: xr.Dataset) -> list[str]:
    """File names of the answer's figures that ``ds`` has the variables for, in claim order."""
    return [f"{stem}.png" for stem, _, needs in ANSWER_FIGURES if all(v in ds for v in needs)]


def draw_answer_figures(ds: xr.Dataset, run_dir: str | os.PathLike[str]) -> list[Path]:
    """Draw the answer's figures (:func:`answer_figure_names`) into ``run_dir/figures``."""
    out, names = Path(run_dir) / "figures", answer_figure_names(ds)
    return [
        _save(draw(ds), out / f"{stem}.png")
        for stem, draw, _ in ANSWER_FIGURES
        if f"{stem}.png" in names
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
    paths = draw_answer_figures(ds, run_dir)
    paths.append(_save(_vector_fields(ds), out / "vector_fields.png"))
    per_site = {
        "norms": _norms,
        "residual_heatmap": _heatmap,
        "asymmetry": _asymmetry,
        "flips_breakpoints": _flips_breakpoints,
        "behaviour": _behaviour,
    }
    for site in figure_sites(ds):
        for stem, draw in per_site.items():
            paths.append(_save(draw(ds, site), out / f"{stem}_{site}.png"))
    paths.append(_save(_later_layers(ds), out / "later_layers.png"))
    return paths
