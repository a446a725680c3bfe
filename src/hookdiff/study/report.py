"""The study's report: it answers, then shows. Markdown and self-contained HTML from the dataset.

:func:`write_report` opens with the answer (:func:`hookdiff.study.answer.answer`): a few sentences
per vector, each claim with its 95 % interval and sample size; then one figure per claim; then
the supporting measurements (:func:`summarize`: the nonlinearity of diff(t) per site, medians over
mazes) with their figures, the later-layer selection, and how to read the data. ``report.md``
links the figures; ``report.html`` embeds them as base64 PNGs, so the one file can be mailed. Both
read only the dataset and the figure files, so ``hookdiff plot RUN_DIR`` rebuilds them.
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

from hookdiff._io import atomic_write, jsonable
from hookdiff.claim import Claim
from hookdiff.study.answer import CLAIMS, claims, missing
from hookdiff.study.figures import FIGURE_SPECS, OUTPUT_DEPTH, figure_sites
from hookdiff.study.glance import glance_rows
from hookdiff.study.select import no_later_layer_steers, published_t
from hookdiff.study.targets import VECTOR_SPECS
from hookdiff.study.wording import label, number, sentence, short, t_text

__all__ = ["confirmation_blocks", "summarize", "verdict_rows", "write_report"]

_POSITION = "decision_square"


def _median_inf(x: np.ndarray) -> float:
    """Median where NaN means "beyond the t grid" (+inf); inf when most are beyond."""
    x = np.where(np.isfinite(x), x, np.inf)
    return float(np.median(x)) if x.size else math.nan


def _num(x: float | None) -> float | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return float(x)


def _at_t(da: xr.DataArray, t: float) -> float | None:
    if t not in da["t"].values:
        return None
    return _num(float(da.sel(t=t).median("maze", skipna=True)))


# --------------------------------------------------------------------------------------------
# Supporting numbers
# --------------------------------------------------------------------------------------------


def summarize(ds: xr.Dataset) -> dict[str, Any]:
    """The supporting numbers of a study, per site and vector (JSON-able; inf as "inf").

    Medians over mazes with the mouse on the decision square: the linear radius at the logits
    (the smallest |t| whose relative residual exceeds the threshold, per side; ``"inf"`` where the
    response stays linear on the whole grid), the residuals at t = ±1, the first exact
    breakpoints on the walked mazes; and the later-layer candidates' effects. These describe
    diff(t); the study's conclusions are the answer's claims (:mod:`hookdiff.study.answer`).
    """
    out: dict[str, Any] = {
        "agent": ds.attrs.get("agent", ""),
        "untrained": bool(int(ds.attrs.get("untrained", 0))),
        "threshold": float(ds.attrs["threshold"]),
        "t_max": float(np.max(np.abs(ds["t"].values))),
        "sites": {
            str(site): {str(v): _site_entry(ds, str(site), str(v)) for v in ds["vector"].values}
            for site in ds["site"].values
        },
        "candidates": _candidates(ds),
        "later_hook": ds.attrs.get("later_hook", ""),
    }
    return jsonable(out)


def _site_entry(ds: xr.Dataset, site: str, vec: str) -> dict[str, Any]:
    """One site and vector: the nonlinearity of diff(t) at the logits (medians over mazes)."""
    sel = dict(site=site, vector=vec, position=_POSITION, depth=OUTPUT_DEPTH)
    res = ds["residual"].sel(**sel)
    entry: dict[str, Any] = {
        "hook": str(ds["site_hook"].sel(site=site).values),
        "output_depth": OUTPUT_DEPTH,
        "radius_logits_pos": _median_inf(ds["linear_radius_pos"].sel(**sel).values),
        "radius_logits_neg": _median_inf(ds["linear_radius_neg"].sel(**sel).values),
        "residual_logits_t+1": _at_t(res, 1.0),
        "residual_logits_t-1": _at_t(res, -1.0),
    }
    if "first_break_pos" in ds:
        pieces = ds["n_pieces"].sel(**sel).values
        walked = np.isfinite(pieces)  # only the walked mazes (breakpoint_mazes) were walked
        entry["first_break_logits_pos"] = _median_inf(
            ds["first_break_pos"].sel(**sel).values[walked]
        )
        entry["first_break_logits_neg"] = _median_inf(
            ds["first_break_neg"].sel(**sel).values[walked]
        )
        entry["breakpoint_mazes"] = int(walked.sum())
    return entry


def _candidates(ds: xr.Dataset) -> dict[str, Any]:
    """Each later-layer candidate's steering effect per vector and its score."""
    return {
        str(c): {
            "effect": {
                str(v): float(ds["candidate_effect"].sel(candidate=c, vector=v))
                for v in ds["vector"].values
            },
            "score": float(ds["candidate_score"].sel(candidate=c)),
        }
        for c in ds["candidate"].values
    }


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    if x == "inf" or (isinstance(x, float) and math.isinf(x)):
        return "beyond the grid"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


