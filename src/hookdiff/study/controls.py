"""The control matched in effect: random directions pushed as hard as the vector, per maze.

The random control of :mod:`hookdiff.study.localise` has the vector's norm per position but
moves the target readout far less than the vector (its odd part O is smaller at the same t), so
its smaller even part E may only say it pushed less. Here each random direction is matched in
*effect*: per maze and draw, t* is bisected so that |O(t*)| of the target log-odds equals the
vector's |O| at the localisation's t closest to 1 (:func:`random_matched_effect`). Beside E and O
at t*, the cut scan of the matched direction is kept, so where its asymmetry is made can be
compared with where the vector's is (:mod:`hookdiff.study.claims_controls` reads it).

Everything here runs in float64 and one maze per forward, so the matched t (a decision taken
on data) and every value after it do not depend on which mazes share a block.
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr
from torch import Tensor, nn

from hookdiff.analysis import cut_scan, line_response, valid_cuts
from hookdiff.study.config import StudyConfig, closest_to_one
from hookdiff.study.inputs import StudyMazes, StudyVectors
from hookdiff.study.later import matched_t
from hookdiff.study.localise import matched_random, own_line
from hookdiff.study.readouts import label_readouts, readouts, target_directions, target_log_odds
from hookdiff.study.schema import READOUTS

__all__ = ["GRID", "draw_seed", "match_one", "random_matched_effect"]

_LOGODDS = READOUTS.index("logodds")
#: Grid points of t* before the bisection (:func:`~hookdiff.study.later.matched_t`): the first
#: that reaches the goal closes the bracket, so a non-monotone |O| is matched at its first crossing.
GRID = 8
_SYM = ("symmetrize",)


def draw_seed(seed: int, vector: str, draw: int) -> int:
    """The seed of one vector's random draw (independent of which other vectors are studied)."""
    key = [int(seed), zlib.crc32(vector.encode()), int(draw)]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def _log_odds_odd(
    policy: nn.Module, a: Tensor, hook: str, u: Tensor, ts: Sequence[float], target: np.ndarray
) -> np.ndarray:
    """O(t) = l(t) − l(−t) of the target log-odds along a + t·u, for each t of ``ts``."""
    line = [-float(x) for x in ts] + [float(x) for x in ts]
    logits = line_response(policy, a, hook, u, line, depth=policy.output_hook)
    lo = target_log_odds(torch.as_tensor(logits.values), torch.as_tensor(target))[..., 0]
    lo = lo.double().cpu().numpy()
    return lo[len(ts) :] - lo[: len(ts)]


def match_one(
    policy: nn.Module,
    a: Tensor,
    hook: str,
    u: Tensor,
    target: np.ndarray,
    goal: float,
    config: StudyConfig,
) -> float:
    """The smallest t* in (0, ``random_matched_max_t``] where |O(t*)| of the target log-odds
    along a + t·u reaches ``goal`` (one maze; :func:`~hookdiff.study.later.matched_t`'s grid of
    :data:`GRID` points, then bisection); NaN where it is not reached."""
    if not np.isfinite(goal) or goal <= 0:
        return float("nan")

    def size(ts: Sequence[float]) -> np.ndarray:
        return np.abs(_log_odds_odd(policy, a, hook, u, ts, target))

    t_max, steps = config.random_matched_max_t, config.random_matched_steps
    return matched_t(size, goal, t_max, steps, grid=GRID, rtol=1e-9)


def _line(
    policy: nn.Module, a: Tensor, hook: str, u: Tensor, t: float, target: np.ndarray
) -> np.ndarray:
    """``(readout, 3)``: the readouts at −t, 0, +t along a + t·u (one maze)."""
    ts = [-t, 0.0, t]
    logits = line_response(policy, a, hook, u, ts, depth=policy.output_hook)
    return readouts(logits.values, target, ts)[..., 0]


