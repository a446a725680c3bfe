"""What the study runs on: the policy, the studied mazes and their observations, the vectors.

The policy is ``config.checkpoint``, else the shipped agent, else a seeded random-init policy
(flagged as untrained everywhere). The studied mazes are the first ``n_mazes`` of ``maze_spec``
that have a decision square; the analysis starts from two observations of each (mouse on the
decision square, mouse at the start). The selected vectors (``config.vectors``, each a
:class:`~hookdiff.study.targets.VectorSpec`) are computed at every hook the study may steer at:
by default from each studied maze itself (``vectors_from="same_maze"``, the published batch
protocol), or from seeded pairs of ``vector_spec`` whose mean steers every maze (``"pairs"``). Everything here is seeded from :meth:`StudyConfig.seeds`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hookdiff._device import model_device, resolve_device
from hookdiff.agent import (
    ImpalaPolicy,
    checkpoint_sha256,
    default_checkpoint_path,
    load_checkpoint,
    load_default,
    obs_to_tensor,
    random_init_policy,
    resolve_checkpoint,
    shipped_name,
)
from hookdiff.errors import ConfigError, UnknownHookError, unknown_name_message
from hookdiff.hooks import capture
from hookdiff.maze import (
    decision_square,
    level_states,
    render,
    sample_mazes,
    start_cell,
    with_mouse,
)
from hookdiff.maze.state import MazeState
from hookdiff.study.config import StudyConfig
from hookdiff.study.schema import POSITIONS
from hookdiff.study.targets import VECTOR_SPECS, VectorSpec, selected_specs
from hookdiff.vectors import pair_vector

__all__ = [
    "StudyMazes",
    "StudyVectors",
    "decision_square_vectors",
    "later_candidates",
    "load_policy",
    "named_levels",
    "random_init_policy",
    "study_mazes",
    "study_vectors",
]

_WARNING_UNTRAINED = (
    "UNTRAINED AGENT: no checkpoint was given and no agent is shipped, so this study ran on a "
    "seeded random-init policy. Its numbers describe the hook machinery on random weights, not the "
    "behaviour of a trained maze agent. Rerun with --checkpoint PATH."
)


def load_policy(config: StudyConfig) -> tuple[ImpalaPolicy, dict[str, Any]]:
    """The policy the study runs on, on ``config.device``, and a description of it (recorded with
    the results).

    ``config.checkpoint`` if given; else the shipped agent; else (no agent shipped) a seeded
    random-init policy of ``config.random_init_scale`` with ``untrained=1`` and a warning.

    Returns:
        ``(policy, info)`` with ``info`` keys ``agent``, ``checkpoint``, ``checkpoint_sha256``,
        ``untrained`` (0/1) and ``warning``.

    Raises:
        ConfigError: ``config.device`` is not available on this machine.
    """
    device = resolve_device(config.device)
    policy, info = _load_policy(config)
    return policy.to(device), info


def _load_policy(config: StudyConfig) -> tuple[ImpalaPolicy, dict[str, Any]]:
    """The study's policy on the CPU (weights are the same wherever it then runs)."""
    if config.checkpoint is not None:
        path = Path(resolve_checkpoint(config.checkpoint))
        policy = load_checkpoint(path)
        name = shipped_name(path)
        described = f"shipped agent {name!r}" if name else f"checkpoint {path.name}"
        info = {"agent": described, "checkpoint": str(path)}
        info["checkpoint_sha256"] = checkpoint_sha256(path)
        return policy.eval(), {**info, "untrained": 0, "warning": ""}
    try:
        policy = load_default()
    except FileNotFoundError:
        return _random_init_policy(config)
    path = default_checkpoint_path()
    return policy.eval(), {
        "agent": "shipped agent",
        "checkpoint": str(path),
        "checkpoint_sha256": checkpoint_sha256(path),
        "untrained": 0,
        "warning": "",
    }


def _random_init_policy(config: StudyConfig) -> tuple[ImpalaPolicy, dict[str, Any]]:
    """The seeded random-init fallback, with the loud warning that it is untrained."""
    seed = config.seeds()["policy_init"]
    policy = random_init_policy(config.random_init_scale, seed)
    warnings.warn(_WARNING_UNTRAINED, stacklevel=4)
    return policy, {
        "agent": f"random-init ImpalaPolicy(scale={config.random_init_scale}), torch seed {seed}",
        "checkpoint": "",
        "checkpoint_sha256": "",
        "untrained": 1,
        "warning": _WARNING_UNTRAINED,
    }


