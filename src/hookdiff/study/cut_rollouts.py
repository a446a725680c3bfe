"""The localisation's answer tested in behaviour: rollouts at ±t with the network cut at the
cuts that matter.

:func:`rollout_cuts` reads the cuts from the joined scan (where the asymmetry is created, the cut
before it, the logits); :func:`localise_rollouts` rolls each maze out from its start at +t, −t
and 0 under every chosen (variant, cut), ``episodes_per_maze`` episodes each. Episode e of a
maze has its own sampling seed (:func:`episode_seeds`), the same at +t, −t and 0, under every
cut and in the exact rollouts (common random numbers), so a maze's rollouts depend on the block
it runs in only through the float rounding of a batched forward, and its reach rates are paired
across conditions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import xarray as xr
from torch import Tensor, nn

from hookdiff.analysis import valid_cuts
from hookdiff.claim import ALPHA
from hookdiff.maze.state import MazeState
from hookdiff.rollout import Steering, rollout
from hookdiff.stats import bootstrap_mean
from hookdiff.study.config import StudyConfig, closest_to_one
from hookdiff.study.inputs import StudyMazes, StudyVectors
from hookdiff.study.schema import CUT_READOUT, REACH_TARGETS, SIGNS
from hookdiff.study.select import creation_cut, scan_tests, t_loc_one

__all__ = [
    "BASE_OUTCOMES",
    "ROLL_OUTCOMES",
    "cut_rollout",
    "cut_rollouts_of",
    "episode_seeds",
    "localise_cut_rollouts",
    "localise_rollouts",
    "maze_seed",
    "roll_t",
    "rollout_cuts",
]

#: The reach outcomes recorded by :func:`localise_rollouts` (variable name, rollout outcome).
ROLL_OUTCOMES = tuple((f"loc_roll_{var}", target) for target, var in REACH_TARGETS.items())
#: The same outcomes of the t = 0 arm of each cut condition (variable name, rollout outcome).
BASE_OUTCOMES = tuple((f"loc_roll_base_{var}", target) for target, var in REACH_TARGETS.items())


def rollout_cuts(scan: xr.Dataset, seed: int, margin: float | None = None) -> dict[str, list[str]]:
    """Per vector, the cuts whose cut network is rolled out, in forward order.

    Read from the symmetrised scan of the margin (the target log-odds linearised in the logits,
    whose even part is 0 once the logits are symmetrised) at the ``t_loc`` closest to 1, by the
    rule of the answer's creation cut (:func:`hookdiff.study.select.scan_tests`,
    :func:`~hookdiff.study.select.creation_cut`; ``margin``: the equivalence margin's fraction
    of the exact |E|, default the config's): the cut where the asymmetry is created (from it on
    every cut's E is equivalent to 0, Holm-adjusted TOST), the cut just before it (E still
    there) and the logits (the softmax-only test). Those three put the scan's claim to a behavioural test:
    cutting before the creation cut should keep the add/subtract asymmetry of reaching the
    target, cutting at it should remove it, and cutting at the logits shows what the softmax
    alone does. Without a creation cut (the last cut not shown equivalent to 0): the first cut
    and the logits; without an exact E different from 0: the logits only.
    """
    t, cuts = t_loc_one(scan), [str(c) for c in scan["cut"].values]
    out = {}
    for vector in [str(v) for v in scan["vector"].values]:
        e = scan["loc_even"].sel(control="vector", vector=vector, readout=CUT_READOUT, t_loc=t)
        tests = scan_tests(scan, vector, seed, margin)
        p_exact = float(tests.p_zero_exact.sel(readout=CUT_READOUT, t_loc=t))
        if not (bootstrap_mean(e.values, seed=seed).excludes(0.0) and p_exact < ALPHA):
            out[vector] = [cuts[-1]]
            continue
        first, _ = creation_cut(tests.equivalent("symmetrize", CUT_READOUT, t))
        picked = [0] if first is None else [max(first - 1, 0), first]
        out[vector] = list(dict.fromkeys([cuts[i] for i in picked] + [cuts[-1]]))
    return out


def localise_cut_rollouts(
    policy: nn.Module,
    mazes: StudyMazes,
    vectors: StudyVectors,
    config: StudyConfig,
    scan: xr.Dataset,
) -> xr.Dataset:
    """:func:`localise_rollouts` at the cuts :func:`rollout_cuts` picks from ``scan`` (the
    localisation computed so far, over every studied maze)."""
    cuts = rollout_cuts(scan, config.seeds()["analysis"], config.equivalence_margin)
    return localise_rollouts(policy, mazes, vectors, config, cuts)


def localise_rollouts(
    policy: nn.Module,
    mazes: StudyMazes,
    vectors: StudyVectors,
    config: StudyConfig,
    cuts: Mapping[str, Sequence[str]],
) -> xr.Dataset:
    """Rollouts at +t, −t and 0 with the network cut at ``cuts[vector]`` (:func:`rollout_cuts`).

    t is the ``localise_ts`` closest to 1; each of the first ``localise_rollout_mazes`` rollout
    mazes is rolled out from its start under every chosen (variant, cut), steered by its own
    vector, ``episodes_per_maze`` times (:data:`ROLL_OUTCOMES`: 1 reached, 0 not; NaN where not
    rolled out), with the seeds of :func:`episode_seeds` (shared by its conditions and by the
    exact rollouts). The mazes of one (variant, cut) run in one rollout, as the exact rollouts
    do (:func:`cut_rollouts_of`): each env draws from its own seed, so a maze's episodes do not
    depend on the others but through the float rounding of a batched forward.

    Returns:
        ``loc_roll_reached_cheese``, ``loc_roll_reached_top_right`` and ``loc_roll_steps`` over
        (vector, variant, cut, sign, maze, episode), the t = 0 arm ``loc_roll_base_*`` over
        (vector, variant, cut, maze, episode), on the scan's ``variant`` and ``cut``
        coordinates, and ``loc_roll_cut_chosen`` (vector, cut) recording ``cuts``.
    """
    n, k = len(mazes.states), config.episodes_per_maze
    r = min(config.localise_rollout_mazes, config.rollout_mazes, n)
    variants = list(config.localise_rollout_variants)
    all_cuts = valid_cuts(policy, config.hook, policy.output_hook)
    names = vectors.names
    shape = (len(names), len(variants), len(all_cuts), len(SIGNS), n, k)
    out = {name: np.full(shape, np.nan) for name in _ROLL_NAMES}
    out |= {name: np.full(shape[:3] + shape[4:], np.nan) for name in _BASE_NAMES}
    own = vectors.applied(config.hook)
    seeds = [episode_seeds(config.seeds()["rollout"], s.level_seed, k) for s in mazes.states[:r]]
    for wi, variant in enumerate(variants):
        for ci, cut in enumerate(all_cuts):
            chosen = [j for j, v in enumerate(names) if cut in cuts.get(v, ())]
            if not chosen or not r:
                continue
            vecs = [
                [own[names[j]][i] if vectors.per_maze else own[names[j]] for j in chosen]
                for i in range(r)
            ]
            roll = cut_rollouts_of(
                policy,
                mazes.states[:r],
                config.hook,
                vecs,
                roll_t(config),
                cut,
                variant,
                max_steps=config.rollout_max_steps,
                seeds=seeds,
            )
            for name, values in roll.items():
                out[name][chosen, wi, ci, ..., :r, :] = values
    ds = _roll_dataset(out, names, variants, all_cuts, n, k)
    chosen = [[c in cuts.get(v, ()) for c in all_cuts] for v in names]
    ds["loc_roll_cut_chosen"] = (
        ("vector", "cut"),
        np.array(chosen, dtype=np.int8),
        {
            "long_name": "cut rolled out",
            "description": "1 where the vector's rollouts were "
            "run with the network cut there (rollout_cuts: creation cut, the one before, logits)",
        },
    )
    return ds


def roll_t(config: StudyConfig) -> float:
    """The |t| of the cut rollouts: the ``localise_ts`` closest to 1 (the published |t|;
    :func:`~hookdiff.study.config.closest_to_one`, the lower on a tie)."""
    return closest_to_one(config.localise_ts)


def maze_seed(seed: int, level_seed: int) -> int:
    """A maze's own sampling seed, from the study's rollout seed and the maze's level seed."""
    return int(np.random.SeedSequence([int(seed), int(level_seed)]).generate_state(1)[0])


