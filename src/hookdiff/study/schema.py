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
    "RANDOM_MATCHED",
    "READOUTS",
    "READOUT_TEXT",
    "REACH_TARGETS",
    "SCAN_VARIANTS",
    "SIGNS",
    "SITES",
    "SOFTMAX_READOUTS",
    "VECTOR_SOURCES",
    "VARIABLES",
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
CONTROL_LINES = (
    "vector",
    "random",
    "other_maze",
    "leave_one_out",
    "base_swap",
    "base_swap_other_maze",
    "base_swap_leave_one_out",
    "untrained",
)
#: The controls set beside each maze's own vector in the answer.
CONTROLS = ("random", "other_maze", "leave_one_out", "untrained")
#: Where the vector steering a maze comes from (the ``source`` coordinate), and the two lines
#: that read it: on the maze's own base and on its paired real state (the base swap). The own
#: vector was built from the maze's pair, so its base swap re-reads almost the same line; the
#: leave-one-out vector (the mean of every other maze's) and another maze's vector were not.
VECTOR_SOURCES: dict[str, tuple[str, str]] = {
    "own": ("vector", "base_swap"),
    "leave_one_out": ("leave_one_out", "base_swap_leave_one_out"),
    "other_maze": ("other_maze", "base_swap_other_maze"),
}
#: The control matched in effect (not a line of ``control``: its own ``rme_*`` variables over
#: ``control_draw``): random directions of the vector's norm per position, each maze's t bisected
#: so that |O| of the log-odds equals the vector's (:mod:`hookdiff.study.controls`).
RANDOM_MATCHED = "random_matched_effect"
#: The interventions of the cut scan (the ``variant`` coordinate).
SCAN_VARIANTS = tuple(v for v in VARIANTS if v != "exact")

