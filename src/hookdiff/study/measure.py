"""The study's measurements, each returning its own labelled part of the study's Dataset.

- the later layers (:func:`later_layer`, :func:`matched_later`) are in
  :mod:`hookdiff.study.later` (re-exported here);
- :func:`nonlinearity_at`: the nonlinearity of diff(t) per downstream depth
  (:func:`hookdiff.analysis.nonlinearity`) at the decision-square and start observations;
- :func:`behaviour_at`: the decision-square probabilities at every t, and steered rollouts (every
  vector and coefficient batched into one rollout with per-env coefficients);
- :func:`vector_fields`: the direction probabilities at every cell of example mazes.

A new measurement is one more function here returning an ``xarray.Dataset`` over the study's
coordinates (:mod:`hookdiff.study.dataset`); :mod:`hookdiff.study.steps` registers it. Every
function loops over the studied vectors (``vectors.specs``), never names one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
import xarray as xr
from torch import Tensor, nn

from hookdiff._device import model_device
from hookdiff.agent import obs_to_tensor
from hookdiff.hooks import steer, tile_rows
from hookdiff.maze import observations_at_every_cell
from hookdiff.maze.actions import DIRECTION_NAMES, direction_probs
from hookdiff.maze.state import MazeState
from hookdiff.rollout import Steering, decision_square_probs, rollout
from hookdiff.study.config import StudyConfig
from hookdiff.study.cut_rollouts import episode_seeds
from hookdiff.study.dataset import concat_labelled
from hookdiff.study.inputs import StudyMazes, StudyVectors
from hookdiff.study.later import (
    PAIR_POSITIONS,
    candidate_effect,
    later_layer,
    later_scan,
    latest_steering,
    matched_later,
    matched_t,
    pick_later,
    target_p,
)
from hookdiff.study.readouts import target_probabilities
from hookdiff.study.schema import POSITIONS, REACH_TARGETS
from hookdiff.study.targets import TARGET_CELLS, VECTOR_SPECS
from hookdiff.vectors import activations_from_obs

__all__ = [
    "EFFECT_T",
    "PAIR_POSITIONS",
    "latest_steering",
    "later_scan",
    "matched_later",
    "matched_t",
    "target_p",
    "behaviour_at",
    "candidate_effect",
    "later_layer",
    "nonlinearity_at",
    "pick_later",
    "vector_fields",
]

#: The published coefficient at which each built-in vector's steering effect is measured
#: (:attr:`VectorSpec.published_t`; the steps read it from the spec).
EFFECT_T = {name: spec.published_t for name, spec in VECTOR_SPECS.items()}


def _no_op() -> None:
    """The default progress callback."""


# --------------------------------------------------------------------------------------------
# Nonlinearity (hookdiff.analysis)
# --------------------------------------------------------------------------------------------

#: Analysis variables with a dimension the study does not join over (long formats, helpers).
_DROP_DIMS = {"breakpoint", "dep_layer"}


def nonlinearity_at(
    policy: nn.Module,
    mazes: StudyMazes,
    vectors: StudyVectors,
    hook: str,
    config: StudyConfig,
    advance: Callable[[], None] = _no_op,
) -> xr.Dataset:
    """The analysis of diff(t) steered at ``hook`` over (vector, position, maze, t, depth, ...).

    ``advance`` is called after each (vector, position) (progress).
    """
    vecs = vectors.applied(hook)
    acts = {p: activations_from_obs(policy, mazes.obs[p], hook) for p in POSITIONS}
    per_vector = []
    for name in vectors.names:
        per_position = []
        for p in POSITIONS:
            per_position.append(_analyse(policy, acts[p], hook, vecs[name], config))
            advance()
        per_vector.append(concat_labelled(per_position, "position", POSITIONS))
    return concat_labelled(per_vector, "vector", vectors.names)


def _analyse(
    policy: nn.Module, acts: Tensor, hook: str, vector: Tensor, config: StudyConfig
) -> xr.Dataset:
    """One :func:`~hookdiff.analysis.nonlinearity` call, with dim ``sample`` renamed ``maze``.

    Runs on a float64 copy of the policy, so the exact walk's crossings are free of float32
    rounding. Variables in long format (one row per breakpoint) are dropped; everything over
    (maze, t, depth, t_pos, layer, t_bin, ...) is kept.
    """
    from hookdiff.analysis import nonlinearity

    ds = nonlinearity(
        copy.deepcopy(policy).double(),
        acts.double(),
        hook,
        vector.double(),
        list(config.ts),
        threshold=config.threshold,
        breakpoints=config.breakpoints,
        max_rows=config.max_rows,
        max_pieces=config.max_pieces,
        breakpoint_samples=config.breakpoint_mazes,
        seed=config.seeds()["analysis"],
    )
    ds = ds[[v for v in ds.data_vars if not set(ds[v].dims) & _DROP_DIMS]]
    ds = ds.drop_vars([c for c in ds.coords if set(ds[c].dims) & _DROP_DIMS])
    return ds.rename({"sample": "maze"}).assign_coords(maze=np.arange(acts.shape[0]))


# --------------------------------------------------------------------------------------------
# Behaviour
# --------------------------------------------------------------------------------------------

#: Rollout variables: (study name, the outcome it counts); ``rollout_steps`` is the step count.
_OUTCOMES = (
    *((var, target) for target, var in REACH_TARGETS.items()),
    ("timed_out", "timeout"),
)


def behaviour_at(
    policy: nn.Module,
    mazes: StudyMazes,
    vectors: StudyVectors,
    hook: str,
    config: StudyConfig,
) -> xr.Dataset:
    """Behaviour steered at ``hook`` over (vector, t, maze): decision-square P, rollouts.

    Rollouts cover the first ``rollout_mazes`` mazes, the ``rollout_ts`` and
    ``episodes_per_maze`` episodes per maze (dim ``episode``); NaN elsewhere.
    """
    vecs, states = vectors.applied(hook), mazes.states
    coords = {"vector": list(vectors.names), "t": np.asarray(config.ts, dtype=np.float64)}
    ds = _decision_square_probs(policy, states, hook, vecs, config.ts)
    roll = _rollouts(policy, states[: config.rollout_mazes], hook, vecs, config, vectors.per_maze)
    ds = ds.merge(roll.reindex(maze=np.arange(len(states))), join="outer")
    return ds.assign_coords(coords)


def _decision_square_probs(
    policy: nn.Module,
    mazes: Sequence[MazeState],
    hook: str,
    vecs: Mapping[str, Tensor],
    ts: Sequence[float],
) -> xr.Dataset:
    """P(step toward each target cell) at the decision squares over (vector, t, maze), for each
    vector of ``vecs`` (every readout of :data:`~hookdiff.study.targets.TARGET_CELLS`, whatever
    vector steers: each vector's own is its :attr:`VectorSpec.target_var`).

    Every coefficient of one vector runs in one batch (per-env coefficients, coefficient-major);
    per-maze vectors ``(N, ...)`` are tiled over the coefficients by the steering hook.
    """
    n, k = len(mazes), len(ts)
    probs = {key: np.zeros((len(vecs), k, n)) for key in TARGET_CELLS}
    coeffs = torch.tensor(np.repeat(np.asarray(ts, dtype=np.float32), n))
    for vi, v in enumerate(vecs.values()):
        steering = [Steering(hook, v, coeffs)]
        ds = decision_square_probs(policy, list(mazes) * k, steering=steering)
        squares = [tuple(int(x) for x in q) for q in ds["decision_square"].values]
        toward = target_probabilities(ds["direction_probs"].values, list(mazes) * k, squares)
        for key, arr in probs.items():
            arr[vi] = toward[key].reshape(k, n)
    dims = ("vector", "t", "maze")
    return xr.Dataset(
        {key: (dims, arr) for key, arr in probs.items()}, coords={"maze": np.arange(n)}
    )


def _rollouts(
    policy: nn.Module,
    mazes: Sequence[MazeState],
    hook: str,
    vecs: Mapping[str, Tensor],
    config: StudyConfig,
    per_maze: bool,
) -> xr.Dataset:
    """Steered rollouts of every (vector, t ≠ 0) and one t = 0 baseline, in ONE rollout call.

    ``per_maze``: ``vecs`` hold one vector per maze (the first ``len(mazes)`` are used). Each
    maze is rolled out ``episodes_per_maze`` times; episode e of a maze has its own sampling
    seed (:func:`~hookdiff.study.cut_rollouts.episode_seeds`), the same in every group (common
    random numbers: t = −t, 0, +t differ only by the steering), whatever the block.
    Returns the outcomes (0/1) and ``rollout_steps`` over (vector, t, maze, episode) on the
    full ``ts`` grid, NaN where not rolled out; the t = 0 baseline is shared by every vector.
    The outcomes are what a rollout ends in (:data:`_OUTCOMES`), whatever vector steers.
    """
    r, k, ts = len(mazes), config.episodes_per_maze, [float(t) for t in config.ts]
    shape = (len(vecs), len(ts), r, k)
    names = ("reached_cheese", "reached_top_right", "rollout_steps", "timed_out")
    out = {key: np.full(shape, np.nan) for key in names}
    groups = _rollout_groups(config.rollout_ts, len(vecs)) if r else []
    if groups:
        base = config.seeds()["rollout"]
        seeds = [s for m in mazes for s in episode_seeds(base, m.level_seed, k)]
        ds = rollout(
            policy,
            [m for m in mazes for _ in range(k)] * len(groups),
            steering=_rollout_steering(hook, vecs, groups, r, per_maze, k),
            max_steps=config.rollout_max_steps,
            seed=seeds * len(groups),
        )
        outcome = ds["outcome"].values.reshape(len(groups), r, k)
        steps = ds["steps"].values.reshape(len(groups), r, k).astype(float)
        for g, (vi, t) in enumerate(groups):
            at = (slice(None) if vi is None else vi, ts.index(t))  # the baseline serves both
            for key, name in _OUTCOMES:
                out[key][at] = outcome[g] == name
            out["rollout_steps"][at] = steps[g]
    dims = ("vector", "t", "maze", "episode")
    return xr.Dataset(
        {key: (dims, v) for key, v in out.items()},
        coords={"maze": np.arange(r), "episode": np.arange(k)},
    )


def _rollout_groups(rollout_ts: Sequence[float], n_vectors: int) -> list[tuple[int | None, float]]:
    """The rollout's groups of envs: ``(vector index, t)``, first ``(None, 0.0)`` (unsteered)."""
    groups: list[tuple[int | None, float]] = [(None, 0.0)] if 0.0 in rollout_ts else []
    return groups + [(vi, float(t)) for vi in range(n_vectors) for t in rollout_ts if t != 0]


def _rollout_steering(
    hook: str,
    vecs: Mapping[str, Tensor],
    groups: Sequence[tuple[int | None, float]],
    r: int,
    per_maze: bool,
    k: int = 1,
) -> list[Steering]:
    """Every vector at ``hook`` with per-env coefficients: group g's ``r · k`` envs (maze-major,
    ``k`` episodes each) get its t."""
    n = r * k
    coeffs = np.zeros((len(vecs), len(groups) * n), dtype=np.float32)
    for g, (vi, t) in enumerate(groups):
        if vi is not None:
            coeffs[vi, g * n : (g + 1) * n] = t
    return [
        Steering(
            hook,
            tile_rows(v[:r].repeat_interleave(k, dim=0), len(groups)) if per_maze else v,
            torch.from_numpy(coeffs[i]),
            per_env=per_maze,
        )
        for i, v in enumerate(vecs.values())
    ]


# --------------------------------------------------------------------------------------------
# Vector fields
# --------------------------------------------------------------------------------------------


def vector_fields(
    policy: nn.Module, mazes: StudyMazes, vectors: StudyVectors, config: StudyConfig
) -> xr.Dataset:
    """Direction probabilities at every mouse cell of the first ``field_mazes``, per vector and t.

    Steered at the steering layer; with per-maze vectors, example maze i by its own vector.
    Mazes have different numbers of cells and state bytes: ``field_cells`` is padded with -1,
    ``field_probs`` with NaN, ``field_state`` with 0 (``field_state_len`` holds each length).
    """
    examples, field_ts = mazes.states[: config.field_mazes], config.field_ts
    vecs = vectors.applied(config.hook)
    fields = [
        _field_probs(policy, m, config.hook, vecs, i, field_ts, vectors.per_maze)
        for i, m in enumerate(examples)
    ]
    n_f, n_t = len(examples), len(field_ts)
    raws = [np.frombuffer(m.to_bytes(), dtype=np.uint8) for m in examples]
    n_cell = max([len(c) for c, _ in fields], default=0)
    cells = np.full((n_f, n_cell, 2), -1, dtype=np.int64)
    probs = np.full((len(vecs), n_f, n_t, n_cell, 5), np.nan)
    state = np.zeros((n_f, max([len(r) for r in raws], default=0)), dtype=np.uint8)
    for i, ((c, p), raw) in enumerate(zip(fields, raws)):
        cells[i, : len(c)] = c
        probs[:, i, :, : len(c)] = p
        state[i, : len(raw)] = raw
    return xr.Dataset(
        {
            "field_cells": (("field_maze", "field_cell", "cell"), cells),
            "field_probs": (("vector", "field_maze", "field_t", "field_cell", "direction"), probs),
            "field_state": (("field_maze", "state_byte"), state),
            "field_state_len": (("field_maze",), np.array([len(r) for r in raws], dtype=np.int64)),
        },
        coords={
            "vector": list(vecs),
            "field_t": np.asarray(field_ts, dtype=np.float64),
            "cell": ["row", "col"],
            "direction": list(DIRECTION_NAMES),
        },
    )


def _field_probs(
    policy: nn.Module,
    maze: MazeState,
    hook: str,
    vecs: Mapping[str, Tensor],
    i: int,
    field_ts: Sequence[float],
    per_maze: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Example maze ``i``: its cells ``(C, 2)`` and direction probabilities ``(vector, t, C, 5)``."""
    obs, cells = observations_at_every_cell(maze)
    x, c, n_t = obs_to_tensor(obs, device=model_device(policy)), len(cells), len(field_ts)
    probs = np.zeros((len(vecs), n_t, c, 5), dtype=np.float64)
    coeffs = torch.tensor(np.repeat(np.asarray(field_ts, dtype=np.float32), c))
    for vi, vec in enumerate(vecs.values()):
        v = vec[i] if per_maze else vec
        with torch.no_grad(), steer(policy, hook, v, coeffs):
            p = direction_probs(policy(x.repeat(n_t, 1, 1, 1)))
        probs[vi] = p.double().cpu().numpy().reshape(n_t, c, 5)
    return np.asarray(cells, dtype=np.int64).reshape(-1, 2), probs
