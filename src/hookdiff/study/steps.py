"""The study's per-maze steps, as one registry: what each computes, how it is split, what it needs.

A measurement of the study is one :class:`Step` in :data:`STEPS`: its name (the key of its
timings, its resume blocks and its progress), the function that computes its part of the
Dataset on a block of mazes, whether it runs as one task over every maze, and the steps whose
joined parts (every maze) it needs, with how it reads them (:attr:`Step.given`).
:mod:`hookdiff.study.run` runs exactly these, in waves (:func:`waves`), and knows none of them by
name. Adding a measurement is one entry here.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import xarray as xr
from torch import nn

from hookdiff._device import model_device
from hookdiff.study.config import StudyConfig
from hookdiff.study.controls import random_matched_effect
from hookdiff.study.cut_rollouts import localise_rollouts, rollout_cuts
from hookdiff.study.dataset import merge_parts, per_site
from hookdiff.study.inputs import StudyMazes, StudyVectors
from hookdiff.study.later import matched_later
from hookdiff.study.localise import localise_controls, localise_kinks, localise_scan
from hookdiff.study.measure import behaviour_at, nonlinearity_at, vector_fields
from hookdiff.study.saturation import saturation_sweeps

__all__ = ["STEPS", "Agent", "Step", "given_args", "step", "waves"]


@dataclass(frozen=True)
class Agent:
    """What the per-maze steps of one agent need (shipped to Ray workers once)."""

    policy: nn.Module
    vectors: StudyVectors
    """The vectors at the steering layer and at every later candidate."""
    config: StudyConfig
    """The study's config with this agent's checkpoint."""
    sites: dict[str, str]
    """``{site: hook}``."""

    def to(self, device: str | torch.device) -> Agent:
        """This agent with its policy and vectors on ``device`` (the policy copied, not moved,
        when it lives elsewhere)."""
        device = torch.empty(0, device=device).device  # "cuda" as the "cuda:0" it means
        policy = self.policy
        if model_device(policy) != device:
            policy = copy.deepcopy(policy).to(device)
        return dataclasses.replace(self, policy=policy, vectors=self.vectors.to(device))


#: A step's function: ``(policy, mazes, vectors, config, agent, *given) -> part`` on a block.
StepFn = Callable[..., xr.Dataset]


@dataclass(frozen=True)
class Step:
    """One per-maze measurement of the study."""

    name: str
    """Its name: the key of its timings in run.json, of its resume blocks, of its progress."""
    fn: StepFn
    """Its part of the Dataset on a block of mazes (:data:`StepFn`)."""
    one_task: bool = False
    """It runs as one task over every maze (else on blocks of ``maze_block`` mazes)."""
    needs: tuple[str, ...] = ()
    """The steps whose joined parts (over every maze) it reads."""
    given: Callable[[xr.Dataset, StudyConfig], tuple[Any, ...]] | None = None
    """Its further arguments, from the needed steps' parts merged into one Dataset (None: it
    needs nothing). They also key its resume blocks, so must be plain, comparable values."""


def _nonlinearity(
    policy: nn.Module, mazes: StudyMazes, vectors: StudyVectors, config: StudyConfig, agent: Agent
) -> xr.Dataset:
    """The nonlinearity at both sites."""
    return per_site(agent.sites, partial(nonlinearity_at, policy, mazes, vectors, config=config))


def _behaviour(
    policy: nn.Module, mazes: StudyMazes, vectors: StudyVectors, config: StudyConfig, agent: Agent
) -> xr.Dataset:
    """The behaviour at both sites."""
    return per_site(agent.sites, partial(behaviour_at, policy, mazes, vectors, config=config))


def _site_free(measure: Callable[..., xr.Dataset]) -> StepFn:
    """``measure(policy, mazes, vectors, config, *given)`` as a step (no sites)."""

    def run(
        policy: nn.Module,
        mazes: StudyMazes,
        vectors: StudyVectors,
        config: StudyConfig,
        _: Agent,
        *given: Any,
    ) -> xr.Dataset:
        return measure(policy, mazes, vectors, config, *given)

    return run


def _cuts_to_roll(scan: xr.Dataset, config: StudyConfig) -> tuple[Any, ...]:
    """The cut rollouts' argument: the cuts :func:`rollout_cuts` picks from the joined scan."""
    return (rollout_cuts(scan, config.seeds()["analysis"], config.equivalence_margin),)


#: The study's per-maze steps, in the order their parts are joined: the nonlinearity and the
#: behaviour at both sites, the vector fields (one task: a few example mazes padded to the
#: largest maze's cells), the localisation's cut / freeze scan, controls and kink walk, the
#: control matched in effect (random directions at the vector's |odd part|), the later
#: layers matched to a common effect size (one task: matched on the mean effect over every
#: maze), and the rollouts at the cuts that matter (given the cuts the joined scan and controls
#: of every maze pick).
STEPS: tuple[Step, ...] = (
    Step("nonlinearity", _nonlinearity),
    Step("behaviour", _behaviour),
    Step("vector fields", _site_free(vector_fields), one_task=True),
    Step("localise scan", _site_free(localise_scan)),
    Step("localise controls", _site_free(localise_controls)),
    Step("localise kinks", _site_free(localise_kinks)),
    Step("random matched effect", _site_free(random_matched_effect)),
    Step("saturation", _site_free(saturation_sweeps)),
    Step("later matched", _site_free(matched_later), one_task=True),
    Step(
        "localise rollouts",
        _site_free(localise_rollouts),
        needs=("localise scan", "localise controls"),
        given=_cuts_to_roll,
    ),
)


def step(name: str) -> Step:
    """The step of :data:`STEPS` called ``name``."""
    return next(s for s in STEPS if s.name == name)


def waves(steps: Sequence[Step] = STEPS) -> list[list[Step]]:
    """``steps`` in the maps the study runs them in, each after the ones its needs are in.

    A step that others need runs in the earliest wave it can (after its own needs), so what the
    later waves wait for is not queued behind the costly steps; every other step runs in the
    last wave. Within a wave, the order of ``steps``.

    Example:
        >>> [[s.name for s in w] for w in waves()]  # doctest: +NORMALIZE_WHITESPACE
        [['localise scan', 'localise controls'], ['nonlinearity', 'behaviour', 'vector fields',
          'localise kinks', 'random matched effect', 'saturation', 'later matched',
          'localise rollouts']]
    """
    by_name = {s.name: s for s in steps}
    level: dict[str, int] = {}

    def depth(name: str) -> int:
        if name not in level:
            level[name] = 1 + max((depth(n) for n in by_name[name].needs), default=-1)
        return level[name]

    last = max((depth(s.name) for s in steps), default=0)
    needed = {n for s in steps for n in s.needs}
    wave = {s.name: depth(s.name) if s.name in needed else last for s in steps}
    return [w for w in ([s for s in steps if wave[s.name] == k] for k in range(last + 1)) if w]


def given_args(s: Step, joined: Mapping[str, xr.Dataset], config: StudyConfig) -> tuple[Any, ...]:
    """The further arguments of step ``s`` from the joined parts of the steps it needs."""
    if s.given is None:
        return ()
    return s.given(merge_parts([joined[n] for n in s.needs], {}), config)