# --------------------------------------------------------------------------------------------
# Blocks: the report as a list of (kind, content), rendered as Markdown or HTML
# --------------------------------------------------------------------------------------------

Blocks = list[tuple[str, Any]]


def _blocks(
    ds: xr.Dataset,
    summary: dict[str, Any],
    figures: list[Path],
    per_vector: dict[str, list[Claim]],
) -> Blocks:
    """The whole report: header, answer, one figure per claim, supporting measurements."""
    figs = {p.stem: p for p in figures}
    b = _header(ds, summary)
    b += _answer(ds, per_vector)
    b += _answer_figures(figs)
    b += _support(ds, summary, figs)
    b += _reading()
    return [x for x in b if x[1] is not None]


def confirmation_blocks(rows: list[dict[str, Any]]) -> Blocks:
    """The confirmation: one row per hypothesis, the discovery's estimate beside the fresh
    mazes' (with intervals and n), the adjusted p and the verdict."""
    table = [["hypothesis", "predicted", "discovery", "confirmation", "n", "p (Holm)", "verdict"]]
    for r in rows:
        d = r["discovery"] or {}
        table.append(
            [
                f"`{r['id']}`",
                r["prediction"],
                _interval_of(d.get("estimate"), d.get("ci95")),
                _interval_of(r["estimate"], r["ci95"]),
                str(r["n"]),
                "—" if r["p_adjusted"] is None else f"{r['p_adjusted']:.2g}",
                r["verdict"],
            ]
        )
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("confirmed", "refuted")}
    lead = (
        f"Hypotheses fixed by the discovery run, tested on fresh mazes with every analysis choice "
        f"fixed: {counts['confirmed']} of {len(rows)} confirmed, {counts['refuted']} refuted "
        f"({rows[0]['family'] if rows else 'no hypotheses'}, one-sided tests of the predicted "
        f"sign, TOST for a predicted equivalence)."
    )
    return [("h2", "Confirmation"), ("p", lead), ("table", table)]


def _interval_of(estimate: float | None, ci95: list[float | None] | None) -> str:
    if estimate is None:
        return "n/a"
    lo, hi = ci95 or (None, None)
    bounds = ", ".join("nan" if x is None else f"{x:+.3g}" for x in (lo, hi))
    return f"{estimate:+.3g} [{bounds}]"


