"""The one-command study: vectors, sweep over t, nonlinearity per depth, behaviour, later layers.

:func:`run_study` turns a :class:`~hookdiff.study.config.StudyConfig` into one run folder:

1. the policy (``checkpoint``, else the shipped agent, else a seeded random-init policy, flagged
   as untrained everywhere), the studied mazes (with a decision square), and the cheese and
   top-right vectors at every candidate hook point: by default each maze's own (the published
   batch protocol, ``vectors_from="same_maze"``), or one mean vector from seeded pairs;
2. the later layer: each candidate vector's steering effect at the published coefficients
   (cheese t = −1: drop of P(toward cheese); top-right t = +1: rise of P(toward top-right)) at
   the decision squares; the latest candidate within ``later_tolerance`` of the best is kept;
3. at the steering layer and at the later layer ("sites"): the nonlinearity of diff(t) per
   downstream depth (:mod:`hookdiff.analysis`) at the decision-square and start observations,
   the decision-square probabilities at every t, and steered rollouts (every vector and
   coefficient batched into one rollout with per-env coefficients);
4. vector fields of example mazes at ``field_ts`` (the data, so figures can be redrawn);
5. one joined ``xarray.Dataset`` over (site, vector, position, t, depth, maze), written as
   netCDF with the config, seeds, package versions and checkpoint hash as attrs, plus
   ``run.json``, the figures and the report.

Everything is seeded (the same config gives an identical dataset); every file is written to a
temporary name and moved into place, so an interrupted run leaves no half-written file, and a
rerun starts the computation over and replaces the outputs.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import Tensor, nn
from tqdm.auto import tqdm

from hookdiff._io import atomic_write, package_versions, remove_stale_temporaries, write_json
from hookdiff.agent import (
    ImpalaPolicy,
    checkpoint_sha256,
    default_checkpoint_path,
    directions,
    load_checkpoint,
    load_default,
    obs_to_tensor,
)
from hookdiff.hooks import steer
from hookdiff.maze import (
    decision_square,
    observations_at_every_cell,
    render,
    sample_mazes,
    start_cell,
    with_mouse,
)
from hookdiff.maze.edit import top_right_corridor
from hookdiff.maze.state import MazeState
from hookdiff.rollout import Steering, decision_square_probs, rollout
from hookdiff.study.config import StudyConfig
from hookdiff.vectors import activations_from_obs, cheese_vector, top_right_vector

__all__ = [
    "DATASET_NAME",
    "POSITIONS",
    "SITES",
    "VECTORS",
    "load_policy",
    "run_study",
    "study_dataset",
]

#: File name of the dataset inside a run folder.
DATASET_NAME = "study.nc"
#: The two steering vectors, in the order of the ``vector`` coordinate.
VECTORS = ("cheese", "top_right")
#: Where the nonlinearity is measured: mouse on the decision square, mouse at the start.
POSITIONS = ("decision_square", "start")
#: The two studied hook points: the steering layer and the selected later layer.
SITES = ("steering", "later")
#: The published coefficient at which each vector's steering effect is measured.
EFFECT_T = {"cheese": -1.0, "top_right": 1.0}

_WARNING_UNTRAINED = (
    "UNTRAINED AGENT: no checkpoint was given and no agent is shipped, so this study ran on a "
    "seeded random-init policy. Its numbers describe the hook machinery on random weights, not the "
    "behaviour of a trained maze agent. Rerun with --checkpoint PATH."
)


# --------------------------------------------------------------------------------------------
# Policy
# --------------------------------------------------------------------------------------------


def load_policy(config: StudyConfig) -> tuple[ImpalaPolicy, dict[str, Any]]:
    """The policy the study runs on, and a description of it (recorded with the results).

    ``config.checkpoint`` if given; else the shipped agent; else (no agent shipped) a seeded
    random-init policy of ``config.random_init_scale`` with ``untrained=1`` and a warning.

    Returns:
        ``(policy, info)`` with ``info`` keys ``agent``, ``checkpoint``, ``checkpoint_sha256``,
        ``untrained`` (0/1) and ``warning``.
    """
    if config.checkpoint is not None:
        path = Path(config.checkpoint)
        policy = load_checkpoint(path)
        info = {"agent": f"checkpoint {path.name}", "checkpoint": str(path)}
        info["checkpoint_sha256"] = checkpoint_sha256(path)
        return policy.eval(), {**info, "untrained": 0, "warning": ""}
    try:
        policy = load_default()
    except FileNotFoundError:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seeds()["policy_init"])
            policy = ImpalaPolicy(scale=config.random_init_scale).eval()
        warnings.warn(_WARNING_UNTRAINED, stacklevel=2)
        return policy, {
            "agent": f"random-init ImpalaPolicy(scale={config.random_init_scale}), "
            f"torch seed {config.seeds()['policy_init']}",
            "checkpoint": "",
            "checkpoint_sha256": "",
            "untrained": 1,
            "warning": _WARNING_UNTRAINED,
        }
    path = default_checkpoint_path()
    return policy.eval(), {
        "agent": "shipped agent",
        "checkpoint": str(path),
        "checkpoint_sha256": checkpoint_sha256(path),
        "untrained": 0,
        "warning": "",
    }


# --------------------------------------------------------------------------------------------
# Mazes and vectors
# --------------------------------------------------------------------------------------------


def _study_mazes(config: StudyConfig) -> list[MazeState]:
    """The studied mazes: the first ``n_mazes`` of ``maze_spec`` from the seed.

    With ``vectors_from="same_maze"`` each maze must also make both pairs (cheese off the start,
    room for the top-right corridor), so mazes filling the world are skipped.
    """
    seed = config.seeds()["mazes"]
    if config.vectors_from != "same_maze":
        return sample_mazes(config.maze_spec, config.n_mazes, seed=seed)
    want = config.n_mazes
    for _ in range(20):
        cands = sample_mazes(config.maze_spec, want, seed=seed)  # a prefix-stable sequence
        ok = [s for s in cands if _makes_pairs(s)]
        if len(ok) >= config.n_mazes:
            return ok[: config.n_mazes]
        want = 2 * want
    raise RuntimeError(
        f"maze spec {config.maze_spec!r} gives too few mazes with room for the top-right corridor; "
        f"use vectors_from='pairs' or another spec"
    )


def _makes_pairs(state: MazeState) -> bool:
    """Whether both vector pairs can be made from ``state``."""
    return (
        state.cheese is not None
        and state.cheese != start_cell(state)
        and bool(top_right_corridor(state))
    )


def _vector_mazes(config: StudyConfig) -> list[MazeState]:
    """Seeded mazes of ``vector_spec`` that make valid pairs for both vectors (``"pairs"`` mode)."""
    seed = config.seeds()["vector_mazes"]
    out: list[MazeState] = []
    want = config.vector_pairs
    batch = 0
    while len(out) < want:
        cands = sample_mazes(config.vector_spec, 4 * want, seed=seed + batch * 4 * want)
        out.extend([s for s in cands if _makes_pairs(s)][: want - len(out)])
        batch += 1
        if batch > 50:
            raise RuntimeError(f"spec {config.vector_spec!r} gives too few mazes with valid pairs")
    return out


def _pair_vectors(
    policy: nn.Module, mazes: Sequence[MazeState], hooks: Sequence[str]
) -> dict[str, dict[str, Tensor]]:
    """``{hook: {"cheese": V, "top_right": V}}``: every maze's own vector, stacked ``(N, ...)``."""
    return {
        h: {
            "cheese": cheese_vector(policy, mazes, h, per_maze=True),
            "top_right": top_right_vector(policy, mazes, h, per_maze=True),
        }
        for h in hooks
    }