def _one_maze(
    policies: tuple[nn.Module, nn.Module],
    a: Tensor,
    u: Tensor,
    target: np.ndarray,
    goal: tuple[float, float],
    cuts: Sequence[str],
    config: StudyConfig,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """One maze and draw: signed t*, E and O ``(readout,)`` at it, and the symmetrised cut
    scan's E ``(cut, readout)``. t* carries the sign that gives O the vector's sign (E is even,
    so a random direction's orientation changes only O's sign). ``policies``: (float64, the
    study's): t*, E and O in float64, the scan (after the decision) in the study's dtype."""
    (p64, p32), (size, sign) = policies, goal
    e, o = np.full(len(READOUTS), np.nan), np.full(len(READOUTS), np.nan)
    by_cut = np.full((len(cuts), len(READOUTS)), np.nan)
    t = match_one(p64, a, config.hook, u, target, size, config)
    if not np.isfinite(t):
        return t, e, o, by_cut
    r = _line(p64, a, config.hook, u, t, target)
    if np.sign(r[_LOGODDS, 2] - r[_LOGODDS, 0]) != sign:
        t, r = -t, r[:, ::-1]
    e, o = r[:, 2] + r[:, 0] - 2 * r[:, 1], r[:, 2] - r[:, 0]
    ts, dtype = [-abs(t), 0.0, abs(t)], next(p32.parameters()).dtype
    scan = cut_scan(
        p32, a.to(dtype), config.hook, u.to(dtype), ts, depth=p32.output_hook, variants=_SYM
    ).sel(variant="symmetrize")
    rs = readouts(scan.values, target, ts)[..., 0]  # (readout, cut, t)
    idx = [list(cuts).index(str(c)) for c in scan["cut"].values]
    by_cut[idx] = (rs[..., 2] + rs[..., 0] - 2 * rs[..., 1]).T
    return t, e, o, by_cut


def _vector_goal(
    policy: nn.Module, a: Tensor, v: Tensor, target: np.ndarray, config: StudyConfig
) -> tuple[float, float]:
    """The vector's |O| of the target log-odds at the localisation's t closest to 1, and its
    sign (NaN without a target)."""
    if target[0] < 0:
        return float("nan"), 0.0
    t = closest_to_one(config.localise_ts)
    o = float(_log_odds_odd(policy, a, config.hook, v, [t], target)[0])
    return abs(o), float(np.sign(o))


def random_matched_effect(
    policy: nn.Module, mazes: StudyMazes, vectors: StudyVectors, config: StudyConfig
) -> xr.Dataset:
    """``rme_goal`` (vector, maze): the vector's O of the target log-odds at the t closest to
    1 (its size is the goal); per draw of ``random_matched_draws`` random directions (the vector's norm per position, a
    seeded draw over the whole study's rows): ``rme_t`` (signed t*, NaN: not reached within
    ``random_matched_max_t``), ``rme_reached``, ``rme_even`` / ``rme_odd`` (readout) at t*, and
    ``rme_even_cut`` (cut, readout): E at t* with the network symmetrised at each cut, over
    (vector, control_draw, ..., maze). One maze per forward; the match in float64."""
    p64 = copy.deepcopy(policy).double()
    acts, own = own_line(p64, mazes, vectors, config.hook)
    targets = target_directions(mazes, vectors.specs)
    cuts = [str(c) for c in valid_cuts(p64, config.hook, p64.output_hook)]
    names, draws, n = list(vectors.names), int(config.random_matched_draws), acts.shape[0]
    rows, seed = (mazes.first, mazes.total or n), config.seeds()["random_matched"]
    goal = np.full((len(names), n), np.nan)
    t_star = np.full((len(names), draws, n), np.nan)
    even, odd = (np.full((len(names), draws, len(READOUTS), n), np.nan) for _ in range(2))
    by_cut = np.full((len(names), draws, len(cuts), len(READOUTS), n), np.nan)
    for vi, name in enumerate(names):
        v, tgt = own[name].double(), targets[name]
        goals = [_vector_goal(p64, acts[[i]], v[[i]], tgt[[i]], config) for i in range(n)]
        goal[vi] = [g[0] * g[1] for g in goals]  # the vector's O, signed
        for d in range(draws):
            gen = torch.Generator().manual_seed(draw_seed(seed, name, d))
            u = matched_random(own[name], gen, rows).double()
            for i in range(n):
                found = _one_maze(
                    (p64, policy), acts[[i]], u[[i]], tgt[[i]], goals[i], cuts, config
                )
                t_star[vi, d, i], even[vi, d, :, i], odd[vi, d, :, i], by_cut[vi, d, ..., i] = found
    return _dataset(names, goal, t_star, even, odd, by_cut, cuts)


def _dataset(
    names: Sequence[str],
    goal: np.ndarray,
    t_star: np.ndarray,
    even: np.ndarray,
    odd: np.ndarray,
    by_cut: np.ndarray,
    cuts: Sequence[str],
) -> xr.Dataset:
    """The matched control's arrays as a labelled Dataset."""
    vd = ("vector", "control_draw")
    at = "at each maze's matched t* (|O| of the target log-odds equal to the vector's)"
    ds = xr.Dataset(
        {
            "rme_goal": (
                ("vector", "maze"),
                goal,
                {"long_name": "the vector's O (log-odds): the goal"},
            ),
            "rme_t": (
                (*vd, "maze"),
                t_star,
                {"long_name": "matched t* (signed: O has the vector's sign; NaN: not reached)"},
            ),
            "rme_reached": ((*vd, "maze"), np.isfinite(t_star).astype(np.int8)),
            "rme_even": ((*vd, "readout", "maze"), even, {"long_name": f"E {at}"}),
            "rme_odd": ((*vd, "readout", "maze"), odd, {"long_name": f"O {at}"}),
            "rme_even_cut": (
                (*vd, "cut", "readout", "maze"),
                by_cut,
                {"long_name": f"E with the network symmetrised at the cut, {at}"},
            ),
        },
        coords={
            "vector": list(names),
            "control_draw": np.arange(t_star.shape[1]),
            "cut": list(cuts),
            "readout": list(READOUTS),
            "maze": np.arange(goal.shape[-1]),
        },
    )
    return label_readouts(ds)
