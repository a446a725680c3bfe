"""Several agents side by side: every claim of the answer, per agent, and whether it holds in all.

A many-agent run (``--checkpoint shipped,control,replicate``, paths, or a folder) writes each
agent's full report under ``agents/<name>/`` and, at the top of the run folder, this comparison.
Each row is one claim of the answer (vector, kind, readout, t and condition) with, per agent, its
estimate, 95 % interval, verdict (multiplicity-adjusted within that agent's answer), the odd part
O beside it, and — for claims whose finding *is* a place (where an asymmetry is created or made,
which knock-out matters most) — the place. The last column says how the agents compare:

- ``holds in all``: the same decided verdict (positive, negative or equivalent) in every agent,
  and the same place for a place-claim;
- ``place differs``: the same verdict, another place;
- ``inconclusive in all``: no agent's data decide it;
- ``not in every answer``: some agent's answer has no such claim;
- ``differs``: anything else — the conclusion is one network's (the cells say whose).

Rows are data (``comparison.json``); the Markdown and HTML tables are drawn from them.
"""

from __future__ import annotations

import html
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hookdiff._io import atomic_write, write_json

__all__ = [
    "COMPARISON_NAME",
    "PLACE_KINDS",
    "agreement",
    "claim_rows",
    "headline",
    "later_text",
    "write_comparison",
]

#: The file of a many-agent run that holds the comparison's rows.
COMPARISON_NAME = "comparison.json"

#: Claim kinds whose finding is a place in the network: the place is compared, not keyed on.
PLACE_KINDS = frozenset(
    {"created", "made", "knockout", "knockin", "kinks", "random_matched_made", "cut_rollouts"}
)

DECIDED = ("positive", "negative", "equivalent")


def _key(claim: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes two agents' claims the same claim: kind, readout, t, and the condition."""
    detail = claim.get("detail") or {}
    condition = detail.get("variant") or claim.get("control")
    where = None if claim["kind"] in PLACE_KINDS else claim.get("where")
    return (claim["kind"], claim.get("readout"), claim.get("t"), condition, where)


def _cell(claim: Mapping[str, Any]) -> dict[str, Any]:
    """One agent's numbers for one claim."""
    return {
        "estimate": claim.get("estimate"),
        "ci95": claim.get("ci95"),
        "verdict": claim.get("verdict") or "n/a",
        "odd": claim.get("odd"),
        "n": claim.get("n"),
        "where": claim.get("where") if claim["kind"] in PLACE_KINDS else None,
    }


def agreement(cells: Mapping[str, Mapping[str, Any] | None], place: bool) -> str:
    """How the agents' cells of one claim compare (see the module docstring).

    Example:
        >>> a = {"verdict": "negative", "where": "x"}
        >>> agreement({"s": a, "c": {**a, "where": "y"}}, place=True)
        'place differs'
        >>> agreement({"s": a, "c": {**a, "verdict": "inconclusive"}}, place=False)
        'differs'
    """
    if any(c is None for c in cells.values()):
        return "not in every answer"
    verdicts = {c["verdict"] for c in cells.values()}
    if verdicts == {"inconclusive"}:
        return "inconclusive in all"
    if len(verdicts) > 1 or not verdicts <= set(DECIDED):
        return "differs"
    if place and len({c["where"] for c in cells.values()}) > 1:
        return "place differs"
    return "holds in all"


def claim_rows(answers: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]) -> list[dict]:
    """One row per claim of the answers (``{agent: {vector: [claim, ...]}}``), in the first
    agent's order, with each agent's cell (None where that agent's answer lacks the claim) and
    the agreement.

    Example:
        >>> claim = {"kind": "asymmetry", "readout": "logodds", "t": 1.0, "estimate": -3.5,
        ...          "ci95": [-4.5, -2.7], "verdict": "negative", "where": None, "odd": 5.5}
        >>> rows = claim_rows({"a": {"cheese": [claim]}, "b": {"cheese": [claim]}})
        >>> rows[0]["agreement"], rows[0]["agents"]["b"]["estimate"]
        ('holds in all', -3.5)
    """
    agents = list(answers)
    keyed: dict[str, dict[tuple[Any, ...], Mapping[str, Any]]] = {a: {} for a in agents}
    order: list[tuple[Any, ...]] = []
    for agent in agents:
        for vector, claims in answers[agent].items():
            seen: Counter[tuple[Any, ...]] = Counter()
            for claim in claims:
                base = (vector, *_key(claim))
                key = (*base, seen[base])  # the k-th claim with the same key (e.g. cut rollouts)
                seen[base] += 1
                keyed[agent][key] = claim
                if key not in order:
                    order.append(key)
    rows = []
    for key in order:
        vector, kind, readout, t, condition, where, _ = key
        cells = {a: (_cell(keyed[a][key]) if key in keyed[a] else None) for a in agents}
        rows.append(
            {
                "vector": vector,
                "kind": kind,
                "readout": readout,
                "t": t,
                "condition": condition or where,
                "agents": cells,
                "agreement": agreement(cells, kind in PLACE_KINDS),
            }
        )
    return rows