def _applied(
    pair_vectors: dict[str, dict[str, Tensor]], same_maze: bool
) -> dict[str, dict[str, Tensor]]:
    """The vectors that steer: per maze ``(N, ...)`` (same_maze) or the pairs' mean."""
    return {
        h: {name: v if same_maze else v.mean(dim=0) for name, v in vecs.items()}
        for h, vecs in pair_vectors.items()
    }


def _mean_norm(v: Tensor, per_maze: bool) -> float:
    """‖v‖, or the mean of the per-maze norms."""
    return float(v.flatten(1).norm(dim=1).mean() if per_maze else v.norm())


# --------------------------------------------------------------------------------------------
# Behaviour
# --------------------------------------------------------------------------------------------


def _ds_probs(
    policy: nn.Module,
    mazes: Sequence[MazeState],
    hook: str,
    vecs: dict[str, Tensor],
    ts: Sequence[float],
) -> tuple[np.ndarray, np.ndarray]:
    """P(toward cheese), P(toward top-right) at the decision squares: ``(vector, t, maze)``.

    Every coefficient of one vector runs in one batch (per-env coefficients, coefficient-major);
    per-maze vectors ``(N, ...)`` are tiled over the coefficients by the steering hook.
    """
    n, k = len(mazes), len(ts)
    cheese = np.zeros((len(VECTORS), k, n))
    corner = np.zeros((len(VECTORS), k, n))
    coeffs = torch.tensor(np.repeat(np.asarray(ts, dtype=np.float32), n))
    for vi, name in enumerate(VECTORS):
        ds = decision_square_probs(
            policy, list(mazes) * k, steering=[Steering(hook, vecs[name], coeffs)]
        )
        cheese[vi] = ds["p_toward_cheese"].values.reshape(k, n)
        corner[vi] = ds["p_toward_top_right"].values.reshape(k, n)
    return cheese, corner


