"""The answer's figures: one per claim of :mod:`hookdiff.study.answer`, each number with its 95 %
interval, drawn from the saved dataset alone.

The add/subtract asymmetry, the cut scan, the softmax-only test, knock-out / knock-in per layer,
the exact kink attribution, the base swap, the controls and rollouts, the rollouts with the
network cut, the later layers at a matched effect. Intervals are those of the claims
(:mod:`hookdiff.study.select` reads them; :func:`hookdiff.stats.rate` for rates).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from hookdiff.stats import bootstrap_mean, rate
from hookdiff.study.claims_localise import LOGITS
from hookdiff.study.figures.common import FigureSpec, band, errorbars, flag, short, zero
from hookdiff.study.schema import (
    CONTROLS,
    CUT_READOUT,
    PRIMARY,
    READOUTS,
    SOFTMAX_READOUTS,
    VECTOR_SOURCES,
)
from hookdiff.study.select import (
    bootstrap_seed,
    cut_intervals,
    cut_rollout_rates,
    even_of_target,
    exact_rollout_rates,
    later_steers,
    loc_values,
    reach_targets,
    rollout_t,
    t_loc_one,
    target_readout,
)
from hookdiff.study.targets import VECTOR_SPECS

__all__ = ["ANSWER_FIGURES"]


def _fig_asymmetry(ds: xr.Dataset) -> Figure:
    """E(|t|) of the target readout, and the signed effects r(t) − r(0) against −(r(−t) − r(0))."""
    seed, t_pos = bootstrap_seed(ds), _positive_ts(ds)
    fig = Figure(figsize=(12, 8), layout="constrained")
    axes = np.array(fig.subplots(2, len(SOFTMAX_READOUTS), squeeze=False))
    for j, readout in enumerate(SOFTMAX_READOUTS):
        for k, vec in enumerate(ds["vector"].values):
            r, c = target_readout(ds, str(vec), readout), f"C{k}"
            e = [bootstrap_mean(even_of_target(r, t), seed=seed) for t in t_pos]
            band(axes[0, j], t_pos, e, c, f"{vec} vector")
            base = r.sel(t=0.0)
            up = [bootstrap_mean((r.sel(t=t) - base).values, seed=seed) for t in t_pos]
            down = [bootstrap_mean((base - r.sel(t=-t)).values, seed=seed) for t in t_pos]
            band(axes[1, j], t_pos, up, c, f"{vec}: r(+t) − r(0)")
            axes[1, j].plot(
                t_pos,
                [iv.estimate for iv in down],
                "--s",
                ms=4,
                color=c,
                label=f"{vec}: r(0) − r(−t)",
            )
            axes[1, j].fill_between(
                t_pos,
                [iv.lo for iv in down],
                [iv.hi for iv in down],
                color=c,
                alpha=0.1,
                hatch="//",
            )
        name = "P(toward target)" if readout == "p" else "log-odds of P(toward target)"
        axes[0, j].set_title(f"even part E(t) = r(t) + r(−t) − 2r(0), r = {name}", fontsize=9)
        axes[1, j].set_title(
            f"effect of +t and mirrored effect of −t ({name}); equal if linear", fontsize=9
        )
        for ax in axes[:, j]:
            zero(ax)
            ax.set_xlabel("|t|")
            ax.legend(fontsize=7)
    fig.suptitle(
        f"Add/subtract asymmetry at the decision square: mean over {ds.sizes['maze']} "
        "mazes, 95 % bootstrap bands" + flag(ds)
    )
    return fig


def _positive_ts(ds: xr.Dataset) -> np.ndarray:
    """The t > 0 of the grid whose −t and 0 are on it too."""
    ts = set(ds["t"].values.tolist())
    return np.array(sorted(t for t in ts if t > 0 and -t in ts and 0.0 in ts))


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
                band(ax, x, [iv for _, iv in scan], f"C{k}", f"cut and {variant}")
            exact = bootstrap_mean(
                loc_values(ds, "loc_even", vec, t, control="vector", readout=readout), seed=seed
            )
            ax.axhspan(exact.lo, exact.hi, color="grey", alpha=0.25, label="exact network")
            zero(ax)
            ax.set_xticks(x, [short(c) for c in cuts], rotation=30, ha="right", fontsize=7)
            ax.set_title(
                f"{vec} vector, readout {readout}: E({t:g}) with the network cut", fontsize=9
            )
            ax.legend(fontsize=7)
    fig.suptitle(
        f"Where the asymmetry is created: the first cut from which every band of "
        f"{CUT_READOUT} holds 0 (the margin is the log-odds linearised in the logits; "
        f"P and log-odds keep the softmax's own even part)" + flag(ds),
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
        for k, (label, name, sel) in enumerate(
            [
                ("exact network", "loc_even", dict(control="vector")),
                (
                    "logits symmetrised (softmax only)",
                    "loc_even_cut",
                    dict(variant="symmetrize", cut=LOGITS),
                ),
            ]
        ):
            ivs = [
                bootstrap_mean(loc_values(ds, name, v, t, readout=readout, **sel), seed=seed)
                for v in vectors
            ]
            errorbars(ax, x + (k - 0.5) * 0.3, ivs, color=f"C{k}", label=label, fmt="s")
        zero(ax)
        ax.set_xticks(x, [f"{v} vector" for v in vectors])
        ax.set_title(f"E({t:g}) of readout {readout}", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Softmax-only test: does a logit response without even part explain E?" + flag(ds))
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
        for k, (name, label) in enumerate(
            [
                ("loc_even_knockout", "knock-out: only this layer frozen"),
                ("loc_even_knockin", "knock-in: only this layer free"),
            ]
        ):
            ivs = [
                bootstrap_mean(
                    loc_values(ds, name, vec, t, frozen_layer=layer, readout=PRIMARY), seed=seed
                )
                for layer in layers
            ]
            errorbars(ax, x + (k - 0.5) * 0.3, ivs, color=f"C{k}", label=label, fmt="s")
        exact = bootstrap_mean(
            loc_values(ds, "loc_even", vec, t, control="vector", readout=PRIMARY), seed=seed
        )
        ax.axhspan(exact.lo, exact.hi, color="grey", alpha=0.25, label="exact network")
        zero(ax)
        ax.set_xticks(x, [short(s) for s in layers], rotation=30, ha="right", fontsize=7)
        ax.set_title(f"{vec} vector: E({t:g}) of the target log-odds", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(
        "Which layers carry the asymmetry: relu / maxpool patterns frozen at t = 0" + flag(ds)
    )
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
        errorbars(ax, np.arange(len(layers)), ivs, color="k", fmt="none")
        ax.axhspan(tot.lo, tot.hi, color="grey", alpha=0.25, label=f"total {tot.estimate:+.3f}")
        zero(ax)
        ax.set_xticks(
            np.arange(len(layers)), [short(s) for s in layers], rotation=30, ha="right", fontsize=7
        )
        ax.set_title(f"{vec} vector: {int(walked.sum())} walked mazes", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"Exact attribution: even part at t = {t:g} of the linearised log-odds readout "
        "summed per layer from the kinks" + flag(ds)
    )
    return fig


def _fig_base_swap(ds: xr.Dataset) -> Figure:
    """Per vector source, E on the maze's own base against E on the paired base; the distances
    of a ± v from the paired state."""
    seed, t = bootstrap_seed(ds), t_loc_one(ds)
    vectors = [str(v) for v in ds["vector"].values]
    x = np.arange(len(vectors))
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    ax_e, ax_d = fig.subplots(1, 2)
    have = set(ds["control"].values.tolist()) if "loc_even" in ds else set()
    pairs = [(src, lines) for src, lines in VECTOR_SOURCES.items() if set(lines) <= have]
    width = 0.8 / max(1, 2 * len(pairs))
    for k, (source, lines) in enumerate((s, ln) for s, two in pairs for ln in two):
        ivs = [
            bootstrap_mean(
                loc_values(ds, "loc_even", v, t, control=lines, readout=PRIMARY), seed=seed
            )
            for v in vectors
        ]
        base = "own base" if lines == VECTOR_SOURCES[source][0] else "paired base"
        offset = (k - (2 * len(pairs) - 1) / 2) * width
        errorbars(ax_e, x + offset, ivs, color=f"C{k}", label=f"{source}, {base}", fmt="s")
    if pairs:
        ax_e.legend(fontsize=7)
    ax_e.set_title(f"E({t:g}) of the target log-odds, per vector source", fontsize=9)
    if "base_swap_distance" in ds:
        dist = ds["base_swap_distance"]
        cells = [(str(src), sign) for src in dist["source"].values for sign in ("+t", "-t")]
        width = 0.8 / len(cells)
        for k, (source, sign) in enumerate(cells):
            ivs = [
                bootstrap_mean(dist.sel(source=source, vector=v, sign=sign).values, seed=seed)
                for v in vectors
            ]
            offset = (k - (len(cells) - 1) / 2) * width
            label = f"{source}: a {sign[0]} v"
            errorbars(ax_d, x + offset, ivs, color=f"C{k}", label=label, fmt="s")
        ax_d.axhline(1.0, color="grey", ls="--", lw=0.8, label="as far as the base itself")
        ax_d.legend(fontsize=7)
    ax_d.set_title("‖a ± v − a_paired‖ / ‖a_paired − a‖ at the decision square", fontsize=9)
    for ax in (ax_e, ax_d):
        zero(ax)
        ax.set_xticks(x, [f"{v} vector" for v in vectors])
    fig.suptitle("Base swap: does the asymmetry follow the base?" + flag(ds))
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
            errorbars(ax_e, x + (k - 0.5) * 0.3, ivs, color=f"C{k}", label=f"{vec}", fmt="s")
        ax_e.set_xticks(x, ["own vector" if c == "vector" else c for c in controls])
        ax_e.set_title(f"E({t:g}) of the target log-odds", fontsize=9)
        ax_e.legend(fontsize=7)
    _rollout_rates(ds, ax_r)
    zero(ax_e)
    fig.suptitle("Controls beside each maze's own vector, and rollouts" + flag(ds))
    return fig


def _rollout_rates(ds: xr.Dataset, ax: Any) -> None:
    """Per vector: the rate of reaching its target vs t (Wilson 95 % intervals)."""
    for k, vec in enumerate([str(v) for v in ds["vector"].values]):
        if VECTOR_SPECS[vec].reach_var not in ds:
            continue
        reach = ds[VECTOR_SPECS[vec].reach_var].sel(site="steering", vector=vec)
        ts, ivs = [], []
        for t in reach["t"].values:
            iv = rate(reach.sel(t=t).values)
            if iv.n:
                ts.append(float(t))
                ivs.append(iv)
        if ts:
            errorbars(
                ax,
                np.array(ts),
                ivs,
                color=f"C{k}",
                fmt="-o",
                label=f"{vec} vector: reach its target (n = {ivs[0].n})",
            )
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("t")
    ax.set_title("rollouts: rate of reaching the vector's target (Wilson 95 %)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _fig_cut_rollouts(ds: xr.Dataset) -> Figure:
    """Reach rates at ±t with the network cut at the chosen cuts, beside the exact network's."""
    vectors = [str(v) for v in ds["vector"].values]
    targets = [(o, f"reach {o.replace('_', '-')}") for o in reach_targets(ds, loc=True)]
    fig = Figure(figsize=(12, 4.2 * len(vectors)), layout="constrained")
    axes = np.array(fig.subplots(len(vectors), len(targets), squeeze=False))
    t = rollout_t(ds)
    for i, vec in enumerate(vectors):
        rows = cut_rollout_rates(ds, vec)
        exact = exact_rollout_rates(ds, vec)
        labels = (["exact"] if exact is not None else []) + [
            f"{variant[:3]}@{short(cut)}" for variant, cut, _ in rows
        ]
        per = ([exact] if exact is not None else []) + [r for _, _, r in rows]
        x = np.arange(len(labels))
        for j, (target, name) in enumerate(targets):
            ax = axes[i, j]
            for k, sign in enumerate(("+t", "-t")):
                ivs = [r[target, sign] for r in per]
                errorbars(
                    ax,
                    x + (k - 0.5) * 0.25,
                    ivs,
                    color=f"C{k}",
                    fmt="s",
                    label=f"t = {'+' if sign == '+t' else '−'}{t:g}",
                )
            ax.set_xticks(x, labels, rotation=25, ha="right", fontsize=7)
            ax.set_ylim(-0.02, 1.02)
            n = max([iv.n for r in per for iv in r.values()], default=0)
            ax.set_title(f"{vec} vector: {name} (Wilson 95 %, n = {n} mazes)", fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle("Rollouts with the network cut where the scan locates the asymmetry" + flag(ds))
    return fig


def _fig_later(ds: xr.Dataset) -> Figure:
    """Matched |t| per later layer and pair position, and the cut scan at the latest that steers."""
    seed = bootstrap_seed(ds)
    vectors = [str(v) for v in ds["vector"].values]
    layers = [str(x) for x in ds["matched_layer"].values]
    fig = Figure(figsize=(13, 4.5), layout="constrained")
    ax_t, ax_s = fig.subplots(1, 2)
    x = np.arange(len(layers))
    for k, (vec, pos) in enumerate(
        [(v, str(p)) for v in vectors for p in ds["pair_position"].values]
    ):
        sel = dict(vector=vec, pair_position=pos)
        t = np.abs(ds["matched_t"].sel(**sel).values)
        ok = ds["still_steers"].sel(**sel).values == 1
        c, off = f"C{k}", (k - 1.5) * 0.12
        ax_t.plot(x + off, t, "o", mfc="none", color=c, label=f"{vec}, {pos} pairs")
        ax_t.plot((x + off)[ok], t[ok], "o", color=c)
    t_max = json.loads(ds.attrs.get("config", "{}")).get("later_max_t")
    if t_max:
        ax_t.axhline(t_max, color="grey", ls="--", lw=0.8, label=f"|t| searched up to {t_max:g}")
    ax_t.set_xticks(x, [short(h) for h in layers], rotation=25, ha="right", fontsize=7)
    ax_t.set_ylabel("|matched t| (filled: still steers)")
    ax_t.set_title(
        "coefficient matched to the steering layer's effect at the published t", fontsize=9
    )
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
        band(
            ax_s,
            np.array(xs, dtype=float),
            ivs,
            f"C{k}",
            f"{vec}: at {short(found[0])}, |t| = {found[2]:.3g}",
        )
    ax_s.set_xticks(
        np.arange(len(cuts)), [short(c) for c in cuts], rotation=25, ha="right", fontsize=7
    )
    ax_s.set_title(
        "E of the margin (target log-odds linearised in the logits), symmetrised at "
        "each cut (latest steering layer)",
        fontsize=9,
    )
    if ax_s.lines:
        ax_s.legend(fontsize=7)
    else:
        ax_s.text(0.5, 0.5, "no later layer still steers", ha="center", transform=ax_s.transAxes)
    zero(ax_s)
    fig.suptitle("Later layers at a common effect size" + flag(ds))
    return fig


# fmt: skip (below): one row per entry reads as a table
#: The answer's figures, in claim order.
ANSWER_FIGURES = (
    FigureSpec("answer_asymmetry", _fig_asymmetry, (),
               "The add/subtract asymmetry: E(|t|) and both signed effects, per readout."),
    FigureSpec("answer_cuts", _fig_cuts, ("loc_even_cut", "loc_even"),
               "Where it is created: E with the network cut (symmetrised, linearised) there; "
               "the creation cut is read on the margin."),
    FigureSpec("answer_softmax", _fig_softmax, ("loc_even_cut", "loc_even"),
               "The softmax-only test: exact E beside E with the logits symmetrised."),
    FigureSpec("answer_layers", _fig_layers,
               ("loc_even_knockout", "loc_even_knockin", "loc_even"),
               "Which layers carry it: knock-out and knock-in of each relu / maxpool layer."),
    FigureSpec("answer_kinks", _fig_kinks, ("kink_even", "kink_even_total"),
               "Exact attribution: the even part per layer from the kinks of the line."),
    FigureSpec("answer_base_swap", _fig_base_swap, ("base_swap_distance",),
               "Base swap: E on the paired base, and the distances of a ± v."),
    FigureSpec("answer_controls", _fig_controls, (),
               "Controls side by side, and rollout reach rates (Wilson 95 %)."),
    FigureSpec("answer_cut_rollouts", _fig_cut_rollouts, ("loc_roll_cut_chosen",),
               "Rollouts with the network cut at the cuts that matter (Wilson 95 %)."),
    FigureSpec("answer_later", _fig_later,
               ("matched_t", "still_steers", "later_even_cut", "later_scan_layer"),
               "Later layers: matched coefficients, and the cut scan at the latest that steers."),
)  # fmt: skip