def later_text(answer: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """``vector: layer`` per vector of one agent's answer: where its ``matched`` claim finds a
    leave-one-out vector still steering after the steering layer (``none``: nowhere).

    Example:
        >>> later_text({"cheese": [{"kind": "matched", "where": None}],
        ...             "top_right": [{"kind": "matched", "where": "fc_out"}]})
        'cheese: none; top_right: fc_out'
    """
    found = {
        vector: next((c.get("where") for c in claims if c.get("kind") == "matched"), None)
        for vector, claims in answer.items()
        if isinstance(claims, list)
    }
    return "; ".join(f"{v}: {where or 'none'}" for v, where in found.items()) or "not run"


def _number(x: Any) -> str:
    return "nan" if x is None else f"{x:+.3g}"


def _text(cell: Mapping[str, Any] | None) -> str:
    """``estimate [lo, hi] verdict (O …) at place`` for a table cell."""
    if cell is None:
        return "—"
    parts = []
    if cell["estimate"] is not None:
        lo, hi = cell["ci95"] or (None, None)
        parts.append(f"{_number(cell['estimate'])} [{_number(lo)}, {_number(hi)}]")
    parts.append(cell["verdict"])
    if cell["odd"] is not None:
        parts.append(f"(O {cell['odd']:+.3g})")
    if cell["where"]:
        parts.append("at " + str(cell["where"]).replace("embedder.", ""))
    return " ".join(parts)


def _label(row: Mapping[str, Any]) -> str:
    bits = [row["kind"], row["readout"], f"t={row['t']:g}" if row["t"] is not None else None]
    return " · ".join(str(b) for b in (*bits, row["condition"]) if b)


def headline(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """How many claims hold in every agent, per vector, and which differ."""
    lines = []
    for vector in dict.fromkeys(r["vector"] for r in rows):
        mine = [r for r in rows if r["vector"] == vector]
        count = Counter(r["agreement"] for r in mine)
        lines.append(
            f"{vector}: of {len(mine)} claims, {count['holds in all']} hold in every agent, "
            f"{count['place differs']} agree in verdict but not in place, "
            f"{count['differs']} differ between agents, "
            f"{count['not in every answer']} are not in every agent's answer, "
            f"{count['inconclusive in all']} are inconclusive in all."
        )
    return lines


def write_comparison(
    rows: Sequence[Mapping[str, Any]],
    later: Mapping[str, str],
    run_dir: str | os.PathLike[str],
) -> tuple[Path, Path, Path]:
    """Write the comparison as ``comparison.json`` (the rows), ``report.md`` and ``report.html``
    in ``run_dir`` (atomically), linking each agent's own report under ``agents/<name>/``;
    ``later``: each agent's :func:`later_text`."""
    run_dir = Path(run_dir)
    agents = list(later)
    cols = ["vector", "claim", *agents, "across agents"]
    table = [
        [r["vector"], _label(r), *(_text(r["agents"].get(a)) for a in agents), r["agreement"]]
        for r in rows
    ]
    later_line = "Latest layer a leave-one-out vector still steers, per agent: " + (
        "; ".join(f"{a} ({h})" for a, h in later.items())
    )
    md = ["# hookdiff study: agents compared", "", *headline(rows), "", later_line, ""]
    md += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(cells) + " |" for cells in table]
    md += ["", "Each agent's full report:", ""]
    md += [f"- [{a}](agents/{a}/report.md)" for a in agents]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>" for cells in table
    )
    links = "".join(
        f'<li><a href="agents/{a}/report.html">{html.escape(a)}</a></li>' for a in agents
    )
    lead = "".join(f"<p>{html.escape(x)}</p>" for x in [*headline(rows), later_line])
    page = (
        "<!doctype html><meta charset='utf-8'><title>hookdiff study: agents compared</title>"
        f"<h1>hookdiff study: agents compared</h1>{lead}<table border=1><tr>{head}</tr>{body}"
        f"</table><p>Each agent's full report:</p><ul>{links}</ul>"
    )
    data = write_json(
        {"agents": agents, "later_layer": dict(later), "rows": list(rows)},
        run_dir / COMPARISON_NAME,
    )
    paths = (run_dir / "report.md", run_dir / "report.html")
    for path, text in zip(paths, ("\n".join(md) + "\n", page)):
        with atomic_write(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return (data, *paths)