def episode_seeds(seed: int, level_seed: int, episodes: int) -> list[int]:
    """The sampling seeds of a maze's ``episodes`` episodes, from the study's rollout seed and
    the maze's level seed: the same in every rollout condition (exact, cut; t = −t, 0, +t).

    Example:
        >>> a, b = episode_seeds(2, 43000, 3), episode_seeds(2, 43000, 4)
        >>> a == b[:3], len(set(b)), episode_seeds(2, 43001, 1)[0] in b
        (True, 4, False)
    """
    return [
        int(np.random.SeedSequence([int(seed), int(level_seed), e]).generate_state(1)[0])
        for e in range(episodes)
    ]


#: The variables of :func:`localise_rollouts`: the reach outcomes and the step count, at ±t
#: and in the t = 0 arm.
_ROLL_NAMES = (*(name for name, _ in ROLL_OUTCOMES), "loc_roll_steps")
_BASE_NAMES = (*(name for name, _ in BASE_OUTCOMES), "loc_roll_base_steps")


def cut_rollout(
    policy: nn.Module,
    state: MazeState,
    hook: str,
    vecs: Sequence[Tensor],
    t: float,
    cut: str,
    variant: str,
    *,
    max_steps: int,
    seed: int | Sequence[int],
) -> dict[str, np.ndarray]:
    """One maze rolled out at +t and −t for each of ``vecs`` and at 0, the network cut at ``cut``.

    ``seed``: one seed per episode (an int: one episode). Returns ``{variable: (len(vecs), 2,
    k)}`` over (vector, sign, episode) for :data:`_ROLL_NAMES` and ``{variable: (len(vecs),
    k)}`` for the t = 0 arm's :data:`_BASE_NAMES` (the same row for every vector): the one-maze
    case of :func:`cut_rollouts_of`.
    """
    seeds = [int(seed)] if isinstance(seed, int | np.integer) else [int(x) for x in seed]
    out = cut_rollouts_of(
        policy, [state], hook, [vecs], t, cut, variant, max_steps=max_steps, seeds=[seeds]
    )
    return {name: x[..., 0, :] for name, x in out.items()}


