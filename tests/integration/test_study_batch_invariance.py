"""The values the study takes its decisions on do not depend on how the mazes are blocked.

float32 kernels round differently for different batches (which rows share a forward, how many),
so a maze read beside another gives values that differ in the last bits from the same maze read
alone; a decision taken near its threshold (the creation cut, the cuts rolled out) then flips
with the blocking on some CPUs. The localisation and the later-layer matching read each maze in
forwards of its own rows only, so every per-maze value they record is bit-identical between the
tiny study in two one-maze blocks and in one two-maze block, on any machine. Only the steps that
record these values run (the others are not needed here and cost most of the study's time).
"""

from __future__ import annotations

import numpy as np
import pytest
from _study_tiny import tiny_config

from hookdiff.study import later, run, steps, study_dataset
from hookdiff.study.inputs import load_policy, study_mazes, study_vectors
from hookdiff.study.later import target_p
from hookdiff.study.localise import own_line
from hookdiff.study.readouts import target_directions

#: The steps whose values decisions are taken on.
DECIDING_STEPS = ("localise scan", "localise controls", "later matched")
#: The per-maze variables the creation cut, the controls, the knock-outs / -ins and the matched
#: later layers are decided on.
DECIDING = (
    "loc_even_cut",
    "loc_even",
    "loc_odd",
    "loc_base",
    "loc_even_knockout",
    "loc_even_knockin",
    "matched_t",
    "matched_effect",
    "still_steers",
    "still_steers_p",
    "later_even",
    "later_even_cut",
)


@pytest.fixture(scope="module")
def by_block():
    """``{maze_block: dataset}`` of the tiny study's deciding steps, in blocks of 1 and of 2."""
    chosen = tuple(s for s in steps.STEPS if s.name in DECIDING_STEPS)
    with pytest.MonkeyPatch.context() as patch:
        # two mazes cannot pass the matching's Holm family: without a level (the interval alone
        # decides) a later layer is chosen and the later scan's values exist to compare
        patch.setattr(later, "ALPHA", float("inf"))
        patch.setattr(steps, "STEPS", chosen)
        patch.setattr(run, "STEPS", chosen)
        return {b: study_dataset(tiny_config(maze_block=b), progress=False) for b in (1, 2)}


def test_every_deciding_value_is_bit_identical_across_blocks(by_block):
    one, two = by_block[1], by_block[2]
    assert one.sizes["maze"] == 2
    for name in DECIDING:
        assert one[name].dims == two[name].dims, name
        a, b = one[name].values, two[name].values
        assert np.isfinite(a).any(), f"{name} has no value to compare"
        differ = ~((a == b) | (np.isnan(a) & np.isnan(b)))
        assert not differ.any(), f"{name} differs at {differ.sum()} of {a.size} entries"


def test_a_mazes_matching_readout_is_the_same_alone_or_beside_another():
    """The later-layer matching's P(toward the target) of maze 0 read with both mazes in one call
    equals maze 0 read alone (the matching is one task, so blocks alone would not show it)."""
    config = tiny_config()
    policy, _ = load_policy(config)
    mazes = study_mazes(config)
    vectors = study_vectors(policy, config, mazes.states, [config.hook])
    acts, own = own_line(policy, mazes, vectors, config.hook)
    target = target_directions(mazes, vectors.specs)["cheese"]
    ts = [-1.0, 0.0, 0.5, 1.0]
    both = target_p(policy, acts, config.hook, own["cheese"], ts, target, config.max_rows)
    alone = target_p(
        policy, acts[:1], config.hook, own["cheese"][:1], ts, target[:1], config.max_rows
    )
    np.testing.assert_array_equal(both[:, :1], alone)
