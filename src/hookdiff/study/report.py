"""The study's report: headline numbers from the saved dataset, as Markdown and self-contained HTML.

:func:`summarize` reduces the study Dataset to the numbers that answer the seed question — where
along t and at which depth diff(t) leaves the linear regime (linear radius, residual, first exact
breakpoint) and where the behavioural effects of +t and −t diverge — per site and vector.
:func:`write_report` lays them out with the figures: ``report.md`` (figures linked) and
``report.html`` (figures embedded as base64 PNGs, so the one file can be mailed). Both read only
the dataset and the figure files, so ``hookdiff plot RUN_DIR`` rebuilds them.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from hookdiff._io import atomic_write
from hookdiff.study.figures import OUTPUT_DEPTH

__all__ = ["summarize", "write_report"]

_POSITION = "decision_square"
_TARGET = {"cheese": "p_toward_cheese", "top_right": "p_toward_top_right"}


def _median_inf(x: np.ndarray) -> float:
    """Median where NaN means "beyond the t grid" (+inf); inf when most are beyond."""
    x = np.where(np.isfinite(x), x, np.inf)
    return float(np.median(x)) if x.size else math.nan


def _count(n: int | None, noun: str) -> str:
    """``"1 walked maze"``, ``"8 walked mazes"``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _num(x: float | None) -> float | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return float(x)


def _at_t(da: xr.DataArray, t: float) -> float | None:
    if t not in da["t"].values:
        return None
    return _num(float(da.sel(t=t).median("maze", skipna=True)))


def summarize(ds: xr.Dataset) -> dict[str, Any]:
    """The headline numbers of a study, per site and vector (JSON-able; inf as "inf").

    For each site and vector (mouse on the decision square): the linear radius at the logits (the
    median over mazes of the smallest |t| whose relative residual exceeds the threshold, on each
    side; ``"inf"`` where the response stays linear over the whole grid), the shallowest depth
    whose median radius lies on the grid, residuals at t = ±1, the first exact breakpoints, the
    asymmetry at |t| = 1, and the behaviour: the mean change of the vector's target probability
    at the decision square for +t and −t, and the smallest |t| where their sizes differ by more
    than the config's ``behaviour_gap``.
    """
    config = json.loads(ds.attrs["config"])
    gap = float(config.get("behaviour_gap", 0.05))
    tmax = float(np.max(np.abs(ds["t"].values)))
    out: dict[str, Any] = {
        "agent": ds.attrs.get("agent", ""),
        "untrained": bool(int(ds.attrs.get("untrained", 0))),
        "threshold": float(ds.attrs["threshold"]),
        "behaviour_gap": gap,
        "t_max": tmax,
        "sites": {},
    }
    for site in [str(s) for s in ds["site"].values]:
        hook = str(ds["site_hook"].sel(site=site).values)
        per_vec = {}
        for vec in [str(v) for v in ds["vector"].values]:
            sel = dict(site=site, vector=vec, position=_POSITION)
            base = ds["base_norm"].sel(**sel).isel(maze=0).values
            depths = [str(d) for d, ok in zip(ds["depth"].values, np.isfinite(base)) if ok]
            rp = ds["linear_radius_pos"].sel(**sel)
            rn = ds["linear_radius_neg"].sel(**sel)
            radius = {
                d: (_median_inf(rp.sel(depth=d).values), _median_inf(rn.sel(depth=d).values))
                for d in depths
            }
            first_nl = next((d for d in depths if min(radius[d]) < math.inf), None)
            smallest = min(depths, key=lambda d: min(radius[d])) if depths else None
            res_out = ds["residual"].sel(**sel, depth=OUTPUT_DEPTH)
            entry: dict[str, Any] = {
                "hook": hook,
                "output_depth": OUTPUT_DEPTH,
                "radius_logits_pos": radius[OUTPUT_DEPTH][0],
                "radius_logits_neg": radius[OUTPUT_DEPTH][1],
                "first_nonlinear_depth": first_nl,
                "first_nonlinear_depth_n": depths.index(first_nl) + 1 if first_nl else None,
                "first_nonlinear_radius": min(radius[first_nl]) if first_nl else math.inf,
                "smallest_radius_depth": smallest,
                "smallest_radius": min(radius[smallest]) if smallest else math.inf,
                "residual_logits_t+1": _at_t(res_out, 1.0),
                "residual_logits_t-1": _at_t(res_out, -1.0),
                "n_depths": len(depths),
            }
            if "first_break_pos" in ds:
                # only the walked mazes (breakpoint_mazes) have breakpoint figures
                pieces = ds["n_pieces"].sel(**sel, depth=OUTPUT_DEPTH).values
                walked = np.isfinite(pieces)
                fb_p = ds["first_break_pos"].sel(**sel, depth=OUTPUT_DEPTH).values[walked]
                fb_n = ds["first_break_neg"].sel(**sel, depth=OUTPUT_DEPTH).values[walked]
                entry["first_break_logits_pos"] = _median_inf(fb_p)
                entry["first_break_logits_neg"] = _median_inf(fb_n)
                entry["n_pieces_logits"] = (
                    _num(float(np.median(pieces[walked]))) if walked.any() else None
                )
                entry["breakpoint_mazes"] = int(walked.sum())
            if 1.0 in ds["t_pos"].values:
                a = ds["asymmetry"].sel(**sel, depth=OUTPUT_DEPTH, t_pos=1.0)
                entry["asymmetry_logits_t1"] = _num(float(a.median("maze", skipna=True)))
            # behaviour: change of the target probability at the decision square
            target = ds[_TARGET[vec]].sel(site=site, vector=vec)
            p0 = target.sel(t=0.0) if 0.0 in ds["t"].values else None
            effects = {}
            diverge = math.inf
            for s in [float(x) for x in ds["t_pos"].values]:
                if p0 is None or -s not in ds["t"].values:
                    continue
                e_plus = float((target.sel(t=s) - p0).mean("maze"))
                e_minus = float((target.sel(t=-s) - p0).mean("maze"))
                effects[f"{s:g}"] = {"plus": e_plus, "minus": e_minus}
                if abs(abs(e_plus) - abs(e_minus)) > gap and s < diverge:
                    diverge = s
            entry["target"] = _TARGET[vec]
            entry["target_baseline"] = _num(float(p0.mean("maze"))) if p0 is not None else None
            entry["effects"] = effects
            entry["behaviour_diverges_at"] = diverge
            rates = {}
            for t in (-1.0, 0.0, 1.0):
                if t in ds["t"].values:
                    rates[f"{t:g}"] = {
                        k: _num(float(ds[k].sel(site=site, vector=vec, t=t).mean(skipna=True)))
                        for k in ("reached_cheese", "reached_top_right", "timed_out")
                    }
            entry["reach_rates"] = rates
            per_vec[vec] = entry
        out["sites"][site] = per_vec
    out["candidates"] = {
        str(c): {
            "effect": {
                str(v): float(ds["candidate_effect"].sel(candidate=c, vector=v))
                for v in ds["vector"].values
            },
            "score": float(ds["candidate_score"].sel(candidate=c)),
        }
        for c in ds["candidate"].values
    }
    out["later_hook"] = ds.attrs.get("later_hook", "")
    return _jsonable(out)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    return x


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    if x == "inf" or (isinstance(x, float) and math.isinf(x)):
        return "beyond the grid"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _radius(x: Any, tmax: float) -> str:
    return f"> {tmax:g} (linear on the whole grid)" if x == "inf" else f"{x:g}"


