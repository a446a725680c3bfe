"""The many-agent comparison: one row per claim, each agent's cell, and whether it holds in all."""

from __future__ import annotations

import json

from hookdiff.study.compare import claim_rows, write_comparison


def _claim(kind, estimate, verdict, where=None, **kw):
    base = {
        "kind": kind,
        "readout": "logodds",
        "t": 1.0,
        "estimate": estimate,
        "ci95": [estimate - 1, estimate + 1],
        "verdict": verdict,
        "where": where,
        "odd": 2.0,
    }
    return {**base, **kw}


def test_rows_key_claims_across_agents_and_say_how_they_compare(tmp_path):
    # kind, where, then (estimate, verdict) per agent; None: the agent's answer lacks it
    table = [
        ("asymmetry", None, (-3.0, "negative"), (-2.0, "negative")),
        ("made", ("a → b", "c → d"), (-1.0, "negative"), (-1.0, "negative")),
        ("knockout", "a", (1.0, "positive"), (1.0, "inconclusive")),
        ("base_swap", "own", (0.1, "inconclusive"), (0.0, "inconclusive")),
        ("base_swap", "other_maze", (2.0, "positive"), None),
    ]

    def answer(i):
        return {
            "cheese": [
                _claim(kind, *cells[i], where=where[i] if isinstance(where, tuple) else where)
                for kind, where, *cells in table
                if cells[i] is not None
            ]
        }

    shipped, control = answer(0), answer(1)
    rows = claim_rows({"shipped": shipped, "control": control})
    got = {(r["kind"], r["condition"]): r["agreement"] for r in rows}
    assert got == {
        ("asymmetry", None): "holds in all",
        ("made", None): "place differs",
        ("knockout", None): "differs",
        ("base_swap", "own"): "inconclusive in all",
        ("base_swap", "other_maze"): "not in every answer",
    }
    made = next(r for r in rows if r["kind"] == "made")
    assert made["agents"]["control"]["where"] == "c → d" and made["agents"]["control"]["odd"] == 2
    write_comparison(rows, {"shipped": "x", "control": "y"}, tmp_path)
    saved = json.loads((tmp_path / "comparison.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(rows)) and saved["agents"] == [
        "shipped",
        "control",
    ]
