"""A tiny study of the shipped agent, cut into one-maze blocks, for the tests of how the study
runs (backends, resuming): every per-maze step, the first-K limits and the "other maze" control
cross a block boundary."""

from __future__ import annotations

import dataclasses

from hookdiff.study import StudyConfig, quick_config

HOOK = "embedder.block2.res1.resadd_out"


def tiny_config(**changes: object) -> StudyConfig:
    """Two mazes in two blocks; every first-K limit covers a part of the mazes or all of them."""
    changes = {"maze_block": 1, **changes}
    return dataclasses.replace(
        quick_config(),
        n_mazes=2,
        ts=(-1.0, 0.0, 1.0),
        later_candidates=(HOOK, "embedder.block3.res2.resadd_out"),
        breakpoint_mazes=1,
        rollout_mazes=2,
        rollout_ts=(-1.0, 0.0, 1.0),
        rollout_max_steps=6,
        field_mazes=2,
        field_ts=(0.0, 1.0),
        localise_ts=(1.0,),
        threads=1,  # torch's rounding depends on its thread count: the same on both backends
        **changes,
    )