def _answer(summary: dict[str, Any], site: str, vec: str) -> str:
    """The seed question answered in words and numbers for one site and vector."""
    e = summary["sites"][site][vec]
    tmax = summary["t_max"]
    thr = summary["threshold"]
    depth = e["first_nonlinear_depth"]
    parts = []
    if depth is None:
        parts.append(
            f"diff(t) stays within a relative residual of {thr:g} of its linear prediction at "
            f"every depth for |t| ≤ {tmax:g} (median over mazes)."
        )
    else:
        parts.append(
            f"The response first leaves the linear regime (relative residual > {thr:g}) at depth "
            f"n = {e['first_nonlinear_depth_n']} (`{depth}`), from |t| = "
            f"{_fmt(e['first_nonlinear_radius'])}; the earliest departure anywhere is at "
            f"`{e['smallest_radius_depth']}` from |t| = {_fmt(e['smallest_radius'])}."
        )
    parts.append(
        f"At the logits the linear radius is {_radius(e['radius_logits_pos'], tmax)} for +t and "
        f"{_radius(e['radius_logits_neg'], tmax)} for −t; the residual there is "
        f"{_fmt(e['residual_logits_t+1'])} at t = +1 and {_fmt(e['residual_logits_t-1'])} at "
        f"t = −1."
    )
    if "first_break_logits_pos" in e:
        parts.append(
            f"The first exact breakpoint of the logits lies at t = +{_fmt(e['first_break_logits_pos'], 3)} "
            f"and t = −{_fmt(e['first_break_logits_neg'], 3)} (median over the "
            f"{_count(e.get('breakpoint_mazes'), 'walked maze')}; "
            f"{_fmt(e.get('n_pieces_logits'), 0)} linear pieces on [−{tmax:g}, {tmax:g}])."
        )
    one = e["effects"].get("1")
    if one is not None:
        parts.append(
            f"Behaviour: {e['target']} at the decision square is {_fmt(e['target_baseline'])} "
            f"unsteered and changes by {one['plus']:+.3f} at t = +1 and {one['minus']:+.3f} at "
            f"t = −1."
        )
    d = e["behaviour_diverges_at"]
    r_out = min(
        math.inf if e["radius_logits_pos"] == "inf" else e["radius_logits_pos"],
        math.inf if e["radius_logits_neg"] == "inf" else e["radius_logits_neg"],
    )
    if d == "inf":
        parts.append(
            f"The effects of +t and −t never differ in size by more than "
            f"{summary['behaviour_gap']:g} on the grid."
        )
    else:
        parts.append(
            f"The effects of +t and −t differ in size by more than {summary['behaviour_gap']:g} "
            f"from |t| = {d:g}."
        )
    if d != "inf" and r_out < math.inf:
        rel = "before" if r_out < d else ("where" if r_out == d else "after")
        parts.append(
            f"So the logits leave the linear regime at |t| = {r_out:g}, {rel} the behavioural "
            f"effects of adding and subtracting diverge (|t| = {d:g})."
        )
    elif d != "inf":
        parts.append(
            f"Add/subtract behaviour diverges (|t| = {d:g}) while the logits remain within the "
            f"residual threshold: the divergence comes from the softmax and the decision, not "
            f"from a nonlinear response of the logits."
        )
    return " ".join(parts)