def _rollouts(
    policy: nn.Module,
    mazes: Sequence[MazeState],
    hook: str,
    vecs: dict[str, Tensor],
    ts: Sequence[float],
    rollout_ts: Sequence[float],
    max_steps: int,
    seed: int,
    per_maze: bool,
) -> dict[str, np.ndarray]:
    """Steered rollouts of every (vector, t ≠ 0) and one t = 0 baseline, in ONE rollout call.

    ``per_maze``: ``vecs`` hold one vector per maze (the first ``len(mazes)`` are used).

    Returns ``reached_cheese``, ``reached_top_right``, ``timeout``, ``steps`` as float arrays
    ``(vector, t, maze)`` over the full ``ts`` grid (NaN where not rolled out; the t = 0 baseline
    is shared by both vectors).
    """
    r = len(mazes)
    shape = (len(VECTORS), len(ts), r)
    out = {k: np.full(shape, np.nan) for k in ("reached_cheese", "reached_top_right", "timeout")}
    out["steps"] = np.full(shape, np.nan)
    if r == 0 or not rollout_ts:
        return out
    t_index = {float(t): i for i, t in enumerate(ts)}
    groups: list[tuple[int | None, float]] = [(None, 0.0)] if 0.0 in rollout_ts else []
    groups += [(vi, float(t)) for vi in range(len(VECTORS)) for t in rollout_ts if t != 0]
    states: list[MazeState] = []
    coeffs = np.zeros((len(VECTORS), len(groups) * r), dtype=np.float32)
    for g, (vi, t) in enumerate(groups):
        states.extend(mazes)
        if vi is not None:
            coeffs[vi, g * r : (g + 1) * r] = t
    steering = [
        Steering(
            hook,
            _tile(vecs[v][:r], len(groups)) if per_maze else vecs[v],
            torch.from_numpy(coeffs[i]),
            per_env=per_maze,
        )
        for i, v in enumerate(VECTORS)
    ]
    ds = rollout(policy, states, steering=steering, max_steps=max_steps, seed=seed)
    outcome = ds["outcome"].values.reshape(len(groups), r)
    steps = ds["steps"].values.reshape(len(groups), r).astype(float)
    for g, (vi, t) in enumerate(groups):
        for v in range(len(VECTORS)) if vi is None else [vi]:
            ti = t_index[t]
            out["reached_cheese"][v, ti] = outcome[g] == "cheese"
            out["reached_top_right"][v, ti] = outcome[g] == "top_right"
            out["timeout"][v, ti] = outcome[g] == "timeout"
            out["steps"][v, ti] = steps[g]
    return out


def _tile(v: Tensor, k: int) -> Tensor:
    """``k`` copies of the stacked vectors ``v`` along dim 0 (row i holds ``v[i % len(v)]``)."""
    return v.repeat((k,) + (1,) * (v.ndim - 1))


# --------------------------------------------------------------------------------------------
# Nonlinearity (hookdiff.analysis)
# --------------------------------------------------------------------------------------------

#: Analysis variables with a dimension the study does not join over (long formats, helpers).
_DROP_DIMS = {"breakpoint", "dep_layer"}