def cut_rollouts_of(
    policy: nn.Module,
    states: Sequence[MazeState],
    hook: str,
    vecs: Sequence[Sequence[Tensor]],
    t: float,
    cut: str,
    variant: str,
    *,
    max_steps: int,
    seeds: Sequence[Sequence[int]],
) -> dict[str, np.ndarray]:
    """Mazes rolled out at +t and −t for each of their vectors and at 0, the network cut at
    ``cut``, in one rollout.

    ``vecs[i]``: maze i's vectors (the same number for every maze); ``seeds[i]``: its k
    episodes' seeds. One rollout of ``m·(2·nv + 1)·k`` envs, maze-major, each maze's envs with
    per-env vectors, coefficients (+t ×k, −t ×k per vector, then the t = 0 arm ×k: the cut
    network with coefficient 0, the same for every vector) and seeds (episode e's seed in each
    arm). An env's draws follow its own seed, so a maze's episodes are those it would have
    alone, up to the float rounding of a batched forward. Returns ``{variable: (nv, 2, m, k)}``
    over (vector, sign, maze, episode) for :data:`_ROLL_NAMES` and ``{variable: (nv, m, k)}``
    for the t = 0 arm's :data:`_BASE_NAMES`.
    """
    m, nv, k = len(states), len(vecs[0]), len(seeds[0])
    per_maze = 2 * nv * k + k
    v = torch.stack(
        [x for maze in vecs for x in [y for y in maze for _ in range(2 * k)] + [maze[0]] * k]
    )
    arms = ([t] * k + [-t] * k) * nv + [0.0] * k
    coeffs = torch.tensor(arms * m, dtype=torch.float32)
    steering = Steering(hook, v, coeffs, per_env=True, cut=cut, variant=variant)
    roll = rollout(
        policy,
        [s for s in states for _ in range(per_maze)],
        steering=[steering],
        max_steps=max_steps,
        seed=[int(x) for maze in seeds for x in list(maze) * (2 * nv + 1)],
    )
    values = {name: roll["outcome"].values == o for name, o in (*ROLL_OUTCOMES, *BASE_OUTCOMES)}
    values["loc_roll_steps"] = values["loc_roll_base_steps"] = roll["steps"].values
    out = {}
    for name, x in values.items():
        x = np.asarray(x, dtype=float).reshape(m, per_maze)
        if name in _BASE_NAMES:
            out[name] = np.broadcast_to(x[None, :, 2 * nv * k :], (nv, m, k)).copy()
        else:
            steered = x[:, : 2 * nv * k].reshape(m, nv, len(SIGNS), k)
            out[name] = steered.transpose(1, 2, 0, 3)
    return out