def _blocks(ds: xr.Dataset, summary: dict[str, Any], figures: list[Path]) -> list[tuple[str, Any]]:
    config = json.loads(ds.attrs["config"])
    seeds = json.loads(ds.attrs["seeds"])
    figs = {p.name: p for p in figures}
    b: list[tuple[str, Any]] = [
        ("h1", "hookdiff study: does the nonlinearity of steering explain behaviour?")
    ]
    if summary["untrained"]:
        b.append(("warning", ds.attrs.get("warning", "UNTRAINED AGENT")))
    b.append(
        (
            "p",
            f"Agent: {ds.attrs.get('agent', '')}"
            + (
                f" (sha256 `{ds.attrs['checkpoint_sha256']}`)"
                if ds.attrs.get("checkpoint_sha256")
                else ""
            )
            + f". Steering layer `{ds.attrs['steering_hook']}`; later layer "
            f"`{ds.attrs['later_hook']}`. {ds.sizes['maze']} mazes from spec "
            f"`{config['maze_spec']}` (seed {seeds['mazes']}), t in "
            f"{[float(x) for x in ds['t'].values]}; rollouts on {config['rollout_mazes']} mazes at "
            f"t in {config['rollout_ts']} (≤ {config['rollout_max_steps']} steps); "
            + _vector_source(config, seeds),
        )
    )
    b.append(("h2", "Answer"))
    for site in summary["sites"]:
        for vec in summary["sites"][site]:
            hook = summary["sites"][site][vec]["hook"]
            b.append(
                (
                    "p",
                    f"**{vec} vector at the {site} layer (`{hook}`).** "
                    + _answer(summary, site, vec),
                )
            )
    b.append(("h2", "Behaviour vs t beside the nonlinearity of the output"))
    rows = [["site", "vector", "t", "ΔP target (+t)", "ΔP target (−t)"]]
    for site, per in summary["sites"].items():
        for vec, e in per.items():
            for s, eff in e["effects"].items():
                rows.append([site, vec, s, f"{eff['plus']:+.3f}", f"{eff['minus']:+.3f}"])
    b.append(("table", rows))
    for site in summary["sites"]:
        b.append(("img", figs.get(f"behaviour_{site}.png")))
    b.append(("h2", "Where diff(t) leaves its linear prediction"))
    for site in summary["sites"]:
        for stem in ("residual_heatmap", "norms", "asymmetry", "flips_breakpoints"):
            b.append(("img", figs.get(f"{stem}_{site}.png")))
    b.append(("h2", "Later layers"))
    rows = [["candidate", *[f"effect ({v})" for v in ds["vector"].values], "score"]]
    for c, e in summary["candidates"].items():
        mark = " ← chosen" if c == summary["later_hook"] else ""
        rows.append(
            [f"`{c}`{mark}", *[f"{x:+.4f}" for x in e["effect"].values()], f"{e['score']:+.4f}"]
        )
    b.append(("table", rows))
    b.append(
        (
            "p",
            "Effect: cheese vector at t = −1, mean drop of P(toward cheese) at the decision "
            "square; top-right vector at t = +1, mean rise of P(toward top-right). The later layer "
            f"is the latest candidate whose score (the mean) is within "
            f"{config['later_tolerance']:.0%} of the best.",
        )
    )
    b.append(("img", figs.get("later_layers.png")))
    b.append(("h2", "Vector fields"))
    b.append(("img", figs.get("vector_fields.png")))
    b.append(("h2", "Reading the data"))
    b.append(
        (
            "p",
            "`study.nc` holds everything above: nonlinearity variables over (site, vector, "
            "position, maze, t, depth), behaviour over (site, vector, t, maze), the candidate "
            "effects, the vectors and the vector-field data; attrs hold the config, seeds, package "
            "versions and checkpoint hash. `hookdiff plot RUN_DIR` redraws the figures and this "
            "report from it.",
        )
    )
    return [x for x in b if x[1] is not None]