def analyse(
    policy: nn.Module,
    acts: Tensor,
    hook: str,
    vector: Tensor,
    ts: Sequence[float],
    *,
    threshold: float,
    breakpoints: bool,
    max_rows: int,
    max_pieces: int,
    breakpoint_mazes: int | None = None,
    seed: int,
) -> xr.Dataset:
    """The analysis of diff(t) per downstream depth, with dim ``sample`` renamed ``maze``.

    Calls ``hookdiff.analysis.nonlinearity`` (issue 7). Variables in long format (one row per
    breakpoint) are dropped; everything over (maze, t, depth, t_pos, layer, t_bin, ...) is kept.
    """
    from hookdiff.analysis import nonlinearity

    # float64 copy: the exact walk's crossings are then free of float32 rounding (issue 7)
    policy64 = copy.deepcopy(policy).double()
    ds = nonlinearity(
        policy64,
        acts.double(),
        hook,
        vector.double(),
        list(ts),
        threshold=threshold,
        breakpoints=breakpoints,
        max_rows=max_rows,
        max_pieces=max_pieces,
        breakpoint_samples=breakpoint_mazes,
        seed=seed,
    )
    keep = [v for v in ds.data_vars if not set(ds[v].dims) & _DROP_DIMS]
    ds = ds[keep]
    ds = ds.drop_vars([c for c in ds.coords if set(ds[c].dims) & _DROP_DIMS])
    return ds.rename({"sample": "maze"}).assign_coords(maze=np.arange(acts.shape[0]))


# --------------------------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------------------------