def _mazes_text(ds: xr.Dataset, config: dict[str, Any], seeds: dict[str, Any]) -> str:
    """Which mazes were studied: the spec and seed, or the levels given (and how many of them
    were skipped, with why)."""
    n = ds.sizes["maze"]
    if not config.get("levels"):
        return f"{n} mazes from spec `{config['maze_spec']}` (seed {seeds['mazes']})"
    skipped = json.loads(ds.attrs.get("skipped_levels", "[]"))
    text = f"{n} levels given by `--levels {config['levels']}`"
    if skipped:
        shown = ", ".join(f"{k} ({why})" for k, why in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        text += f" ({len(skipped)} skipped: {shown}{more})"
    return text


def _header(ds: xr.Dataset, summary: dict[str, Any]) -> Blocks:
    """Title, the untrained warning, and what was run."""
    config, seeds = json.loads(ds.attrs["config"]), json.loads(ds.attrs["seeds"])
    b: Blocks = [("h1", "hookdiff study: where is the add/subtract asymmetry of steering created?")]
    if summary["untrained"]:
        b.append(("warning", ds.attrs.get("warning", "UNTRAINED AGENT")))
    sha = ds.attrs.get("checkpoint_sha256")
    b.append(
        (
            "p",
            f"Agent: {ds.attrs.get('agent', '')}"
            + (f" (sha256 `{sha}`)" if sha else "")
            + f". Steering layer `{ds.attrs['steering_hook']}`. {_mazes_text(ds, config, seeds)}, t in "
            f"{[float(x) for x in ds['t'].values]}; rollouts on {config['rollout_mazes']} mazes at "
            f"t in {config['rollout_ts']} (≤ {config['rollout_max_steps']} steps, "
            f"{config.get('episodes_per_maze', 1)} seeded episodes per maze); "
            + _vector_source(config, seeds),
        )
    )
    return b


_READING = (
    "E(t) = r(t) + r(−t) − 2r(0) is the even part of the vector's target readout r at the "
    "decision square (P of the step toward the target, its log-odds, or the margin: the "
    "log-odds linearised in the logits at t = 0): 0 when adding and subtracting the vector act "
    "equally and oppositely. The margin is linear in the logits, so its E is the asymmetry the "
    "network makes in the logits (exactly 0 with the logits symmetrised); the creation cut is "
    "read on it. P and log-odds add the softmax's own curvature, which the softmax-only test "
    "measures. Each number is a mean over mazes with its 95 % bootstrap interval [lo, hi] "
    "(paired on the maze where two conditions are compared; Wilson for rollout rates) and its "
    "n. Verdict: positive / negative when the interval lies above / below 0 and the test against "
    "0 rejects after Holm's adjustment over its family (each cut scan's points; the rest of "
    "the answer's tests, across vectors); inconclusive when the interval holds 0, when the "
    "adjusted test does not reject, when there is no interval (n < 2), or when the estimate and "
    "interval are 0 within the claim's numerical tolerance; equivalent only for a claim with a "
    "stated equivalence margin whose adjusted equivalence test (TOST) rejects |E| ≥ margin."
)


def verdict_rows(per_vector_claims: list[Claim]) -> list[list[str]]:
    """One vector's verdict table: claim · estimate [95 % CI] · n · t · verdict (header first)."""
    rows = [["claim", "estimate [95 % CI]", "n", "t", "verdict"]]
    for c in per_vector_claims:
        t = "—" if c.t is None or not math.isfinite(c.t) else t_text(c.t)
        verdict = f"{c.verdict} (0 within tolerance)" if c.within_tolerance else c.verdict
        rows.append([label(c), number(c), str(c.n), t, verdict])
    return rows


def _answer(ds: xr.Dataset, per_vector: dict[str, list[Claim]]) -> Blocks:
    """The answer: per vector the glance (four questions), a verdict table and one short line
    per claim; then the details."""
    b: Blocks = [("h2", "Answer")]
    for vector, vclaims in per_vector.items():
        b.append(("h3", f"{VECTOR_SPECS[vector].label} vector"))
        b.append(("table", glance_rows(vclaims)))
        b.append(("table", verdict_rows(vclaims)))
        b.append(("ul", [short(c) for c in vclaims]))
    b.append(("h3", "In detail"))
    b.append(("p", _READING))
    if ds.attrs.get("later_hook") == ds.attrs.get("steering_hook"):
        b.append(
            (
                "p",
                "At the fixed published t, no later candidate steers as well as the "
                "steering layer: the later layer is the steering layer, so nothing is "
                "repeated for it (the later layers at a matched coefficient follow).",
            )
        )
    none_steers = no_later_layer_steers(ds)
    if none_steers:
        b.append(
            (
                "p",
                "**At later layers, matched to a common effect.** No later layer still "
                "steers any vector once its coefficient is matched to the steering "
                "layer's effect (the matched coefficients per layer are in run.json and "
                "the figure `answer_later`), so no later scan is shown.",
            )
        )
    questions = list(dict.fromkeys(k.question for k in CLAIMS))
    for vector, vclaims in per_vector.items():
        b.append(("p", f"**The {VECTOR_SPECS[vector].label} vector.**"))
        for question in questions:
            kinds = {k.kind for k in CLAIMS if k.question == question}
            if none_steers:
                kinds.discard("matched")
            texts = [sentence(c) for c in vclaims if c.kind in kinds]
            if texts:
                b.append(("p", f"**{question}** " + " ".join(texts)))
    gone = missing(ds)
    if gone:
        b.append(("p", "Not measured in this run, so not claimed: " + "; ".join(gone) + "."))
    return b


def _answer_figures(figs: dict[str, Path]) -> Blocks:
    """One figure per claim, each with its caption (the registry's)."""
    b: Blocks = [("h2", "Figures: one per claim")]
    for spec in FIGURE_SPECS:
        if spec.section == "answer" and spec.stem in figs:
            b += [("p", spec.caption), ("img", figs[spec.stem])]
    return b


def _support(ds: xr.Dataset, summary: dict[str, Any], figs: dict[str, Path]) -> Blocks:
    """The nonlinearity of diff(t) per site (medians over mazes) and the later-layer selection."""
    b: Blocks = [("h2", "Supporting measurements: the nonlinearity of diff(t)")]
    tmax = summary["t_max"]
    rows = [
        [
            "site",
            "vector",
            "linear radius at the logits (+t / −t)",
            "residual t = ±1",
            "first breakpoint (+t / −t)",
            "walked mazes",
        ]
    ]
    sites = figure_sites(ds)
    for site in sites:
        for vec, e in summary["sites"][site].items():
            rows.append(
                [
                    f"{site} (`{e['hook']}`)",
                    vec,
                    " / ".join(_radius(e[f"radius_logits_{s}"], tmax) for s in ("pos", "neg")),
                    f"{_fmt(e['residual_logits_t+1'])} / {_fmt(e['residual_logits_t-1'])}",
                    f"{_fmt(e.get('first_break_logits_pos'), 3)} / "
                    f"{_fmt(e.get('first_break_logits_neg'), 3)}",
                    str(e.get("breakpoint_mazes", "n/a")),
                ]
            )
    b.append(("table", rows))
    b.append(
        (
            "p",
            f"Medians over mazes, mouse on the decision square; the linear radius is the "
            f"smallest |t| of the grid whose relative residual exceeds "
            f"{summary['threshold']:g}.",
        )
    )
    for site in sites:
        for spec in [f for f in FIGURE_SPECS if f.per_site]:
            b.append(("img", figs.get(f"{spec.stem}_{site}")))
    return b + _later_layers(ds, summary, figs)


def _radius(x: Any, tmax: float) -> str:
    return f"> {tmax:g}" if x == "inf" else f"{x:g}"


def _later_layers(ds: xr.Dataset, summary: dict[str, Any], figs: dict[str, Path]) -> Blocks:
    """The candidates' steering effects and the chosen later layer (once)."""
    tolerance = json.loads(ds.attrs["config"])["later_tolerance"]
    rows = [["candidate", *[f"effect ({v})" for v in ds["vector"].values], "score"]]
    for c, e in summary["candidates"].items():
        mark = " ← chosen" if c == summary["later_hook"] else ""
        rows.append(
            [f"`{c}`{mark}", *[_fmt(x, 4) for x in e["effect"].values()], _fmt(e["score"], 4)]
        )
    pub = published_t(ds)
    each = "; ".join(
        f"{VECTOR_SPECS[v].label} vector at t = {t_text(pub[v])}"
        for v in [str(x) for x in ds["vector"].values]
    )
    text = (
        f"Effect: the mean change of P(toward the vector's target) at the decision square in the "
        f"published direction ({each}). The later layer is the latest candidate whose score (the "
        f"mean) is within {tolerance:.0%} of the best."
    )
    return [("h2", "Later layers"), ("table", rows), ("p", text), ("img", figs.get("later_layers"))]


def _reading() -> Blocks:
    return [
        ("h2", "Reading the data"),
        (
            "p",
            "`study.nc` holds everything above: behaviour over (site, vector, t, maze; the "
            "rollouts also over episode), the "
            "localisation (loc_*, kink_*) over (control, vector, variant, cut, frozen_layer, "
            "readout, t_loc, maze), the rollouts with the network cut (loc_roll_* over vector, "
            "variant, cut, sign, maze, episode; their t = 0 arm loc_roll_base_*), the later layers at a matched coefficient (matched_* "
            "over matched_layer, pair_position, vector; later_* over later_cut), the "
            "nonlinearity of diff(t), the later-layer candidates, "
            "the vectors and the vector fields; attrs hold the config, seeds, package versions "
            'and checkpoint hash. `run.json["answer"]` holds the claims above. `hookdiff plot '
            "RUN_DIR` redraws the figures and this report from the dataset.",
        ),
    ]


def _md(blocks: list[tuple[str, Any]], run_dir: Path) -> str:
    lines = []
    for kind, x in blocks:
        if kind == "h1":
            lines += [f"# {x}", ""]
        elif kind == "h2":
            lines += [f"## {x}", ""]
        elif kind == "h3":
            lines += [f"### {x}", ""]
        elif kind == "warning":
            lines += [f"> **WARNING — {x}**", ""]
        elif kind == "p":
            lines += [x, ""]
        elif kind == "ul":
            lines += [f"- {item}" for item in x] + [""]
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
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{_inline(x)}</{kind}>")
        elif kind == "warning":
            body.append(f'<div class="warning"><strong>WARNING</strong> — {_inline(x)}</div>')
        elif kind == "p":
            body.append(f"<p>{_inline(x)}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in x) + "</ul>")
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
            "each maze is steered by its own vectors (one pair of that maze per vector, mouse at "
            "the start: the published batch protocol)."
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
    per_vector: dict[str, list[Claim]] | None = None,
    confirmation: list[dict[str, Any]] | None = None,
) -> tuple[Path, Path]:
    """Write ``report.md`` and the self-contained ``report.html`` into ``run_dir`` (atomically).

    Args:
        ds: the study dataset.
        run_dir: the run folder (the figures lie under ``run_dir/figures``).
        figures: the figure files (from :func:`~hookdiff.study.figures.draw_figures`).
        summary: :func:`summarize` of ``ds`` (computed if not given).
        per_vector: the claims (:func:`hookdiff.study.answer.claims` of ``ds``; computed if not
            given), so a caller that also saves the answer computes it once.
        confirmation: a confirmatory run's tested hypotheses
            (:func:`hookdiff.study.hypotheses.confirm`), shown first, beside the discovery's.

    Returns:
        The paths of the Markdown and HTML reports.
    """
    run_dir = Path(run_dir).resolve()
    summary = summary if summary is not None else summarize(ds)
    per_vector = per_vector if per_vector is not None else claims(ds)
    blocks = _blocks(ds, summary, [Path(f).resolve() for f in figures], per_vector)
    if confirmation is not None:
        blocks[1:1] = confirmation_blocks(confirmation)
    paths = (run_dir / "report.md", run_dir / "report.html")
    for path, text in zip(paths, (_md(blocks, run_dir), _html(blocks))):
        with atomic_write(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return paths