def _md(blocks: list[tuple[str, Any]], run_dir: Path) -> str:
    lines = []
    for kind, x in blocks:
        if kind == "h1":
            lines += [f"# {x}", ""]
        elif kind == "h2":
            lines += [f"## {x}", ""]
        elif kind == "warning":
            lines += [f"> **WARNING — {x}**", ""]
        elif kind == "p":
            lines += [x, ""]
        elif kind == "table":
            lines.append("| " + " | ".join(x[0]) + " |")
            lines.append("|" + "---|" * len(x[0]))
            lines += ["| " + " | ".join(r) + " |" for r in x[1:]]
            lines.append("")
        elif kind == "img":
            rel = Path(x).relative_to(run_dir) if Path(x).is_absolute() else Path(x)
            lines += [f"![{Path(x).stem}]({rel.as_posix()})", ""]
    return "\n".join(lines)


def _inline(text: str) -> str:
    """Escape HTML and render `code` and **bold** spans."""
    out = html.escape(text)
    parts = out.split("`")
    out = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    parts = out.split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


def _html(blocks: list[tuple[str, Any]]) -> str:
    body = []
    for kind, x in blocks:
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{_inline(x)}</{kind}>")
        elif kind == "warning":
            body.append(f'<div class="warning"><strong>WARNING</strong> — {_inline(x)}</div>')
        elif kind == "p":
            body.append(f"<p>{_inline(x)}</p>")
        elif kind == "table":
            head = "".join(f"<th>{_inline(c)}</th>" for c in x[0])
            rows = "".join(
                "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in x[1:]
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "img":
            data = base64.b64encode(Path(x).read_bytes()).decode("ascii")
            body.append(
                f'<figure><img alt="{html.escape(Path(x).stem)}" '
                f'src="data:image/png;base64,{data}"><figcaption>{html.escape(Path(x).name)}'
                f"</figcaption></figure>"
            )
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
        "line-height:1.45}img{max-width:100%}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:0.9em}code{background:#f3f3f3;"
        "padding:0 3px}.warning{background:#fff0f0;border:2px solid #c00;padding:0.8em;"
        "margin:1em 0}figcaption{color:#666;font-size:0.8em}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>hookdiff study</title><style>{style}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _vector_source(config: dict[str, Any], seeds: dict[str, int]) -> str:
    """One sentence on where the steering vectors came from."""
    if config.get("vectors_from", "pairs") == "same_maze":
        return (
            "each maze is steered by its own cheese and top-right vectors (one pair of that maze, "
            "mouse at the start: the published batch protocol)."
        )
    return (
        f"every maze is steered by one vector per kind, the mean over {config['vector_pairs']} "
        f"maze pair(s) of `{config['vector_spec']}` (seed {seeds['vector_mazes']})."
    )


def write_report(
    ds: xr.Dataset,
    run_dir: str | os.PathLike[str],
    figures: list[Path],
    summary: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``report.md`` and the self-contained ``report.html`` into ``run_dir`` (atomically).

    Args:
        ds: the study dataset.
        run_dir: the run folder (the figures lie under ``run_dir/figures``).
        figures: the figure files (from :func:`~hookdiff.study.figures.draw_figures`).
        summary: :func:`summarize` of ``ds`` (computed if not given).

    Returns:
        The paths of the Markdown and HTML reports.
    """
    run_dir = Path(run_dir).resolve()
    summary = summary if summary is not None else summarize(ds)
    blocks = _blocks(ds, summary, [Path(f).resolve() for f in figures])
    paths = (run_dir / "report.md", run_dir / "report.html")
    for path, text in zip(paths, (_md(blocks, run_dir), _html(blocks))):
        with atomic_write(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return paths