class _Progress:
    """One tqdm bar over the study's steps, plus wall time per step (for run.json)."""

    def __init__(self, total: int, enabled: bool):
        self.bar = tqdm(total=total, desc="hookdiff study", unit="step", disable=not enabled)
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.bar.set_postfix_str(name)
        t0 = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - t0, 3)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _candidate_effects(
    policy: nn.Module,
    mazes: Sequence[MazeState],
    vectors: dict[str, dict[str, Tensor]],
    hooks: Sequence[str],
    per_maze: bool,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate and vector: the mean steering effect at the published coefficient.

    Cheese (t = −1): mean drop of P(toward cheese); top-right (t = +1): mean rise of
    P(toward top-right). Returns ``(effect (candidate, vector), norms (candidate, vector))``
    (with ``per_maze`` vectors, maze i is steered by ``vectors[h][name][i]``; norms are means).
    """
    base = decision_square_probs(policy, mazes)
    b_cheese = base["p_toward_cheese"].values
    b_corner = base["p_toward_top_right"].values
    effect = np.zeros((len(hooks), len(VECTORS)))
    norms = np.zeros((len(hooks), len(VECTORS)))
    for hi, h in enumerate(tqdm(hooks, desc="candidate layers", leave=False, disable=not progress)):
        for vi, name in enumerate(VECTORS):
            v = vectors[h][name]
            norms[hi, vi] = _mean_norm(v, per_maze)
            st = decision_square_probs(policy, mazes, steering=[Steering(h, v, EFFECT_T[name])])
            if name == "cheese":
                effect[hi, vi] = float(np.mean(b_cheese - st["p_toward_cheese"].values))
            else:
                effect[hi, vi] = float(np.mean(st["p_toward_top_right"].values - b_corner))
    return effect, norms


def pick_later(
    hooks: Sequence[str], effect: np.ndarray, tolerance: float
) -> tuple[str, np.ndarray]:
    """The latest candidate whose score (mean effect of both vectors) is within ``tolerance``.

    "Within 10% of the best" means ``score >= best - tolerance·|best|``; candidates are compared
    in the model's forward order as given.

    Returns:
        ``(hook, scores)``.
    """
    scores = effect.mean(axis=1)
    best = float(np.max(scores))
    ok = np.flatnonzero(scores >= best - tolerance * abs(best))
    return hooks[int(ok[-1])], scores


def _field_data(
    policy: nn.Module,
    mazes: Sequence[MazeState],
    hook: str,
    vecs: dict[str, Tensor],
    field_ts: Sequence[float],
    per_maze: bool,
) -> dict[str, Any]:
    """Direction probabilities at every mouse cell of each example maze, per vector and t.

    ``per_maze``: example maze i is steered by ``vecs[name][i]`` (its own vector).
    """
    n_f, n_t = len(mazes), len(field_ts)
    cells_all, probs_all, raws = [], [], []
    for i, m in enumerate(mazes):
        obs, cells = observations_at_every_cell(m)
        x = obs_to_tensor(obs)
        c = len(cells)
        probs = np.zeros((len(VECTORS), n_t, c, 5), dtype=np.float64)
        coeffs = torch.tensor(np.repeat(np.asarray(field_ts, dtype=np.float32), c))
        for vi, name in enumerate(VECTORS):
            v = vecs[name][i] if per_maze else vecs[name]
            with torch.no_grad(), steer(policy, hook, v, coeffs):
                p = directions(policy(x.repeat(n_t, 1, 1, 1)))
            probs[vi] = p.double().numpy().reshape(n_t, c, 5)
        cells_all.append(np.asarray(cells, dtype=np.int64).reshape(-1, 2))
        probs_all.append(probs)
        raws.append(np.frombuffer(m.to_bytes(), dtype=np.uint8))
    n_cell = max([len(c) for c in cells_all], default=0)
    n_byte = max([len(r) for r in raws], default=0)
    cells = np.full((n_f, n_cell, 2), -1, dtype=np.int64)
    probs = np.full((len(VECTORS), n_f, n_t, n_cell, 5), np.nan)
    state = np.zeros((n_f, n_byte), dtype=np.uint8)
    for i in range(n_f):
        c = len(cells_all[i])
        cells[i, :c] = cells_all[i]
        probs[:, i, :, :c] = probs_all[i]
        state[i, : len(raws[i])] = raws[i]
    return {
        "field_cells": (("field_maze", "field_cell", "cell"), cells),
        "field_probs": (("vector", "field_maze", "field_t", "field_cell", "direction"), probs),
        "field_state": (("field_maze", "state_byte"), state),
        "field_state_len": (("field_maze",), np.array([len(r) for r in raws], dtype=np.int64)),
    }


def study_dataset(config: StudyConfig, *, progress: bool = True) -> xr.Dataset:
    """Compute the study (everything but writing files) and return the joined Dataset.

    Args:
        config: the study's configuration.
        progress: show tqdm progress bars.

    Returns:
        The Dataset documented in :mod:`hookdiff.study` (``STUDY_VARIABLES``).
    """
    config = config.validate()
    seeds = config.seeds()
    prog = _Progress(total=7, enabled=progress)
    threads_before = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        with prog.step("policy"):
            policy, info = load_policy(config)
        hooks = list(dict.fromkeys([config.hook, *config.later_candidates]))
        order = {n: i for i, n in enumerate(policy.hook_names)}
        unknown = [h for h in hooks if h not in order]
        if unknown:
            raise ValueError(
                f"unknown hook points {unknown}: expected names from policy.hook_names, "
                f"e.g. {config.hook!r}"
            )
        candidates = sorted(dict.fromkeys(config.later_candidates), key=order.__getitem__)

        same_maze = config.vectors_from == "same_maze"
        with prog.step("mazes"):
            mazes = _study_mazes(config)
            squares = [decision_square(m) for m in mazes]
            if any(s is None for s in squares):
                raise ValueError(
                    f"maze spec {config.maze_spec!r} gives mazes without a decision square; use a "
                    f"spec with require_decision_square (e.g. 'eval-decision-square')"
                )
            obs = {
                "decision_square": obs_to_tensor(
                    render([with_mouse(m, s) for m, s in zip(mazes, squares)])
                ),
                "start": obs_to_tensor(render([with_mouse(m, start_cell(m)) for m in mazes])),
            }
        with prog.step("vectors"):
            vmazes = mazes if same_maze else _vector_mazes(config)
            pair_vectors = _pair_vectors(policy, vmazes, hooks)
            vectors = _applied(pair_vectors, same_maze)
        with prog.step("later layer"):
            effect, cand_norms = _candidate_effects(
                policy, mazes, vectors, candidates, same_maze, progress
            )
            later, scores = pick_later(candidates, effect, config.later_tolerance)
        site_hooks = {"steering": config.hook, "later": later}

        parts = []
        with prog.step("nonlinearity"):
            bar = tqdm(
                total=len(SITES) * len(VECTORS) * len(POSITIONS),
                desc="nonlinearity",
                leave=False,
                disable=not progress,
            )
            by_hook: dict[str, xr.Dataset] = {}  # the later layer may be the steering layer
            for site in SITES:
                h = site_hooks[site]
                if h in by_hook:
                    parts.append(by_hook[h])
                    bar.update(len(VECTORS) * len(POSITIONS))
                    continue
                acts = {p: activations_from_obs(policy, obs[p], h) for p in POSITIONS}
                per_vec = []
                for name in VECTORS:
                    per_pos = []
                    for p in POSITIONS:
                        per_pos.append(
                            analyse(
                                policy,
                                acts[p],
                                h,
                                vectors[h][name],
                                config.ts,
                                threshold=config.threshold,
                                breakpoints=config.breakpoints,
                                max_rows=config.max_rows,
                                max_pieces=config.max_pieces,
                                breakpoint_mazes=config.breakpoint_mazes,
                                seed=seeds["analysis"],
                            )
                        )
                        bar.update(1)
                    per_vec.append(_concat(per_pos, "position", list(POSITIONS)))
                by_hook[h] = _concat(per_vec, "vector", list(VECTORS))
                parts.append(by_hook[h])
            bar.close()
            nonlin = _concat(parts, "site", list(SITES))

        beh: dict[str, list[np.ndarray]] = {}
        with prog.step("behaviour"):
            for site in SITES:
                h = site_hooks[site]
                if site != SITES[0] and h == site_hooks[SITES[0]]:  # same layer: same numbers
                    for arrs in beh.values():
                        arrs.append(arrs[0])
                    continue
                pc, pt = _ds_probs(policy, mazes, h, vectors[h], config.ts)
                roll = _rollouts(
                    policy,
                    mazes[: config.rollout_mazes],
                    h,
                    vectors[h],
                    config.ts,
                    config.rollout_ts,
                    config.rollout_max_steps,
                    seeds["rollout"],
                    same_maze,
                )
                for key, arr in [
                    ("p_toward_cheese", pc),
                    ("p_toward_top_right", pt),
                    *roll.items(),
                ]:
                    if arr.shape[-1] < len(mazes):  # rollouts cover the first rollout_mazes
                        pad = np.full(arr.shape[:-1] + (len(mazes) - arr.shape[-1],), np.nan)
                        arr = np.concatenate([arr, pad], axis=-1)
                    beh.setdefault(key, []).append(arr)
        with prog.step("vector fields"):
            fields = _field_data(
                policy,
                mazes[: config.field_mazes],
                config.hook,
                vectors[config.hook],
                config.field_ts,
                same_maze,
            )
    finally:
        prog.close()
        torch.set_num_threads(threads_before)

    data: dict[str, Any] = {
        f"behaviour_{k}" if k in ("steps", "timeout") else k: (
            ("site", "vector", "t", "maze"),
            np.stack(v),
        )
        for k, v in beh.items()
    }
    data["rollout_steps"] = data.pop("behaviour_steps")
    data["timed_out"] = data.pop("behaviour_timeout")
    data["site_hook"] = (("site",), np.array([site_hooks[s] for s in SITES], dtype=str))
    data["vector_norm"] = (
        ("site", "vector"),
        np.array(
            [[_mean_norm(vectors[site_hooks[s]][v], same_maze) for v in VECTORS] for s in SITES]
        ),
    )
    data["candidate_effect"] = (("candidate", "vector"), effect)
    data["candidate_score"] = (("candidate",), scores)
    data["candidate_vector_norm"] = (("candidate", "vector"), cand_norms)
    for s in SITES:  # every pair's own vector (float32, as computed); the study steers with
        # the same maze's (same_maze) or their mean (pairs)
        pv = pair_vectors[site_hooks[s]]
        v = np.stack([pv[n].flatten(1).numpy() for n in VECTORS])
        data[f"vector_{s}"] = (("vector", "vector_maze", f"{s}_feature"), v)
    data["decision_square"] = (("maze", "cell"), np.array(squares, dtype=np.int64))
    data["level_seed"] = (("maze",), np.array([m.level_seed for m in mazes], dtype=np.int64))
    data["maze_dim"] = (("maze",), np.array([m.maze_dim for m in mazes], dtype=np.int64))
    data["vector_level_seed"] = (
        ("vector_maze",),
        np.array([m.level_seed for m in vmazes], dtype=np.int64),
    )
    data.update(fields)
    ds = xr.Dataset(
        data,
        coords={
            "site": list(SITES),
            "vector": list(VECTORS),
            "t": np.asarray(config.ts, dtype=np.float64),
            "maze": np.arange(len(mazes)),
            "candidate": list(candidates),
            "cell": ["row", "col"],
            "field_t": np.asarray(config.field_ts, dtype=np.float64),
            "direction": ["left", "down", "up", "right", "none"],
        },
    )
    ds = xr.merge([nonlin, ds], compat="override", join="outer", combine_attrs="drop")
    ds.attrs = {
        "title": "hookdiff study: nonlinearity of steering tied to behaviour",
        "config": config.to_json(),
        "seeds": json.dumps(seeds, sort_keys=True),
        "versions": json.dumps(package_versions(), sort_keys=True),
        "agent": info["agent"],
        "checkpoint": info["checkpoint"],
        "checkpoint_sha256": info["checkpoint_sha256"],
        "untrained": int(info["untrained"]),
        "warning": info["warning"],
        "steering_hook": config.hook,
        "later_hook": later,
        "threshold": float(config.threshold),
        "vectors_from": config.vectors_from,
        "effect_t": json.dumps(EFFECT_T),
    }
    ds.attrs["timings"] = json.dumps(prog.timings)  # removed before writing: not reproducible
    return ds


def _concat(parts: Sequence[xr.Dataset], dim: str, labels: Sequence[str]) -> xr.Dataset:
    """Stack Datasets along a new labelled dim; depths/layers missing from a part become NaN.

    The union of each ordered coordinate (``depth``, ``layer``) keeps forward order (the order of
    first appearance: the steering site comes first and holds every later site's depths).
    """
    parts = list(parts)
    for name in ("depth", "layer"):
        union: list[Any] = []
        for p in parts:
            if name in p.indexes:
                union.extend(x for x in p[name].values.tolist() if x not in union)
        if union:
            parts = [p.reindex({name: union}) if name in p.indexes else p for p in parts]
    return xr.concat(
        parts,
        dim=xr.DataArray(list(labels), dims=dim, name=dim),
        join="outer",
        combine_attrs="drop",
        fill_value=np.nan,
        coords="minimal",
        compat="override",
    )


def write_dataset(ds: xr.Dataset, path: Path) -> None:
    """Write ``ds`` as netCDF (h5netcdf) atomically."""
    with atomic_write(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")


def load_dataset(run_dir: str | os.PathLike[str]) -> xr.Dataset:
    """The study dataset of a run folder, loaded into memory (the file is closed).

    Example:
        >>> ds = load_dataset("runs/study")  # doctest: +SKIP
    """
    path = Path(run_dir) / DATASET_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: {run_dir} is not a finished study run folder "
            f"(run `hookdiff study --out {run_dir}` first)"
        )
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def run_study(config: StudyConfig, *, progress: bool = True) -> Path:
    """Run the study and write its run folder; returns the folder.

    Writes ``study.nc`` (the joined dataset), ``run.json`` (config, seeds, versions, checkpoint
    hash, timings, headline numbers), ``figures/*.png`` and ``report.md`` / ``report.html``. Each
    file is written atomically; stale temporary files of an interrupted run are removed first.

    Args:
        config: the study's configuration (``config.out_dir`` is the run folder).
        progress: show tqdm progress bars.

    Example:
        >>> run_dir = run_study(quick_config())  # doctest: +SKIP
    """
    from hookdiff.study.figures import draw_figures
    from hookdiff.study.report import summarize, write_report

    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    t0 = time.perf_counter()
    ds = study_dataset(config, progress=progress)
    timings = json.loads(ds.attrs.pop("timings"))
    write_dataset(ds, out / DATASET_NAME)
    t_figs = time.perf_counter()
    figures = draw_figures(ds, out)
    timings["figures"] = round(time.perf_counter() - t_figs, 3)
    summary = summarize(ds)
    write_report(ds, out, figures, summary)
    timings["total"] = round(time.perf_counter() - t0, 3)
    run = {
        "config": json.loads(ds.attrs["config"]),
        "seeds": json.loads(ds.attrs["seeds"]),
        "versions": json.loads(ds.attrs["versions"]),
        "agent": ds.attrs["agent"],
        "checkpoint": ds.attrs["checkpoint"],
        "checkpoint_sha256": ds.attrs["checkpoint_sha256"],
        "untrained": bool(ds.attrs["untrained"]),
        "warning": ds.attrs["warning"],
        "steering_hook": ds.attrs["steering_hook"],
        "later_hook": ds.attrs["later_hook"],
        "timings_s": timings,
        "files": [
            DATASET_NAME,
            "report.md",
            "report.html",
            *[f"figures/{f.name}" for f in figures],
        ],
        "summary": summary,
    }
    write_json(json.loads(json.dumps(run, sort_keys=True, default=_json_default)), out / "run.json")
    return out


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
