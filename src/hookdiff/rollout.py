"""Vectorized rollouts of a maze policy with steering on, and the behaviour metrics built on them.

N procgen envs step together; the policy runs once per step on all live envs, with any number of
steering vectors active (each a ``(hook, vector, coeff)``, the coefficient either one number or one
per env, so a whole coefficient sweep is one rollout). Each env is stopped at its first episode
end — procgen auto-resets to a new level, which is never recorded — or when it reaches the cheese,
the top-right region of the inner maze, or the step limit. The mouse's cell is tracked from the
actions and the known maze (one cell per move, blocked by walls and the world's edge), checked
against procgen's own state in the tests. Results are an ``xarray.Dataset`` over ``env``.

A steering vector can also carry a causal intervention (:func:`hookdiff.analysis.line_response`):
at every step the policy's logits are then those of the network cut and linearised or
symmetrised at a hook point, or with chosen relus and maxpools frozen at their unsteered pattern,
so the behaviour of an intervened network is measured exactly as the plain steered one.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr
from torch import Tensor, nn

from hookdiff._device import model_device
from hookdiff._sampling import draw, sampler
from hookdiff.agent import obs_to_tensor
from hookdiff.analysis.interventions import VARIANTS, freezable, line_response, valid_cuts
from hookdiff.contract import INPUT, OpGraphModel
from hookdiff.errors import (
    HookTypeError,
    InterventionError,
    ShapeMismatchError,
    unknown_name_message,
)
from hookdiff.hooks import attach, capture, steering_hook
from hookdiff.maze.actions import (
    ACTION_DIRECTIONS,
    DIRECTION_ACTIONS,
    NO_MOVE,
    action_steps,
    direction_probs,
)
from hookdiff.maze.edit import with_mouse
from hookdiff.maze.envs import make_env, observe, render, set_states
from hookdiff.maze.paths import (
    decision_square,
    direction_field,
    next_direction,
    top_right_cell,
    top_right_region,
)
from hookdiff.maze.state import WALL, MazeState
from hookdiff.segments import as_segmented, output_of

__all__ = [
    "OUTCOMES",
    "ExpertPolicy",
    "advance",
    "Steering",
    "decision_square_probs",
    "reach_rates",
    "rollout",
    "top_right_region",
]

OUTCOMES = ("cheese", "top_right", "timeout")
"""How a recorded episode ends: reached the cheese, reached the top-right region, or neither."""


@dataclass(frozen=True)
class Steering:
    """One steering vector active during a rollout: add ``coeff · vector`` at ``hook``.

    ``coeff`` is a number for every env, or a sequence with one coefficient per env.
    ``per_env``: ``vector`` holds one vector per env (leading dimension N), e.g. each maze's own
    cheese vector as in the published protocol. Without it, ``vector`` is one direction for every
    env (the activation's shape without the batch dimension): :func:`rollout` rejects a stack of
    per-env vectors passed without ``per_env=True`` before the first step.

    With ``cut``/``variant`` or ``freeze`` set, the steered network is intervened on at every
    step: the logits are :func:`hookdiff.analysis.line_response` at the policy's output for that
    step's observations, each env at its own coefficient (and its own vector when ``per_env``).
    """

    hook: str
    """Where the vector is added (a hook name of the policy)."""
    vector: Tensor
    """The activation's shape without the batch dimension, or ``(N, ...)`` with ``per_env``."""
    coeff: float | Sequence[float] | Tensor = 1.0
    """One coefficient for every env, or a sequence with one coefficient per env."""
    per_env: bool = False
    """``vector`` holds one vector per env (leading dimension N), e.g. each maze's own cheese
    vector as in the published protocol."""
    cut: str | None = None
    """The hook point where ``variant`` acts (one of ``valid_cuts(policy, hook, output)``)."""
    variant: str = "exact"
    """``"exact"``, ``"linearize"`` (x_c(0) + t·J_c·v at ``cut``) or ``"symmetrize"``
    (x_c(0) + ½[x_c(t) − x_c(−t)] at ``cut``)."""
    freeze: tuple[str, ...] = ()
    """Relus and maxpools held at their t = 0 pattern (``freezable(policy, hook, output)``)."""

    @property
    def intervened(self) -> bool:
        """Whether the steered network is intervened on (else the plain steering hook runs)."""
        return self.variant != "exact" or self.cut is not None or bool(self.freeze)

    def __post_init__(self) -> None:
        if not isinstance(self.hook, str):
            raise HookTypeError(f"Steering's hook is one hook name; got {self.hook!r}")
        c = torch.as_tensor(self.coeff)
        if c.ndim > 1:
            raise ShapeMismatchError(
                f"steering at {self.hook!r}: coeff of shape {tuple(c.shape)}; expected one number "
                f"or one coefficient per env"
            )
        if self.per_env and torch.as_tensor(self.vector).ndim < 2:
            raise ShapeMismatchError(
                f"steering at {self.hook!r}: per_env=True needs one vector per env, shape "
                f"(N, *activation shape); got shape {tuple(torch.as_tensor(self.vector).shape)}"
            )

    def rows(self, rows: np.ndarray | Tensor) -> Steering:
        """This steering restricted to the envs ``rows`` (per-env coefficients and vectors)."""
        c = torch.as_tensor(self.coeff, dtype=torch.float32)
        v = torch.as_tensor(self.vector)
        return dataclasses.replace(
            self,
            vector=v[torch.as_tensor(rows, device=v.device)] if self.per_env else v,
            coeff=c[torch.as_tensor(rows, device=c.device)] if c.ndim else c,
        )

    def to(self, device: torch.device | str) -> Steering:
        """This steering with its vector and coefficients on ``device`` (moved once, not at every
        step of a rollout)."""
        coeff = torch.as_tensor(self.coeff, dtype=torch.float32)
        return dataclasses.replace(
            self,
            vector=torch.as_tensor(self.vector).to(device),
            coeff=coeff.to(device) if coeff.ndim else coeff,
        )


def _check_steering(
    policy: nn.Module, steering: Sequence[Steering], n: int, *, shrinking: bool
) -> None:
    """Fail before the first step when ``steering`` does not fit ``n`` envs.

    Checks the number of per-env coefficients and vectors; with ``shrinking`` (a rollout, whose
    batch loses the envs that finish) also that a vector passed without ``per_env`` is one
    direction, not a stack of per-env vectors (read from one forward of a blank observation).

    Raises:
        ShapeMismatchError: naming the steering hook, the counts or shapes, and the fix.
    """
    for s in steering:
        c = torch.as_tensor(s.coeff)
        if c.ndim and c.shape[0] != n:
            raise ShapeMismatchError(
                f"steering at {s.hook!r} has {c.shape[0]} coefficients for {n} envs; give one "
                f"number or one coefficient per env"
            )
        if s.per_env and s.vector.shape[0] != n:
            raise ShapeMismatchError(
                f"steering at {s.hook!r} has {s.vector.shape[0]} per-env vectors for {n} envs"
            )
    shared = [s for s in steering if not s.per_env]
    if not shrinking or not shared or isinstance(policy, ExpertPolicy):
        return
    blank = obs_to_tensor(np.zeros((1, 64, 64, 3), dtype=np.uint8), device=model_device(policy))
    with capture(policy, sorted({s.hook for s in shared})) as acts, torch.no_grad():
        policy(blank)
    for s in shared:
        row = tuple(acts[s.hook].shape[1:])
        if s.vector.ndim == len(row) + 1 and s.vector.shape[0] > 1:
            raise ShapeMismatchError(
                f"steering at {s.hook!r} has a vector of shape {tuple(s.vector.shape)}: one per "
                f"env for activations of per-row shape {row}, but per_env=False, so its rows "
                f"would stop lining up with the envs once one finishes. Pass "
                f"Steering({s.hook!r}, vectors, coeff, per_env=True) with one vector per env "
                f"(N = {n}), or one vector of shape {row} for every env"
            )


_MOVES = action_steps()  # (15, 2): the cell displacement of each procgen action


def advance(cells: np.ndarray, actions: np.ndarray, walls: np.ndarray) -> np.ndarray:
    """The mouse's cells after one action per env: one cell per move, blocked by walls and edges.

    Args:
        cells: ``(N, 2)`` current ``(row, col)``.
        actions: ``(N,)`` procgen actions 0..14.
        walls: ``(N, world, world)`` booleans, True on walls.
    """
    target = cells + _MOVES[actions]
    world = walls.shape[1]
    inside = (target >= 0).all(1) & (target < world).all(1)
    t = np.clip(target, 0, world - 1)
    free = inside & ~walls[np.arange(len(cells)), t[:, 0], t[:, 1]]
    return np.where(free[:, None], target, cells)


class ExpertPolicy(nn.Module):
    """The exact shortest-path expert: always moves toward the cheese (an upper bound, and a test).

    It reads the mouse's cell from the rollout (``cells``) rather than the pixels.
    """

    def __init__(self, states: Sequence[MazeState]):
        super().__init__()
        self.fields = [direction_field(s, s.cheese) if s.cheese else None for s in states]

    def forward(self, obs: Tensor, cells: np.ndarray, envs: np.ndarray) -> Tensor:
        logits = torch.full((len(envs), len(ACTION_DIRECTIONS)), -30.0)
        for row, (env, (r, c)) in enumerate(zip(envs, cells)):
            field = self.fields[env]
            d = int(field[r, c]) if field is not None else -1
            logits[row, DIRECTION_ACTIONS[d] if d >= 0 else DIRECTION_ACTIONS[NO_MOVE]] = 0.0
        return logits


@torch.no_grad()
def _policy_logits(
    policy: nn.Module,
    obs: np.ndarray,
    steering: Sequence[Steering],
    rows: np.ndarray,
    cells: np.ndarray | None = None,
    envs: np.ndarray | None = None,
) -> Tensor:
    """Action logits for the live envs ``rows``, with every steering vector on (on the policy's
    device; the steering's tensors should be there already, see :meth:`Steering.to`)."""
    if isinstance(policy, ExpertPolicy):
        if steering:
            raise ValueError("the scripted ExpertPolicy has no activations to steer")
        return policy(None, cells, envs)
    x = obs_to_tensor(obs[rows], device=model_device(policy))  # uint8 moved, then scaled
    if _channels_last(policy, x):
        x = x.contiguous(memory_format=torch.channels_last)
    if any(s.intervened for s in steering):  # validated: then it is the only steering
        return _intervened_logits(policy, x, steering[0].rows(rows))
    hooks = []
    for s in steering:
        s = s.rows(rows)
        hooks.append((s.hook, steering_hook(s.vector, s.coeff)))
    with attach(policy, hooks) if hooks else contextlib.nullcontext():
        return policy(x).float()


def _channels_last(policy: nn.Module, x: Tensor) -> bool:
    """Run the rollout's forwards channels-last: on the CPU (where its convs and pools run
    1.5–1.7× faster so, the float32 logits differing only by rounding, ~1e-7) or for a policy
    moved there (``policy.to(memory_format=torch.channels_last)``)."""
    weights = next(policy.parameters())
    return x.device.type == "cpu" or weights.is_contiguous(memory_format=torch.channels_last)


def _intervened_logits(policy: nn.Module, x: Tensor, s: Steering) -> Tensor:
    """The logits of the intervened network: ``line_response`` per distinct coefficient."""
    segmented = as_segmented(policy)
    output = output_of(segmented)[0]
    needed = segmented.segment_ops(s.hook, output)[1] if isinstance(segmented, OpGraphModel) else ()
    with capture(policy, list(needed)) as cache:
        a = segmented.run_segment(x, INPUT, s.hook)
    context = {name: cache[name] for name in needed}
    coeffs = torch.as_tensor(s.coeff, dtype=torch.float32).cpu().expand(len(a))
    vectors = _row_vectors(s, a)
    logits = None
    for c in torch.unique(coeffs).tolist():
        group = torch.nonzero(coeffs == c)[:, 0]
        r = line_response(
            policy,
            a[group],
            s.hook,
            vectors if vectors.ndim < a.ndim else vectors[group],
            [c],
            depth=output,
            cut=s.cut,
            variant=s.variant,
            freeze=s.freeze,
            context={name: t[group] for name, t in context.items()},
        )
        values = torch.from_numpy(r.values[0]).float()
        if logits is None:
            logits = values.new_empty((len(a),) + tuple(values.shape[1:]))
        logits[group] = values
    return logits


def _row_vectors(s: Steering, a: Tensor) -> Tensor:
    """The vector(s) as the steering hook adds them: shared, or one per row (row i: v[i % B])."""
    v = torch.as_tensor(s.vector)
    if v.ndim < a.ndim:
        return v
    return v[torch.arange(len(a), device=v.device) % v.shape[0]]


def _check_interventions(policy: nn.Module, steering: Sequence[Steering]) -> None:
    """An intervened steering is the only one, and valid on ``policy`` (before the first step)."""
    intervened = [s for s in steering if s.intervened]
    if not intervened:
        return
    if len(steering) > 1:
        raise InterventionError(
            f"an intervened steering (at {intervened[0].hook!r}) must be the only steering of "
            f"the rollout; got {len(steering)} steerings. Run other vectors in separate rollouts."
        )
    _check_intervention(policy, intervened[0])


def _check_intervention(policy: nn.Module, s: Steering) -> None:
    """The variant, cut and frozen ops of ``s`` exist between its hook and the policy's output."""
    if isinstance(policy, ExpertPolicy):
        raise ValueError("the scripted ExpertPolicy has no activations to steer")
    output = output_of(as_segmented(policy))[0]
    if s.variant not in VARIANTS:
        raise InterventionError(unknown_name_message("variant", s.variant, VARIANTS))
    if (s.cut is None) != (s.variant == "exact"):
        raise InterventionError(
            f"steering at {s.hook!r}: variant={s.variant!r} "
            f"{'needs a cut' if s.cut is None else 'takes no cut'}; 'linearize' and "
            f"'symmetrize' act at a hook point cut=..., 'exact' at none"
        )
    where = f"between {s.hook!r} and the output {output!r}"
    if s.cut is not None and s.cut not in (cuts := valid_cuts(policy, s.hook, output)):
        raise InterventionError(
            unknown_name_message(f"cut {where}", s.cut, cuts) + f" Valid cuts: {cuts}."
        )
    allowed = freezable(policy, s.hook, output)
    for name in [s.freeze] if isinstance(s.freeze, str) else s.freeze:
        if name not in allowed:
            raise InterventionError(
                unknown_name_message(f"op to freeze {where}", name, allowed)
                + f" Freezable: {allowed}."
            )


def rollout(
    policy: nn.Module,
    states: Sequence[MazeState],
    *,
    steering: Sequence[Steering] = (),
    max_steps: int = 500,
    seed: int | Sequence[int] = 0,
    greedy: bool = False,
    stop_at_top_right: bool = True,
    top_right_size: int = 5,
    env_batch: int = 256,
    on_step: Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None = None,
) -> xr.Dataset:
    """Run the policy from each state until its first episode ends; record what happened.

    Args:
        policy: maps float ``(N, 3, 64, 64)`` observations to 15 action logits; it runs on its
            own device (observations and steering vectors are moved there).
        states: one maze per env (the mouse wherever the state puts it).
        steering: vectors added at every forward (coefficients per env allowed). One steering
            with an intervention (``cut``/``variant``/``freeze``) must be the only one.
        max_steps: step limit (procgen itself ends episodes at 500).
        seed: seeds the action sampling (the same seed gives the same rollout). Actions are
            drawn on the CPU whatever the policy's device, so a policy on a GPU draws the same
            actions as on the CPU unless float32 rounding moves a probability across a draw.
            One seed per env: each env its own stream (:mod:`hookdiff._sampling`).
        greedy: take the most likely action instead of sampling.
        stop_at_top_right: end an env's episode when it enters the top-right region (set False
            for in-distribution evaluation, where the cheese lies in that region).
        top_right_size: side of the top-right region of the inner maze, in cells.
        env_batch: envs per procgen env group (memory bound; groups run one after another).
        on_step: called before every step with ``(env indices, their uint8 observations, their
            (row, col) cells)`` for the envs still running: what the policy is about to act on
            (on-policy training data, e.g. DAgger).

    Returns:
        Dataset over ``env``: ``outcome`` (str, one of :data:`OUTCOMES`), ``steps``,
        ``reached_cheese``, ``reached_top_right``, ``path`` ``(env, step, 2)`` (row, col; -1 after
        the end), and ``level_seed``; attrs record the seed, limits and steering hooks.

    Example:
        >>> from hookdiff.maze import sample_mazes
        >>> states = sample_mazes("eval-decision-square", 2, seed=0)
        >>> list(rollout(ExpertPolicy(states), states, max_steps=100).outcome.values)
        ['cheese', 'cheese']
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    n = len(states)
    _check_steering(policy, steering, n, shrinking=True)
    _check_interventions(policy, steering)
    gen = sampler(seed, n, max_steps)  # actions are drawn on the CPU, on any device
    if not isinstance(policy, ExpertPolicy):
        steering = [s.to(model_device(policy)) for s in steering]
    outcome = np.full(n, "timeout", dtype=object)
    steps = np.zeros(n, dtype=np.int64)
    path = np.full((n, max_steps + 1, 2), -1, dtype=np.int64)
    for lo in range(0, n, env_batch):
        idx = np.arange(lo, min(n, lo + env_batch))
        _rollout_group(
            policy,
            [states[i] for i in idx],
            idx,
            steering,
            max_steps,
            gen if isinstance(gen, torch.Generator) else gen[idx],
            greedy,
            stop_at_top_right,
            top_right_size,
            outcome,
            steps,
            path,
            on_step,
        )
    seed = seed if isinstance(gen, torch.Generator) else -1  # -1: per-env seeds
    settings = (seed, max_steps, greedy, stop_at_top_right, top_right_size)
    return _rollout_dataset(states, outcome, steps, path, steering, *settings)


def _rollout_dataset(
    states: Sequence[MazeState],
    outcome: np.ndarray,
    steps: np.ndarray,
    path: np.ndarray,
    steering: Sequence[Steering],
    seed: int,
    max_steps: int,
    greedy: bool,
    stop_at_top_right: bool,
    top_right_size: int,
) -> xr.Dataset:
    """:func:`rollout`'s result, labelled: per env its outcome, steps and path; the settings
    and steering in the attrs."""
    n = len(states)
    return xr.Dataset(
        {
            "outcome": ("env", outcome.astype(str)),
            "steps": ("env", steps),
            "reached_cheese": ("env", outcome == "cheese"),
            "reached_top_right": ("env", outcome == "top_right"),
            "path": (("env", "step", "cell"), path),
            "level_seed": ("env", np.array([s.level_seed for s in states], dtype=np.int64)),
        },
        coords={"env": np.arange(n), "cell": ["row", "col"]},
        attrs={
            "seed": seed,
            "max_steps": max_steps,
            "greedy": int(greedy),
            "stop_at_top_right": int(stop_at_top_right),
            "top_right_size": top_right_size,
            "steering_hooks": ",".join(s.hook for s in steering),
            "steering_interventions": ",".join(_describe(s) for s in steering),
        },
    )


def _describe(s: Steering) -> str:
    """The intervention of ``s`` in words, e.g. ``"symmetrize@fc_policy_out"`` (or ``"exact"``)."""
    what = s.variant if s.cut is None else f"{s.variant}@{s.cut}"
    frozen = [s.freeze] if isinstance(s.freeze, str) else list(s.freeze)
    return what + (f"+freeze[{' '.join(frozen)}]" if frozen else "")


def _rollout_group(
    policy: nn.Module,
    states: list[MazeState],
    idx: np.ndarray,
    steering: Sequence[Steering],
    max_steps: int,
    gen: torch.Generator | np.ndarray,
    greedy: bool,
    stop_at_top_right: bool,
    top_right_size: int,
    outcome: np.ndarray,
    steps: np.ndarray,
    path: np.ndarray,
    on_step: Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None,
) -> None:
    """Roll out one group of envs, writing into the caller's arrays at rows ``idx``."""
    n = len(states)
    env = make_env(n, distribution_mode=states[0].distribution_mode)
    set_states(env, states)
    obs = observe(env)
    walls = np.stack([s.grid == WALL for s in states])  # (n, world, world)
    pos = np.array([s.mouse for s in states], dtype=np.int64)
    regions = np.array([top_right_region(s, top_right_size) for s in states])
    live = np.ones(n, dtype=bool)
    path[idx, 0] = pos
    local_steering = [s.rows(idx) for s in steering]
    for t in range(1, max_steps + 1):
        rows = np.flatnonzero(live)
        if on_step is not None:
            on_step(idx[rows], obs[rows], pos[rows].copy())
        logits = _policy_logits(policy, obs, local_steering, rows, pos[rows], idx[rows])
        probs = torch.softmax(logits, dim=-1).cpu()  # the envs act on the host
        chosen = probs.argmax(-1) if greedy else draw(probs, gen, rows, t)
        actions = np.full(n, 4, dtype=np.int32)  # finished envs idle (their frames are ignored)
        actions[rows] = chosen.numpy()
        env.act(actions)
        reward, ob, first = env.observe()
        obs = np.array(ob["rgb"], copy=True)
        pos[rows] = advance(pos[rows], actions[rows], walls[rows])
        path[idx[rows], t] = pos[rows]
        steps[idx[rows]] = t
        got_cheese = np.asarray(reward)[rows] > 0
        ended = np.asarray(first, dtype=bool)[rows]
        r = regions[rows]
        in_region = (
            (pos[rows, 0] >= r[:, 0])
            & (pos[rows, 0] <= r[:, 1])
            & (pos[rows, 1] >= r[:, 2])
            & (pos[rows, 1] <= r[:, 3])
        )
        outcome[idx[rows[got_cheese]]] = "cheese"
        if stop_at_top_right:
            hit = in_region & ~got_cheese & ~ended
            outcome[idx[rows[hit]]] = "top_right"
            ended = ended | hit
        live[rows[got_cheese | ended]] = False
        if not live.any():
            break
    env.close()


def reach_rates(ds: xr.Dataset, by: str | None = None) -> xr.Dataset:
    """Fractions of envs per outcome (optionally grouped by a coordinate such as ``coeff``)."""
    rates = {o: (ds.outcome == o).astype(float) for o in OUTCOMES}
    out = xr.Dataset({f"p_{o}": v for o, v in rates.items()})
    return out.groupby(by).mean() if by else out.mean("env")


def decision_square_probs(
    policy: nn.Module,
    states: Sequence[MazeState],
    *,
    steering: Sequence[Steering] = (),
) -> xr.Dataset:
    """P(step toward the cheese) and P(step toward the top-right cell) at each maze's decision square.

    The mouse is placed on the decision square of every maze, all mazes are rendered in one
    batch, and the policy's 5 direction probabilities are read at the directions that start the
    shortest paths to the cheese and to the inner maze's top-right cell.

    ``steering`` works as in :func:`rollout`, interventions included.

    Raises:
        ValueError: a maze has no decision square (filter with ``decision_square(s) is not None``).
        InterventionError: a steering's intervention is not valid on ``policy``.
    """
    _check_steering(policy, steering, len(states), shrinking=False)
    _check_interventions(policy, steering)
    squares = [decision_square(s) for s in states]
    missing = [i for i, d in enumerate(squares) if d is None]
    if missing:
        raise ValueError(
            f"mazes at positions {missing[:10]} have no decision square; expected mazes whose "
            f"paths to the cheese and to the top-right cell fork"
        )
    placed = [with_mouse(s, d) for s, d in zip(states, squares)]
    obs = render(placed)
    if not isinstance(policy, ExpertPolicy):
        steering = [s.to(model_device(policy)) for s in steering]
    logits = _policy_logits(policy, obs, steering, np.arange(len(states)))
    dirs = direction_probs(logits).cpu().numpy()
    to_cheese = np.array([next_direction(s, d, s.cheese) for s, d in zip(states, squares)])
    to_corner = np.array([next_direction(s, d, top_right_cell(s)) for s, d in zip(states, squares)])
    rows = np.arange(len(states))
    return xr.Dataset(
        {
            "p_toward_cheese": ("maze", dirs[rows, to_cheese]),
            "p_toward_top_right": ("maze", dirs[rows, to_corner]),
            "direction_probs": (("maze", "direction"), dirs),
            "decision_square": (("maze", "cell"), np.array(squares)),
        },
        coords={
            "maze": np.arange(len(states)),
            "direction": ["left", "down", "up", "right", "none"],
            "cell": ["row", "col"],
        },
    )