def later_candidates(policy: nn.Module, config: StudyConfig) -> list[str]:
    """``config.later_candidates`` in the policy's forward order, without repeats.

    Raises:
        UnknownHookError: the steering hook or a candidate is not one of ``policy.hook_names``.
    """
    order = {n: i for i, n in enumerate(policy.hook_names)}
    for h in dict.fromkeys([config.hook, *config.later_candidates]):
        if h not in order:
            raise UnknownHookError(unknown_name_message("hook point of the policy", h, list(order)))
    return sorted(dict.fromkeys(config.later_candidates), key=order.__getitem__)


# --------------------------------------------------------------------------------------------
# Mazes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyMazes:
    """The studied mazes with their decision squares and the observations analysed."""

    states: list[MazeState]
    """The studied mazes, in the order of the ``maze`` coordinate."""
    squares: list[tuple[int, int]]
    """Each maze's decision square ``(row, col)``."""
    obs: Mapping[str, Tensor]
    """Per position (:data:`~hookdiff.study.dataset.POSITIONS`): the observations ``(N, 3, 64, 64)``
    with the mouse on the decision square or at the start, on ``config.device``."""
    skipped: tuple[tuple[int, str], ...] = ()
    """Levels named by ``config.levels`` that were not studied: ``(level seed, why)``."""
    first: int = 0
    """Index of the first of these mazes in the study (0 unless this is a later block of it)."""
    total: int | None = None
    """Mazes in the whole study (None: these are all of them)."""

    def block(self, start: int, stop: int) -> StudyMazes:
        """Mazes ``start:stop`` of these, as a block of the study (``first`` set to ``start``)."""
        obs = {p: x[start:stop] for p, x in self.obs.items()}
        sl, total = slice(start, stop), self.total or len(self.states)
        first = self.first + start
        return StudyMazes(self.states[sl], self.squares[sl], obs, self.skipped, first, total)

    def to(self, device: str | torch.device) -> StudyMazes:
        """These mazes with their observations on ``device``."""
        obs = {p: x.to(device) for p, x in self.obs.items()}
        return dataclasses.replace(self, obs=obs)

    def seed(self, base: int) -> int:
        """The seed of a random draw over these mazes: ``base`` for the whole study or its first
        block, else derived from (``base``, ``first``), so each block draws its own stream.

        Example:
            >>> StudyMazes([], [], {}).seed(7)
            7
        """
        if self.first == 0:
            return int(base)
        return int(np.random.SeedSequence([int(base), self.first]).generate_state(1)[0])


def study_mazes(config: StudyConfig) -> StudyMazes:
    """The studied mazes, their decision squares and observations (on ``config.device``).

    The first ``n_mazes`` of ``maze_spec`` (seeded), or every usable level of ``config.levels``
    (the others are recorded in ``skipped``).

    Raises:
        ConfigError: a maze of ``maze_spec`` has no decision square; no named level is usable.
    """
    skipped: tuple[tuple[int, str], ...] = ()
    if config.levels is None:
        mazes = _sample_study_mazes(config)
    else:
        mazes, skipped = named_levels(config)
    squares = [decision_square(m) for m in mazes]
    if any(s is None for s in squares):
        raise ConfigError(
            f"maze spec {config.maze_spec!r} gives mazes without a decision square; use a "
            f"spec with require_decision_square (e.g. 'eval-decision-square')"
        )
    cells = {"decision_square": squares, "start": [start_cell(m) for m in mazes]}
    device = resolve_device(config.device)
    obs = {
        p: obs_to_tensor(render([with_mouse(m, c) for m, c in zip(mazes, cells[p])]), device=device)
        for p in POSITIONS
    }
    return StudyMazes(mazes, squares, obs, skipped)


def named_levels(config: StudyConfig) -> tuple[list[MazeState], tuple[tuple[int, str], ...]]:
    """The usable levels of ``config.levels`` (hard mode, in the given order, repeats dropped)
    and the skipped ones with the reason; a warning lists the skipped levels.

    Raises:
        ConfigError: none of the levels is usable.
    """
    seeds = list(dict.fromkeys(config.level_seeds() or ()))
    kept, skipped = [], []
    for state in level_states(seeds, distribution_mode="hard"):
        why = _unusable(state, config.vector_specs() if config.vectors_from == "same_maze" else ())
        if why:
            skipped.append((state.level_seed, why))
        else:
            kept.append(state)
    if skipped:
        listed = ", ".join(f"{k} ({why})" for k, why in skipped[:10])
        more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        warnings.warn(
            f"skipped {len(skipped)} of {len(seeds)} levels: {listed}{more}", stacklevel=2
        )
    if not kept:
        raise ConfigError(
            f"StudyConfig.levels = {config.levels!r} (--levels): none of the {len(seeds)} levels "
            f"has a decision square and every studied vector's pair; name other levels"
        )
    return kept, tuple(skipped)