#: long_name and description of each rollout variable.
_ROLL_ATTRS = {
    "loc_roll_reached_cheese": (
        "reached the cheese, network cut",
        "1 if the rollout from the start reached the cheese with t·v added at the steering "
        "layer and the network cut (variant) at cut, 0 if not; NaN where not rolled out",
    ),
    "loc_roll_reached_top_right": (
        "reached the top-right region, network cut",
        "1 if the rollout from the start reached the top-right region of the inner maze with "
        "t·v added and the network cut (variant) at cut, 0 if not; NaN where not rolled out",
    ),
    "loc_roll_steps": (
        "rollout steps, network cut",
        "steps until the rollout ended (cheese, top-right region or the step limit)",
    ),
    "loc_roll_base_reached_cheese": (
        "reached the cheese, network cut, t = 0",
        "the t = 0 arm of loc_roll_reached_cheese: the same maze, episode seed, variant and cut "
        "with coefficient 0; NaN where not rolled out",
    ),
    "loc_roll_base_reached_top_right": (
        "reached the top-right region, network cut, t = 0",
        "the t = 0 arm of loc_roll_reached_top_right (same maze, episode seed, variant, cut)",
    ),
    "loc_roll_base_steps": (
        "rollout steps, network cut, t = 0",
        "the t = 0 arm of loc_roll_steps (same maze, episode seed, variant, cut)",
    ),
}


def _roll_dataset(
    out: Mapping[str, np.ndarray],
    names: Sequence[str],
    variants: Sequence[str],
    cuts: Sequence[str],
    n: int,
    k: int,
) -> xr.Dataset:
    """The rollout arrays as a labelled Dataset over (vector, variant, cut, [sign,] maze,
    episode)."""
    dims = ("vector", "variant", "cut", "sign", "maze", "episode")
    return xr.Dataset(
        {
            name: (
                tuple(d for d in dims if d != "sign" or name not in _BASE_NAMES),
                arr,
                {"long_name": _ROLL_ATTRS[name][0], "description": _ROLL_ATTRS[name][1]},
            )
            for name, arr in out.items()
        },
        coords={
            "vector": list(names),
            "variant": list(variants),
            "cut": list(cuts),
            "sign": list(SIGNS),
            "maze": np.arange(n),
            "episode": np.arange(k),
        },
    )