#: Every variable of ``study.nc`` (one agent, the localisation included) and its dims, in the
#: order the study writes them. Tests and readers import this instead of restating it; a
#: many-agent dataset adds a leading ``agent`` dim to each.
VARIABLES: dict[str, tuple[str, ...]] = {
    "diff_norm": ("site", "vector", "position", "maze", "t", "depth"),
    "linear_norm": ("site", "vector", "position", "maze", "t", "depth"),
    "residual_norm": ("site", "vector", "position", "maze", "t", "depth"),
    "residual": ("site", "vector", "position", "maze", "t", "depth"),
    "linear_radius_pos": ("site", "vector", "position", "maze", "depth"),
    "linear_radius_neg": ("site", "vector", "position", "maze", "depth"),
    "asymmetry": ("site", "vector", "position", "maze", "t_pos", "depth"),
    "base_norm": ("site", "vector", "position", "maze", "depth"),
    "flip_fraction": ("site", "vector", "position", "maze", "t", "layer"),
    "diff_logits": ("site", "vector", "position", "maze", "t", "action"),
    "base_logits": ("site", "vector", "position", "maze", "action"),
    "signed_logits": ("site", "vector", "position", "maze", "t_pos", "sign", "action"),
    "diff_directions": ("site", "vector", "position", "maze", "t", "direction"),
    "base_directions": ("site", "vector", "position", "maze", "direction"),
    "signed_directions": ("site", "vector", "position", "maze", "t_pos", "sign", "direction"),
    "n_pieces": ("site", "vector", "position", "maze", "depth"),
    "first_break_pos": ("site", "vector", "position", "maze", "depth"),
    "first_break_neg": ("site", "vector", "position", "maze", "depth"),
    "breakpoint_density": ("site", "vector", "position", "maze", "t_bin", "depth"),
    "p_toward_cheese": ("site", "vector", "t", "maze"),
    "p_toward_top_right": ("site", "vector", "t", "maze"),
    "p_toward_moved_cheese": ("site", "vector", "t", "maze"),
    "reached_cheese": ("site", "vector", "t", "maze", "episode"),
    "reached_top_right": ("site", "vector", "t", "maze", "episode"),
    "rollout_steps": ("site", "vector", "t", "maze", "episode"),
    "timed_out": ("site", "vector", "t", "maze", "episode"),
    "field_cells": ("field_maze", "field_cell", "cell"),
    "field_probs": ("vector", "field_maze", "field_t", "field_cell", "direction"),
    "field_state": ("field_maze", "state_byte"),
    "field_state_len": ("field_maze",),
    "loc_even_cut": ("vector", "variant", "cut", "readout", "t_loc", "maze"),
    "loc_even_knockout": ("vector", "frozen_layer", "readout", "t_loc", "maze"),
    "loc_even_knockin": ("vector", "frozen_layer", "readout", "t_loc", "maze"),
    "loc_odd_cut": ("vector", "variant", "cut", "readout", "t_loc", "maze"),
    "loc_odd_knockout": ("vector", "frozen_layer", "readout", "t_loc", "maze"),
    "loc_odd_knockin": ("vector", "frozen_layer", "readout", "t_loc", "maze"),
    "loc_base": ("control", "vector", "readout", "maze"),
    "loc_even": ("control", "vector", "readout", "t_loc", "maze"),
    "loc_odd": ("control", "vector", "readout", "t_loc", "maze"),
    "base_swap_distance": ("source", "vector", "sign", "maze"),
    "sweep_r": ("source", "vector", "t_sweep", "maze"),
    "rme_goal": ("vector", "maze"),
    "rme_t": ("vector", "control_draw", "maze"),
    "rme_reached": ("vector", "control_draw", "maze"),
    "rme_even": ("vector", "control_draw", "readout", "maze"),
    "rme_odd": ("vector", "control_draw", "readout", "maze"),
    "rme_even_cut": ("vector", "control_draw", "cut", "readout", "maze"),
    "kink_even": ("vector", "frozen_layer", "t_loc", "kink_maze"),
    "kink_even_channel": ("vector", "frozen_layer", "kink_channel", "t_loc", "kink_maze"),
    "kink_even_total": ("vector", "t_loc", "kink_maze"),
    "kink_even_direct": ("vector", "t_loc", "kink_maze"),
    "matched_t": ("matched_layer", "pair_position", "vector"),
    "matched_effect": ("matched_layer", "pair_position", "vector", "maze"),
    "matched_vector_norm": ("matched_layer", "pair_position", "vector"),
    "still_steers": ("matched_layer", "pair_position", "vector"),
    "still_steers_p": ("matched_layer", "pair_position", "vector"),
    "matched_goal": ("vector",),
    "later_even": ("vector", "readout", "maze"),
    "later_even_cut": ("vector", "variant", "later_cut", "readout", "maze"),
    "later_scan_layer": ("vector",),
    "later_scan_position": ("vector",),
    "later_scan_t": ("vector",),
    "loc_roll_reached_cheese": ("vector", "variant", "cut", "sign", "maze", "episode"),
    "loc_roll_reached_top_right": ("vector", "variant", "cut", "sign", "maze", "episode"),
    "loc_roll_steps": ("vector", "variant", "cut", "sign", "maze", "episode"),
    "loc_roll_base_reached_cheese": ("vector", "variant", "cut", "maze", "episode"),
    "loc_roll_base_reached_top_right": ("vector", "variant", "cut", "maze", "episode"),
    "loc_roll_base_steps": ("vector", "variant", "cut", "maze", "episode"),
    "loc_roll_cut_chosen": ("vector", "cut"),
    "candidate_effect": ("candidate", "vector"),
    "candidate_score": ("candidate",),
    "candidate_vector_norm": ("candidate", "vector"),
    "site_hook": ("site",),
    "vector_norm": ("site", "vector"),
    "vector_steering": ("vector", "vector_maze", "steering_feature"),
    "vector_later": ("vector", "vector_maze", "later_feature"),
    "vector_level_seed": ("vector_maze",),
    "decision_square": ("maze", "cell"),
    "level_seed": ("maze",),
    "maze_dim": ("maze",),
}

#: What a rollout can reach, each with its outcome variable (the rollout outcomes are not
#: vectors: every vector's rollouts record both, whatever it steers toward).
REACH_TARGETS = {"cheese": "reached_cheese", "top_right": "reached_top_right"}
