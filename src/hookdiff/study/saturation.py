"""Dense t-sweeps along each maze's line: does the response stop at the paired real state?

The interpolation explanation says a vector acts by moving the activation toward the paired
real state. If that were all, the readout along a + t·v would saturate near the paired state's
own readout (the network has no reason to push past a state it has seen), and the sign that
moves toward the paired state would act more. A response that keeps moving well past the
paired state's readout is a one-sided saturation of some feature instead, not interpolation.

:func:`saturation_sweeps` records the target log-odds along a + t·v on a dense grid of t
(``config.sweep_ts``), for each maze's own vector, the leave-one-out vector and another maze's
(vectors the base was not built from), one maze per forward (batch-invariant). The paired state's own
readout is the localisation's ``loc_base`` of the ``base_swap`` line.
:func:`hookdiff.study.claims_predict.continuation` reads, per maze, how far the response keeps
going past the point u* where it reaches the paired state's readout, in units of how far it
came to get there.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from torch import nn

from hookdiff.study.config import StudyConfig
from hookdiff.study.inputs import StudyMazes, StudyVectors
from hookdiff.study.localise import ControlLine, exact_readouts, own_line
from hookdiff.study.readouts import target_directions
from hookdiff.study.schema import PRIMARY, READOUTS, VECTOR_SOURCES

__all__ = ["SWEEP_SOURCES", "saturation_sweeps"]

#: The vector sources swept: every one of :data:`~hookdiff.study.schema.VECTOR_SOURCES`.
SWEEP_SOURCES = tuple(VECTOR_SOURCES)


def saturation_sweeps(
    policy: nn.Module, mazes: StudyMazes, vectors: StudyVectors, config: StudyConfig
) -> xr.Dataset:
    """``sweep_r`` over (source, vector, t_sweep, maze): the target log-odds along a + t·v at
    the decision square for every t of ``config.sweep_ts``, per source of :data:`SWEEP_SOURCES`."""
    hook, ts = config.hook, [float(t) for t in config.sweep_ts]
    acts, own = own_line(policy, mazes, vectors, hook)
    loo = vectors.leave_one_out(hook) if vectors.per_maze else own
    other = vectors.others(hook) if vectors.per_maze else own
    by_source = {"own": own, "leave_one_out": loo, "other_maze": other}
    targets = target_directions(mazes, vectors.specs)
    k = READOUTS.index(PRIMARY)
    r = np.stack(
        [
            np.stack(
                [
                    exact_readouts(
                        ControlLine(policy, acts, by_source[s][v]), config, ts, targets[v]
                    )[k]
                    for v in vectors.names
                ]
            )
            for s in SWEEP_SOURCES
        ]
    )  # (source, vector, t, maze)
    da = xr.DataArray(
        r,
        dims=("source", "vector", "t_sweep", "maze"),
        coords={
            "source": list(SWEEP_SOURCES),
            "vector": list(vectors.names),
            "t_sweep": ts,
            "maze": np.arange(r.shape[-1]),
        },
        attrs={
            "long_name": "target log-odds along the line",
            "description": "log-odds of P(step toward the vector's target) at the decision "
            "square with t·v added at the steering layer, v from the source (the maze's own "
            "vector, or the mean of every other maze's)",
        },
    )
    return xr.Dataset({"sweep_r": da})
