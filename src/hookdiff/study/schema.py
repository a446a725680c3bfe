"""The study's names: dimensions, coordinate values, readouts, controls, in one place.

Everything in :mod:`hookdiff.study` that names a coordinate value or a readout reads it from
here, so measuring code, the answer, the figures and the tests cannot disagree. This module is
the bottom of ``study/``: it imports nothing else from ``hookdiff.study``.
"""

from __future__ import annotations

from hookdiff.analysis.interventions import VARIANTS

__all__ = [
    "CONTROLS",
    "CONTROL_LINES",
    "CUT_READOUT",
    "DATASET_NAME",
    "POSITIONS",
    "PRIMARY",
    "READOUTS",
    "READOUT_TEXT",
    "REACH_TARGETS",
    "SCAN_VARIANTS",
    "SIGNS",
    "SITES",
    "SOFTMAX_READOUTS",
]

#: File name of the dataset inside a run folder.
DATASET_NAME = "study.nc"
#: The sign of the vector's coefficient: +t and −t (the ``sign`` coordinate).
SIGNS = ("+t", "-t")
#: Where the nonlinearity is measured: mouse on the decision square, mouse at the start.
POSITIONS = ("decision_square", "start")
#: The two studied hook points: the steering layer and the selected later layer.
SITES = ("steering", "later")

#: Readouts of the target (the localisation's ``readout`` coordinate): the probability of the
#: step toward it, that probability's log-odds, and the margin (the log-odds linearised in the
#: logits at t = 0: linear in the logits, so its even part is the asymmetry made in the logits).
READOUTS = ("p", "logodds", "margin")
#: What each readout is (the ``readout`` attr of every variable over ``readout``).
READOUT_TEXT = (
    "p: P(step toward the vector's target) at the decision square; logodds: log P − log(1 − P) "
    "from the logits; margin: the log-odds linearised in the logits at the line's own t = 0, "
    "l(z0) + grad l(z0)·(z − z0), linear in the logits, so its even part is the asymmetry made "
    "in the logits (0 with the logits symmetrised)"
)
#: The readouts of the softmax's output: behaviour, and the softmax-only test.
SOFTMAX_READOUTS = ("p", "logodds")
#: The readout of the claims compared across conditions (layers, base swap, controls): log-odds
#: has no floor or ceiling, so a change of size does not come from P saturating.
PRIMARY = "logodds"
#: The readout the creation cut is read on: the margin's even part is exactly 0 with the logits
#: symmetrised, so a cut scan of it can reach 0 (the log-odds' cannot: the softmax's curvature).
CUT_READOUT = "margin"

#: The lines of the localisation (the ``control`` coordinate): each maze's own vector, then
#: the controls it is compared with and the base swap.
CONTROL_LINES = ("vector", "random", "other_maze", "base_swap", "untrained")
#: The controls set beside each maze's own vector in the answer.
CONTROLS = ("random", "other_maze", "untrained")
#: The interventions of the cut scan (the ``variant`` coordinate).
SCAN_VARIANTS = tuple(v for v in VARIANTS if v != "exact")

#: What a rollout can reach, each with its outcome variable (the rollout outcomes are not
#: vectors: every vector's rollouts record both, whatever it steers toward).
REACH_TARGETS = {"cheese": "reached_cheese", "top_right": "reached_top_right"}