def _unusable(state: MazeState, specs: Sequence[VectorSpec]) -> str:
    """Why a level cannot be studied ('' when it can); ``specs``: the vectors whose pairs it must
    make (none: the vectors come from other mazes)."""
    if decision_square(state) is None:
        return "no decision square"
    if not _makes_pairs(state, specs):
        return "no room for the vector pairs"
    return ""


def _sample_study_mazes(config: StudyConfig) -> list[MazeState]:
    """The first ``n_mazes`` of ``maze_spec`` from the seed.

    With ``vectors_from="same_maze"`` each maze must also make every studied vector's pair
    (:attr:`VectorSpec.usable`: e.g. cheese off the start, room for the top-right corridor), so
    mazes that cannot are skipped.
    """
    seed = config.seeds()["mazes"]
    if config.vectors_from != "same_maze":
        return sample_mazes(config.maze_spec, config.n_mazes, seed=seed)
    want, specs = config.n_mazes, config.vector_specs()
    for _ in range(20):
        cands = sample_mazes(config.maze_spec, want, seed=seed)  # a prefix-stable sequence
        ok = [s for s in cands if _makes_pairs(s, specs)]
        if len(ok) >= config.n_mazes:
            return ok[: config.n_mazes]
        want = 2 * want
    raise ConfigError(
        f"maze spec {config.maze_spec!r} gives too few mazes with room for the top-right corridor; "
        f"use vectors_from='pairs' or another spec"
    )


def _makes_pairs(state: MazeState, specs: Sequence[VectorSpec]) -> bool:
    """Whether the pair of every vector of ``specs`` can be made from ``state``."""
    return all(spec.usable(state) for spec in specs)


# --------------------------------------------------------------------------------------------
# Vectors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyVectors:
    """The studied vectors at every hook the study may steer at."""

    mazes: list[MazeState]
    """The mazes the pairs are made from (the ``vector_maze`` dimension)."""
    pairs: Mapping[str, Mapping[str, Tensor]]
    """``{hook: {vector: V}}``: every pair's own vector, stacked ``(len(mazes), ...)``."""
    per_maze: bool
    """Studied maze i is steered by its own vector (``same_maze``); else by the pairs' mean."""
    following: Mapping[str, Mapping[str, Tensor]] | None = None
    """``{hook: {vector: V (1, ...)}}``: the vector of the maze after the last one (cyclic over
    the whole study), set on a block of per-maze vectors (:meth:`block`); None: the whole study."""
    totals: Mapping[str, Mapping[str, Tensor]] | None = None
    """``{hook: {vector: Σ V (1, ...)}}``: the sum of every studied maze's vector (float64),
    set on a block (:meth:`block`); None: the whole study (summed from :attr:`pairs`)."""
    count: int | None = None
    """How many mazes :attr:`totals` sums (None: the whole study, ``len(mazes)``)."""

    def block(self, start: int, stop: int) -> StudyVectors:
        """The vectors of studied mazes ``start:stop`` (all of them when not per maze)."""
        if not self.per_maze:
            return self
        n = len(self.mazes)
        pairs = {h: {k: v[start:stop] for k, v in p.items()} for h, p in self.pairs.items()}
        nxt = stop % n
        following = {h: {k: v[nxt : nxt + 1] for k, v in p.items()} for h, p in self.pairs.items()}
        totals = {h: self._totals(h) for h in self.pairs}
        count = self.count or n
        return StudyVectors(self.mazes[start:stop], pairs, True, following, totals, count)

    def _totals(self, hook: str) -> dict[str, Tensor]:
        """Σ over every studied maze of each vector at ``hook`` (float64, shape ``(1, ...)``)."""
        if self.totals is not None:
            return dict(self.totals[hook])
        return {k: v.double().sum(dim=0, keepdim=True) for k, v in self.pairs[hook].items()}

    def to(self, device: str | torch.device) -> StudyVectors:
        """These vectors on ``device``."""

        def moved(vs: Mapping[str, Mapping[str, Tensor]]) -> dict[str, dict[str, Tensor]]:
            return {h: {k: v.to(device) for k, v in p.items()} for h, p in vs.items()}

        following = None if self.following is None else moved(self.following)
        totals = None if self.totals is None else moved(self.totals)
        return dataclasses.replace(
            self, pairs=moved(self.pairs), following=following, totals=totals
        )

    def others(self, hook: str) -> dict[str, Tensor]:
        """Per maze, the next studied maze's vector at ``hook`` (cyclic over the whole study):
        the "another maze's vector" control. Per-maze vectors only."""
        own = self.applied(hook)
        if self.following is None:
            return {k: v.roll(-1, dims=0) for k, v in own.items()}
        return {k: torch.cat([v[1:], self.following[hook][k]]) for k, v in own.items()}

    def leave_one_out(self, hook: str) -> dict[str, Tensor]:
        """Per maze, the mean of every other studied maze's vector at ``hook``: (Σ − own) /
        (N − 1) over the whole study, whichever block the maze is in. A vector of the same kind
        that the maze's base was not built from (the base swap then reads another line than the
        maze's own). Per-maze vectors only; with one maze, the maze's own vector."""
        own = self.applied(hook)
        n = self.count or len(self.mazes)
        if n < 2:
            return own
        total = self._totals(hook)
        return {k: ((total[k] - v.double()) / (n - 1)).to(v.dtype) for k, v in own.items()}

    @property
    def names(self) -> tuple[str, ...]:
        """The vectors' names, in the order of the ``vector`` coordinate."""
        return tuple(next(iter(self.pairs.values())))

    @property
    def specs(self) -> tuple[VectorSpec, ...]:
        """The vectors' specs, in the order of the ``vector`` coordinate."""
        return tuple(VECTOR_SPECS[name] for name in self.names)

    def applied(self, hook: str) -> dict[str, Tensor]:
        """``{vector: V}`` that steers at ``hook``: per maze ``(N, ...)``, or the pairs' mean."""
        return {n: v if self.per_maze else v.mean(dim=0) for n, v in self.pairs[hook].items()}

    def norm(self, hook: str, name: str) -> float:
        """‖v‖ of the applied vector, or the mean of the per-maze norms."""
        v = self.applied(hook)[name]
        return float(v.flatten(1).norm(dim=1).mean() if self.per_maze else v.norm())


