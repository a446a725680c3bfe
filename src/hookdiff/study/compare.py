"""Several agents side by side: one row per agent from each agent's answer, as Markdown and HTML.

A many-agent run (``--checkpoint a.pt,b.pt`` or a folder) writes each agent's full report under
``agents/<name>/`` and, at the top of the run folder, this comparison: per agent and vector, the
add/subtract asymmetry of the target log-odds at |t| = 1 with its 95 % interval and verdict (the
answer's, multiplicity-adjusted), the
cut where the scan finds it created, and the later layer; above the table, in how many agents
each vector's asymmetry is distinguishable from 0.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hookdiff._io import atomic_write

__all__ = ["comparison_rows", "write_comparison"]


def _first(claims: Sequence[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    """The first claim of ``kind`` in the log-odds readout (else in any readout), or None."""
    mine = [c for c in claims if c["kind"] == kind]
    return next((c for c in mine if c.get("readout") == "logodds"), mine[0] if mine else None)


def _verdict(claim: Mapping[str, Any] | None) -> str:
    """The claim's verdict as the answer decided it (``n/a`` without a claim)."""
    return str(claim["verdict"]) if claim and claim.get("verdict") else "n/a"


def _interval(claim: Mapping[str, Any] | None) -> str:
    """``estimate [lo, hi]`` of a claim (``n/a`` without numbers)."""
    if claim is None or claim["estimate"] is None:
        return "n/a"
    lo, hi = (f"{x:+.3g}" if x is not None else "nan" for x in claim["ci95"])
    return f"{claim['estimate']:+.3g} [{lo}, {hi}]"


def comparison_rows(
    answers: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]], later: Mapping[str, str]
) -> list[dict[str, str]]:
    """One row per (agent, vector): asymmetry, its verdict, where it is created, the later layer.

    Args:
        answers: ``{agent: answer}`` (:func:`hookdiff.study.answer.answer` of each agent's study).
        later: ``{agent: later hook}``.

    Example:
        >>> claim = {"kind": "asymmetry", "readout": "logodds", "estimate": 0.5,
        ...          "ci95": [0.2, 0.8], "where": None, "verdict": "positive"}
        >>> comparison_rows({"a": {"cheese": [claim]}}, {"a": "x"})[0]["verdict"]
        'positive'
    """
    rows = []
    for agent, per_vector in answers.items():
        for vector, claims in per_vector.items():
            asym, created = _first(claims, "asymmetry"), _first(claims, "created")
            rows.append(
                {
                    "agent": agent,
                    "vector": vector,
                    "asymmetry": _interval(asym),
                    "verdict": _verdict(asym),
                    "created at": str(created["where"]) if created and created["where"] else "n/a",
                    "later layer": later[agent],
                }
            )
    return rows


def _headline(rows: Sequence[Mapping[str, str]]) -> list[str]:
    """Per vector: in how many agents its asymmetry is distinguishable from 0."""
    lines = []
    for vector in dict.fromkeys(r["vector"] for r in rows):
        mine = [r for r in rows if r["vector"] == vector]
        shown = [r["agent"] for r in mine if r["verdict"] in ("positive", "negative")]
        lines.append(
            f"The {vector} vector's add/subtract asymmetry (log-odds, |t| = 1) is "
            f"distinguishable from 0 in {len(shown)} of {len(mine)} agents"
            + (f" ({', '.join(shown)})." if shown else ".")
        )
    return lines


def write_comparison(
    rows: Sequence[Mapping[str, str]], run_dir: str | os.PathLike[str]
) -> tuple[Path, Path]:
    """Write the comparison as ``report.md`` and ``report.html`` in ``run_dir`` (atomically),
    linking each agent's own report under ``agents/<name>/``."""
    run_dir = Path(run_dir)
    cols = list(rows[0]) if rows else []
    agents = list(dict.fromkeys(r["agent"] for r in rows))
    md = ["# hookdiff study: agents compared", "", *_headline(rows), ""]
    md += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(r[c] for c in cols) + " |" for r in rows]
    md += ["", "Each agent's full report:", ""]
    md += [f"- [{a}](agents/{a}/report.md)" for a in agents]
    cells = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(r[c])}</td>" for c in cols) + "</tr>" for r in rows
    )
    links = "".join(
        f'<li><a href="agents/{a}/report.html">{html.escape(a)}</a></li>' for a in agents
    )
    heads = "".join(f"<p>{html.escape(x)}</p>" for x in _headline(rows))
    page = (
        "<!doctype html><meta charset='utf-8'><title>hookdiff study: agents compared</title>"
        f"<h1>hookdiff study: agents compared</h1>{heads}<table border=1><tr>{cells}</tr>{body}"
        f"</table><p>Each agent's full report:</p><ul>{links}</ul>"
    )
    paths = (run_dir / "report.md", run_dir / "report.html")
    for path, text in zip(paths, ("\n".join(md) + "\n", page)):
        with atomic_write(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return paths
