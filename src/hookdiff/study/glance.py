"""The answer at a glance: four questions per vector, each answered from one claim's fields.

A reader of the report should find in half a minute whether there is an add/subtract asymmetry,
whether it is specific to the vector (against a random direction matched in effect), where the
network makes it, and whether behaviour shows it. :data:`GLANCE` is that table's registry: one
row per question, the claim kind it reads and the function that words the claim's verdict as an
answer. Every answer starts with the claim's verdict-derived word (``yes``, ``no``,
``cannot tell``) so the table can be read down one column; the numbers beside it are the
claim's estimate and interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hookdiff.claim import Claim
from hookdiff.study.wording import interval_text

__all__ = ["GLANCE", "Glance", "glance_rows"]

DIRECTIONAL = ("positive", "negative")


def _iv(c: Claim) -> str:
    return f"{interval_text(c.interval)} (n = {c.n})"


def _asymmetry(c: Claim) -> str:
    if c.verdict not in DIRECTIONAL:
        return f"cannot tell: E = {_iv(c)} is {c.verdict}"
    if c.odd is None or c.odd == 0:
        return f"yes: E = {_iv(c)}"
    # Δ± = r(±t) − r(0) = (E ± O) / 2, so |Δ+| > |Δ−| exactly when E and O share a sign
    more = "adding" if c.estimate * c.odd > 0 else "subtracting"
    return f"yes: E = {_iv(c)}; {more} the vector moves the readout more"


def _specific(c: Claim) -> str:
    own, matched = c.detail["own"], c.detail["matched"]
    pair = f"E {interval_text(own)} against {interval_text(matched)} for random pushes"
    if c.verdict not in DIRECTIONAL:
        return f"cannot tell: the vector's {pair} matched in effect ({c.verdict})"
    if own.estimate * matched.estimate < 0:
        return f"yes, in sign: the vector's {pair} matched in effect (opposite signs)"
    if abs(own.estimate) > abs(matched.estimate):
        return f"yes, in size: the vector's {pair} matched in effect"
    return f"no: random pushes matched in effect make a larger asymmetry, the vector's {pair}"


def _made(c: Claim) -> str:
    if c.verdict not in DIRECTIONAL or c.where is None:
        return f"cannot tell: no span makes a part distinguishable from 0 ({c.verdict})"
    return f"most in `{c.where}`: {_iv(c)} of the margin's E made there"


def _behaviour(c: Claim) -> str:
    if c.verdict in DIRECTIONAL:
        return f"yes: paired E of the reach rate {_iv(c)}"
    return f"not at this n: paired E of the reach rate {_iv(c)} ({c.verdict})"


@dataclass(frozen=True)
class Glance:
    """One row of the glance: the question, the claim kind (and readout) it reads, its words."""

    question: str
    kind: str
    readout: str | None
    answer: Callable[[Claim], str]


# fmt: skip (below): one row per question reads as a table
#: The glance's rows, in the order a reader asks them.
GLANCE: tuple[Glance, ...] = (
    Glance("Is there an add/subtract asymmetry?", "asymmetry", "logodds", _asymmetry),
    Glance("Is it specific to the vector?", "random_matched", "logodds", _specific),
    Glance("Where is it made?", "made", "margin", _made),
    Glance("Does behaviour show it?", "rollouts", None, _behaviour),
)  # fmt: skip


def _find(claims: Sequence[Claim], row: Glance) -> Claim | None:
    return next(
        (c for c in claims if c.kind == row.kind and (row.readout in (None, c.readout))), None
    )


def glance_rows(claims: Sequence[Claim]) -> list[list[str]]:
    """One vector's glance table: question · answer · verdict (header first); a question
    whose claim the run did not make says so (e.g. no span is named where the exact E is not
    shown different from 0)."""
    rows = [["question", "answer", "verdict of its claim"]]
    for row in GLANCE:
        c = _find(claims, row)
        if c is None:
            rows.append([row.question, f"cannot tell: no {row.kind} claim in this run", "—"])
        else:
            rows.append([row.question, row.answer(c), c.verdict])
    return rows