def study_vectors(
    policy: nn.Module, config: StudyConfig, mazes: Sequence[MazeState], hooks: Sequence[str]
) -> StudyVectors:
    """Every studied vector (``config.vector_specs()``) at each of ``hooks``, from the studied
    ``mazes`` or from seeded pairs: each pair's own vector from its published pair (mouse at the
    start, :meth:`VectorSpec.start_pair`)."""
    per_maze = config.vectors_from == "same_maze"
    vmazes = list(mazes) if per_maze else _vector_mazes(config)
    specs = config.vector_specs()
    pairs = {
        h: {
            spec.name: pair_vector(policy, [spec.start_pair(m) for m in vmazes], h, per_maze=True)
            for spec in specs
        }
        for h in dict.fromkeys(hooks)
    }
    return StudyVectors(vmazes, pairs, per_maze)


def _vector_mazes(config: StudyConfig) -> list[MazeState]:
    """Seeded mazes of ``vector_spec`` that make valid pairs for every studied vector (``"pairs"``
    mode)."""
    seed, specs = config.seeds()["vector_mazes"], config.vector_specs()
    out: list[MazeState] = []
    want = config.vector_pairs
    batch = 0
    while len(out) < want:
        cands = sample_mazes(config.vector_spec, 4 * want, seed=seed + batch * 4 * want)
        out.extend([s for s in cands if _makes_pairs(s, specs)][: want - len(out)])
        batch += 1
        if batch > 50:
            raise ConfigError(f"spec {config.vector_spec!r} gives too few mazes with valid pairs")
    return out


def decision_square_vectors(
    policy: nn.Module,
    mazes: StudyMazes,
    hooks: Sequence[str],
    batch_size: int = 128,
    specs: Sequence[VectorSpec] | None = None,
) -> dict[str, dict[str, Tensor]]:
    """``{hook: {vector: V (N, ...)}}``: each studied maze's own vectors from pairs taken with the
    mouse on its decision square, where the vectors are applied (the published pairs put it at
    the start).

    Each vector of ``specs`` (default: the published two) from its :attr:`VectorSpec.pair` of the
    placed maze (cheese: the maze − the maze without its cheese; top-right: the maze with the
    top-right corridor open − the maze). Every hook is read from the same forwards (one capture).
    """
    placed = [with_mouse(s, d) for s, d in zip(mazes.states, mazes.squares)]
    built = {
        spec.name: [spec.pair(s) for s in placed]
        for spec in (selected_specs(None) if specs is None else specs)
    }
    pairs = {name: ([a for a, _ in two], [b for _, b in two]) for name, two in built.items()}
    hooks = list(dict.fromkeys(hooks))
    states = [s for first, second in pairs.values() for s in (*first, *second)]
    obs = obs_to_tensor(render(states), device=model_device(policy))
    obs = obs.to(next(policy.parameters()).dtype)
    acts: dict[str, list[Tensor]] = {h: [] for h in hooks}
    for lo in range(0, len(obs), batch_size):
        with torch.no_grad(), capture(policy, hooks) as seen:
            policy(obs[lo : lo + batch_size])
        for h in hooks:
            acts[h].append(seen[h])
    n = len(placed)
    out = {}
    for h in hooks:
        a = torch.cat(acts[h]).reshape(len(pairs), 2, n, *acts[h][0].shape[1:])
        out[h] = {name: a[k, 0] - a[k, 1] for k, name in enumerate(pairs)}
    return out
