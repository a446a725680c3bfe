"""The later layers: where else the vectors steer, and whether the asymmetry is made there too.

- :func:`later_layer`: each candidate vector's steering effect at the published coefficients
  (:attr:`~hookdiff.study.targets.VectorSpec.published_t`; cheese t = −1: drop of P(toward
  cheese); top-right t = +1: rise of P(toward top-right)) at the decision squares, and the
  latest candidate within ``later_tolerance`` of the best (:func:`pick_later`);
- :func:`matched_later`: each candidate's coefficient matched to the steering layer's effect
  (vectors from pairs at the start and on the decision square), whether it still steers, and the
  localisation's cut scan at the latest layer that does.

Every function loops over the studied vectors (``vectors.specs``), never names one. The
matching and the later scan read each maze from forwards that hold only its rows
(:func:`~hookdiff.study.localise.each_maze`), so a maze's values do not depend on which other
mazes are studied beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import xarray as xr
from torch import Tensor, nn

from hookdiff.analysis import cut_scan, line_response, valid_cuts
from hookdiff.analysis.matching import matched_t
from hookdiff.claim import ALPHA
from hookdiff.maze.state import MazeState
from hookdiff.rollout import Steering, decision_square_probs
from hookdiff.stats import bootstrap_mean, holm
from hookdiff.study.config import StudyConfig
from hookdiff.study.inputs import (
    StudyMazes,
    StudyVectors,
    decision_square_vectors,
    later_candidates,
)
from hookdiff.study.localise import each_maze
from hookdiff.study.readouts import (
    label_readouts,
    readouts,
    target_directions,
    target_probabilities,
    target_probability,
)
from hookdiff.study.schema import READOUTS, SCAN_VARIANTS
from hookdiff.study.targets import VECTOR_SPECS, VectorSpec
from hookdiff.vectors import activations_from_obs

__all__ = [
    "PAIR_POSITIONS",
    "SCAN_ORIGINS",
    "VECTOR_ORIGINS",
    "candidate_effect",
    "later_layer",
    "later_scan",
    "latest_steering",
    "leave_one_out",
    "matched_later",
    "matched_t",
    "mean_abs_change",
    "pick_later",
    "target_p",
]


def _no_op() -> None:
    """The default progress callback."""


# --------------------------------------------------------------------------------------------
# Later layer
# --------------------------------------------------------------------------------------------


def later_layer(
    policy: nn.Module,
    mazes: StudyMazes,
    vectors: StudyVectors,
    candidates: Sequence[str],
    tolerance: float,
    advance: Callable[[], None] = _no_op,
) -> tuple[str, xr.Dataset]:
    """The later layer (:func:`pick_later`) and the record over ``candidate`` it was picked from.

    ``advance`` is called after each candidate (progress).
    """
    base = decision_square_probs(policy, mazes.states)
    names = vectors.names
    effect = np.zeros((len(candidates), len(names)))
    for i, hook in enumerate(candidates):
        effect[i] = candidate_effect(policy, mazes.states, hook, vectors.applied(hook), base)
        advance()
    hook, scores = pick_later(candidates, effect, tolerance)
    norms = [[vectors.norm(h, v) for v in names] for h in candidates]
    record = xr.Dataset(
        {
            "candidate_effect": (("candidate", "vector"), effect),
            "candidate_score": (("candidate",), scores),
            "candidate_vector_norm": (
                ("candidate", "vector"),
                np.array(norms).reshape(effect.shape),
            ),
        },
        coords={"candidate": list(candidates), "vector": list(names)},
    )
    return hook, record


def candidate_effect(
    policy: nn.Module,
    mazes: Sequence[MazeState],
    hook: str,
    vecs: Mapping[str, Tensor],
    base: xr.Dataset,
) -> np.ndarray:
    """Per vector of ``vecs`` (``{name: V}``, built-in names): the mean steering effect at
    ``hook`` and the published coefficient.

    The change of P(toward the vector's target) (:attr:`VectorSpec.target_var`) from the
    unsteered ``base`` (:func:`decision_square_probs`), signed so the published direction is
    positive (cheese, t = −1: mean drop of P(toward cheese); top-right, t = +1: mean rise of
    P(toward top-right)). Per-maze vectors ``(N, ...)`` steer maze i with row i.
    """
    out = np.zeros(len(vecs))
    before = _toward(base, mazes)
    for i, (name, v) in enumerate(vecs.items()):
        spec = VECTOR_SPECS[name]
        steering = [Steering(hook, v, spec.published_t)]
        steered = decision_square_probs(policy, mazes, steering=steering)
        change = _toward(steered, mazes)[spec.target_var] - before[spec.target_var]
        out[i] = float(np.mean(spec.direction * change))
    return out


def _toward(probs: xr.Dataset, mazes: Sequence[MazeState]) -> dict[str, np.ndarray]:
    """Every target readout (:func:`target_probabilities`) of :func:`decision_square_probs`."""
    squares = [tuple(int(x) for x in q) for q in probs["decision_square"].values]
    return target_probabilities(probs["direction_probs"].values, mazes, squares)


def pick_later(
    hooks: Sequence[str], effect: np.ndarray, tolerance: float
) -> tuple[str, np.ndarray]:
    """The latest candidate whose score (mean effect of the vectors) is within ``tolerance``.

    "Within 10% of the best" means ``score >= best - tolerance·|best|``; candidates are compared
    in the model's forward order as given.

    Returns:
        ``(hook, scores)``.

    Example:
        >>> pick_later(["a", "b"], np.array([[1.0, 1.0], [0.95, 0.95]]), 0.1)[0]
        'b'
    """
    scores = effect.mean(axis=1)
    best = float(np.max(scores))
    ok = np.flatnonzero(scores >= best - tolerance * abs(best))
    return hooks[int(ok[-1])], scores


# --------------------------------------------------------------------------------------------
# Later layers matched to a common effect size
# --------------------------------------------------------------------------------------------

#: Where a later layer's vector pairs are taken: mouse at the start (the published protocol) or
#: on the decision square (where the vectors are applied).
PAIR_POSITIONS = ("start", "decision_square")
#: The vectors matched at each later layer (the ``pair_position`` coordinate): each maze's own
#: pair at each position, then the mean of every *other* maze's pair there (leave-one-out). A
#: maze's own decision-square pair steers at any layer by construction (at |t| = 1 it patches in
#: the paired real state's activation); a leave-one-out vector was not built from the maze, so
#: whether it steers is a finding.
VECTOR_ORIGINS = (*PAIR_POSITIONS, *(f"{p}_leave_one_out" for p in PAIR_POSITIONS))
#: The origins the later scan may run on, in order of preference: only vectors the maze's base
#: was not built from (an own pair's match near |t| = 1 would re-read an activation patch).
SCAN_ORIGINS = ("decision_square_leave_one_out", "start_leave_one_out")


def mean_abs_change(p: np.ndarray, p0: np.ndarray) -> np.ndarray:
    """The mean over mazes (the last axis) of |p − p0|, NaN mazes left out: the size of an effect
    that may push some mazes up and others down (the mean of the signed change would cancel).

    Example:
        >>> round(float(mean_abs_change(np.array([0.7, 0.3]), np.array([0.5, 0.5]))), 6)
        0.2
    """
    return np.nanmean(np.abs(p - p0), axis=-1)


def target_p(
    policy: nn.Module,
    acts: Tensor,
    hook: str,
    v: Tensor,
    ts: Sequence[float],
    target: np.ndarray,
    max_rows: int,
) -> np.ndarray:
    """P(step toward each maze's target) along a + t·v injected at ``hook``: ``(t, maze)``, one
    maze per forward (``v``: one vector for all, or one per maze ``(N, ...)``)."""

    def one(m: slice) -> np.ndarray:
        logits = line_response(
            policy,
            acts[m],
            hook,
            _rows(v, acts, m),
            list(ts),
            depth=policy.output_hook,
            max_rows=max_rows,
        )
        return target_probability(logits.values, target[m])

    return each_maze(acts.shape[0], one)


def leave_one_out(v: Tensor) -> Tensor:
    """Per maze, the mean of every other maze's vector: (Σ − own) / (N − 1) over the leading
    (maze) dim, summed in float64. With one maze, ``v`` itself.

    Example:
        >>> import torch
        >>> leave_one_out(torch.tensor([[1.0], [2.0], [6.0]])).flatten().tolist()
        [4.0, 3.5, 1.5]
    """
    if v.shape[0] < 2:
        return v
    total = v.double().sum(dim=0, keepdim=True)
    return ((total - v.double()) / (v.shape[0] - 1)).to(v.dtype)


def _origins(
    own: Mapping[str, Mapping[str, Mapping[str, Tensor]]], acts: Mapping[str, Tensor]
) -> dict[str, dict[str, dict[str, Tensor]]]:
    """``{origin: {hook: {vector: V}}}`` over :data:`VECTOR_ORIGINS` from the own pairs at each
    position; a mean vector (one for every maze) is already not the maze's own and is kept."""
    out = {pos: {h: dict(vs) for h, vs in own[pos].items()} for pos in PAIR_POSITIONS}
    for pos in PAIR_POSITIONS:
        out[f"{pos}_leave_one_out"] = {
            h: {k: leave_one_out(v) if v.ndim == acts[h].ndim else v for k, v in vs.items()}
            for h, vs in own[pos].items()
        }
    return out


def _rows(v: Tensor, acts: Tensor, m: slice) -> Tensor:
    """Maze ``m``'s rows of ``v`` when it holds one vector per maze, else ``v`` itself."""
    return v[m] if v.ndim == acts.ndim else v


def matched_later(
    policy: nn.Module,
    mazes: StudyMazes,
    vectors: StudyVectors,
    config: StudyConfig,
    advance: Callable[[], None] = _no_op,
) -> xr.Dataset:
    """Each candidate layer's coefficient matched to the steering layer's effect, and the scan
    at the latest layer that still steers.

    The common effect size is the steering layer's mean |P(t) − P(0)| of the step toward the
    vector's target at the published t (start pairs, as published). Per candidate, pair
    position (:data:`PAIR_POSITIONS`) and vector, the matched t (published sign) is found by
    bisection (:func:`matched_t`) within |t| ≤ ``later_max_t``; the per-maze signed effect
    there is kept. A layer *still steers* a vector when its matched t exists and the 95 %
    bootstrap interval of the mean effect toward the published direction lies above 0 (the
    sign pattern kept). The cut scan (:func:`later_scan`) runs at each vector's latest
    candidate after the steering layer that still steers (decision-square pairs first). The
    matching averages over every maze, so this step is not split by maze.
    """
    hooks = list(dict.fromkeys([config.hook, *later_candidates(policy, config)]))
    specs = vectors.specs
    dtype = next(policy.parameters()).dtype
    obs = mazes.obs["decision_square"].to(dtype)
    acts = {h: activations_from_obs(policy, obs, h, batch_size=1) for h in hooks}
    own = {
        "start": {h: vectors.applied(h) for h in hooks},
        "decision_square": decision_square_vectors(policy, mazes, hooks, batch_size=1, specs=specs),
    }
    sources = _origins(own, acts)
    targets = target_directions(mazes, specs)
    shape = (len(hooks), len(VECTOR_ORIGINS), len(specs))
    t_found, norms = np.full(shape, np.nan), np.full(shape, np.nan)
    effects = np.full((*shape, len(mazes.states)), np.nan)
    goal = {}
    for vi, spec in enumerate(specs):
        name = spec.name
        p = target_p(
            policy,
            acts[config.hook],
            config.hook,
            sources["start"][config.hook][name],
            [0.0, spec.published_t],
            targets[name],
            config.max_rows,
        )
        goal[name] = float(mean_abs_change(p[1], p[0]))
        for hi, h in enumerate(hooks):
            for pi, pos in enumerate(VECTOR_ORIGINS):
                v = sources[pos][h][name]
                norms[hi, pi, vi] = float(
                    v.flatten(1 if v.ndim > acts[h].ndim - 1 else 0).norm(dim=-1).mean()
                )
                t, effect = _match(policy, acts[h], h, v, targets[name], goal[name], spec, config)
                t_found[hi, pi, vi], effects[hi, pi, vi] = t, effect
            advance()
    matched = _matched_dataset(hooks, t_found, effects, norms, goal, config)
    scan = later_scan(policy, matched, sources, acts, targets, config)
    return xr.merge([matched, scan], combine_attrs="drop_conflicts")


def latest_steering(matched: xr.Dataset, steering_hook: str, vector: str) -> tuple[str, str] | None:
    """``(layer, origin)`` of the latest layer after ``steering_hook`` that a vector the maze
    was not built from still steers (:data:`SCAN_ORIGINS`, decision-square pairs first), or
    None: no such vector steers after the steering layer."""
    still = matched["still_steers"].sel(vector=vector)
    layers = [str(h) for h in matched["matched_layer"].values if h != steering_hook]
    for layer in reversed(layers):
        for pos in SCAN_ORIGINS:
            if int(still.sel(matched_layer=layer, pair_position=pos)):
                return layer, pos
    return None


def later_scan(
    policy: nn.Module,
    matched: xr.Dataset,
    sources: Mapping[str, Mapping[str, Mapping[str, Tensor]]],
    acts: Mapping[str, Tensor],
    targets: Mapping[str, np.ndarray],
    config: StudyConfig,
) -> xr.Dataset:
    """The cut scan of the localisation at each vector's latest layer that still steers, at its
    matched t: ``later_even`` (vector, readout, maze) on the exact network and
    ``later_even_cut`` (vector, variant, later_cut, readout, maze); NaN where none steers or a
    cut lies before the layer. ``later_scan_layer`` / ``_position`` / ``_t`` say where."""
    n = len(next(iter(targets.values())))
    order = {h: i for i, h in enumerate(policy.hook_names)}
    names = [str(v) for v in matched["vector"].values]
    picked = {v: latest_steering(matched, config.hook, v) for v in names}
    logits = policy.output_hook
    cuts = sorted(
        {c for p in picked.values() if p for c in valid_cuts(policy, p[0], logits)},
        key=order.__getitem__,
    )
    exact = np.full((len(names), len(READOUTS), n), np.nan)
    by_cut = np.full((len(names), len(SCAN_VARIANTS), len(cuts), len(READOUTS), n), np.nan)
    where = {"layer": [""] * len(names), "position": [""] * len(names)}
    t_at = np.full(len(names), np.nan)
    for vi, name in enumerate(names):
        if picked[name] is None:
            continue
        layer, pos = picked[name]
        t = abs(
            float(matched["matched_t"].sel(matched_layer=layer, pair_position=pos, vector=name))
        )
        v = sources[pos][layer][name]
        exact[vi], even, scanned = _later_even(
            policy, acts[layer], layer, v, t, targets[name], config
        )
        idx = [cuts.index(c) for c in scanned]
        by_cut[vi][:, idx] = even.transpose(1, 2, 0, 3)
        where["layer"][vi], where["position"][vi], t_at[vi] = layer, pos, t
    return _later_scan_dataset(names, exact, by_cut, cuts, where, t_at)


def _later_even(
    policy: nn.Module,
    acts: Tensor,
    layer: str,
    v: Tensor,
    t: float,
    target: np.ndarray,
    config: StudyConfig,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """E(t) steered at ``layer``, one maze per forward: on the exact network ``(readout, maze)``,
    at each cut ``(readout, variant, cut, maze)``, and the cuts scanned."""
    ts, kw = [-t, 0.0, t], {"depth": policy.output_hook, "max_rows": config.max_rows}

    def exact(m: slice) -> np.ndarray:
        logits = line_response(policy, acts[m], layer, _rows(v, acts, m), ts, **kw)
        return readouts(logits.values, target[m], ts)

    scanned: list[str] = []

    def by_cut(m: slice) -> np.ndarray:
        scan = cut_scan(policy, acts[m], layer, _rows(v, acts, m), ts, **kw)
        scanned[:] = [str(c) for c in scan["cut"].values]
        return readouts(scan.sel(variant=list(SCAN_VARIANTS)).values, target[m], ts)

    r, c = each_maze(acts.shape[0], exact), each_maze(acts.shape[0], by_cut)
    even = c[..., 2, :] + c[..., 0, :] - 2 * c[..., 1, :]
    return r[:, 2] + r[:, 0] - 2 * r[:, 1], even, scanned


def _match(
    policy: nn.Module,
    acts: Tensor,
    hook: str,
    v: Tensor,
    target: np.ndarray,
    goal: float,
    spec: VectorSpec,
    config: StudyConfig,
) -> tuple[float, np.ndarray]:
    """The matched t (published sign) of one layer and vector, and the per-maze effect there
    toward the published direction (NaN where the goal is not reached within ``later_max_t``)."""
    sign = spec.direction
    p0 = target_p(policy, acts, hook, v, [0.0], target, config.max_rows)[0]

    def p_at(ts: Sequence[float]) -> np.ndarray:
        return target_p(policy, acts, hook, v, [sign * t for t in ts], target, config.max_rows)

    def mean_abs(ts: Sequence[float]) -> np.ndarray:
        return mean_abs_change(p_at(ts), p0)

    t = matched_t(mean_abs, goal, config.later_max_t, config.later_match_steps)
    if not np.isfinite(t):
        return t, np.full(len(p0), np.nan)
    return sign * t, sign * (p_at([t])[0] - p0)


#: long_name and description of the matched-layer variables.
_MATCHED_ATTRS = {
    "matched_t": (
        "matched coefficient",
        "the t (published sign) at which the layer's vector "
        "moves P(toward the target) by the steering layer's mean |effect| at the "
        "published t (bisection); NaN: not reached within later_max_t",
    ),
    "matched_effect": (
        "effect at the matched t",
        "P(toward the target) at the matched t minus "
        "at t = 0, signed so the published direction is positive, per maze",
    ),
    "matched_vector_norm": ("vector norm", "mean over mazes of ‖v‖ at the layer"),
    "still_steers": (
        "still steers",
        "1 where the matched t exists, the 95 % bootstrap interval of the mean matched_effect "
        "lies above 0 and its test against 0 rejects after Holm's adjustment over every "
        "matching with a matched t (still_steers_p < 0.05)",
    ),
    "still_steers_p": (
        "adjusted p of still steers",
        "the two-sided bootstrap p-value of mean matched_effect = 0, Holm-adjusted over every "
        "(matched_layer, pair_position, vector) with a matched t; NaN: no matched t",
    ),
    "matched_goal": (
        "common effect size",
        "the steering layer's mean |P(t) − P(0)| of the step "
        "toward the target at the published t, start pairs",
    ),
}


def _matched_dataset(
    hooks: Sequence[str],
    t_found: np.ndarray,
    effects: np.ndarray,
    norms: np.ndarray,
    goal: Mapping[str, float],
    config: StudyConfig,
    origins: Sequence[str] = VECTOR_ORIGINS,
) -> xr.Dataset:
    """The matching over (matched_layer, pair_position, vector[, maze]) with ``still_steers``,
    decided over the whole matching as one Holm family (``still_steers_p``): the search for the
    latest layer that steers reads every cell, so no cell is a lone uncorrected test.

    ``goal``: ``{vector: common effect size}`` in the order of the ``vector`` axis; ``origins``:
    the ``pair_position`` values."""
    seed = config.seeds()["analysis"]
    above = np.zeros(t_found.shape, dtype=bool)
    p_zero = np.full(t_found.shape, np.nan)
    for idx in np.ndindex(t_found.shape):
        iv = bootstrap_mean(effects[idx], seed=seed)
        if np.isfinite(t_found[idx]) and iv.p_zero is not None:
            above[idx], p_zero[idx] = iv.lo > 0, iv.p_zero
    # the search for the latest layer that steers reads all of these: one Holm family
    p_adjusted = holm(p_zero)
    still = (above & (p_adjusted < ALPHA)).astype(np.int8)
    dims = ("matched_layer", "pair_position", "vector")
    data = {
        "matched_t": (dims, t_found),
        "matched_effect": ((*dims, "maze"), effects),
        "matched_vector_norm": (dims, norms),
        "still_steers": (dims, still),
        "still_steers_p": (dims, p_adjusted),
        "matched_goal": (("vector",), np.array(list(goal.values()))),
    }
    coords = {
        "matched_layer": list(hooks),
        "pair_position": list(origins),
        "vector": list(goal),
        "maze": np.arange(effects.shape[-1]),
    }
    ds = xr.Dataset(data, coords=coords)
    for name, (long, text) in _MATCHED_ATTRS.items():
        ds[name].attrs = {"long_name": long, "description": text}
    return ds


def _later_scan_dataset(
    names: Sequence[str],
    exact: np.ndarray,
    by_cut: np.ndarray,
    cuts: Sequence[str],
    where: Mapping[str, list[str]],
    t_at: np.ndarray,
) -> xr.Dataset:
    """The later scan's arrays as a labelled Dataset."""
    what = "E(t) = r(t) + r(−t) − 2 r(0) of the target readout at the matched t, steered at "
    ds = xr.Dataset(
        {
            "later_even": (
                ("vector", "readout", "maze"),
                exact,
                {
                    "long_name": "even part at the later layer",
                    "description": what + "later_scan_layer, exact network",
                },
            ),
            "later_even_cut": (
                ("vector", "variant", "later_cut", "readout", "maze"),
                by_cut,
                {
                    "long_name": "even part at the later layer, network cut",
                    "description": what + "later_scan_layer, network cut (variant) at later_cut",
                },
            ),
            "later_scan_layer": (("vector",), np.array(where["layer"], dtype=str)),
            "later_scan_position": (("vector",), np.array(where["position"], dtype=str)),
            "later_scan_t": (("vector",), t_at),
        },
        coords={
            "vector": list(names),
            "variant": list(SCAN_VARIANTS),
            "later_cut": list(cuts),
            "readout": list(READOUTS),
            "maze": np.arange(exact.shape[-1]),
        },
    )
    return label_readouts(ds)
