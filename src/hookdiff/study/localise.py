"""Where the add/subtract asymmetry is created: the localisation scan, its controls, its kinks.

The target readout r at a maze's decision square is P(step toward the vector's target cell)
(:attr:`~hookdiff.study.targets.VectorSpec.target_cell`; cheese vector: toward the cheese;
top-right vector: toward the top-right cell), its log-odds, or the
margin (the log-odds linearised in the logits at the line's t = 0, whose even part is the
asymmetry made in the logits: the creation cut is read on it), all read from the logits along
a + t·v (a: the activation at the steering hook, mouse on the decision square; v: the maze's
vector). Its even part E(t) = r(t) + r(−t) − 2·r(0) is the add/subtract
asymmetry, its odd part O(t) = r(t) − r(−t) the steering effect. Each function returns its
labelled part of the study's Dataset:

- :func:`localise_controls`: r(0), E(t), O(t) on the exact network for the real vectors and four
  controls (a random direction matched in norm and spatial support, another maze's vector, the
  vector added at the paired base, a random-init agent with its own vectors), and the distance of
  a ± v from the paired real activation;
- :func:`localise_scan`: E(t) with the network cut and linearised or symmetrised at every valid
  cut (symmetrised at the logits it is the softmax-only test), and with one nonlinear layer frozen
  at its t = 0 pattern (knock-out) or every layer but one (knock-in);
- :func:`localise_kinks`: E(t) of the log-odds linearised in the logits at t = 0, summed exactly
  over the kinks of each layer and of each channel (a float64 line walk) on the first
  ``breakpoint_mazes`` mazes.

The readouts are :mod:`hookdiff.study.readouts`; the rollouts that test the scan's answer in
behaviour are :mod:`hookdiff.study.cut_rollouts`. The scan runs in the policy's float32; the
kink walk in float64, where rounding cannot hide or invent breakpoints.

Every forward of the scan and the controls holds one maze's rows only (:func:`each_maze`):
float32 results depend on a batch's composition (which rows share it, how many), so a maze read
beside others gives values that differ in the last bits from the same maze read beside different
others. One maze per forward makes each maze's values, and so every decision taken on them (the
creation cut, the cuts rolled out), independent of how the study is split into blocks.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import Tensor, nn

from hookdiff._device import model_device
from hookdiff.analysis import (
    cut_scan,
    even_from_kinks,
    even_odd,
    freezable,
    kink_attribution,
    line_response,
)
from hookdiff.hooks import capture
from hookdiff.maze import with_mouse
from hookdiff.maze.state import MazeState
from hookdiff.study.config import StudyConfig
from hookdiff.study.cut_rollouts import roll_t
from hookdiff.study.inputs import StudyMazes, StudyVectors, random_init_policy, study_vectors
from hookdiff.study.readouts import (
    label_readouts,
    readouts,
    target_directions,
    target_log_odds,
)
from hookdiff.study.schema import CONTROL_LINES, READOUTS, SCAN_VARIANTS, SIGNS, VECTOR_SOURCES
from hookdiff.study.targets import VectorSpec, selected_specs
from hookdiff.vectors import activations_at, activations_from_obs

__all__ = [
    "CONTROLS",
    "READOUTS",
    "SCAN_VARIANTS",
    "ControlLine",
    "base_swap_distance",
    "control_lines",
    "each_maze",
    "exact_readouts",
    "kink_maze_count",
    "localise_attrs",
    "localise_controls",
    "localise_kinks",
    "localise_scan",
    "matched_random",
    "own_line",
    "paired_states",
    "source_distances",
]

#: The lines of the localisation (the ``control`` coordinate; :data:`schema.CONTROL_LINES`).
CONTROLS = CONTROL_LINES


def _line_ts(ts_pos: Sequence[float]) -> list[float]:
    """−t (descending |t|), 0, +t for the positive ``ts_pos``."""
    t = sorted(float(x) for x in ts_pos)
    return [-x for x in reversed(t)] + [0.0] + t


def each_maze(n: int, read: Callable[[slice], np.ndarray]) -> np.ndarray:
    """``read(slice(i, i + 1))`` for each of ``n`` mazes, joined on the last (maze) axis.

    ``read`` computes one maze's values from forwards that hold only that maze's rows, so the
    result for a maze is bit-identical whichever other mazes share its block (float32 kernels
    round differently for different batches).

    Example:
        >>> each_maze(3, lambda m: np.arange(6.0).reshape(2, 3)[:, m]).tolist()
        [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    """
    return np.concatenate([read(slice(i, i + 1)) for i in range(n)], axis=-1)


def _even_odd(r: np.ndarray, dims: Sequence[str], coords: Mapping[str, Any]) -> xr.Dataset:
    """``even`` and ``odd`` of ``r`` (with a ``t`` axis among ``dims``) over ``t_loc``."""
    parts = even_odd(xr.DataArray(r, dims=tuple(dims), coords=dict(coords)))
    return parts.rename(t_pos="t_loc")


# --------------------------------------------------------------------------------------------
# Inputs of the controls
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ControlLine:
    """One control of one vector: the agent and the lines a + t·v it is read along."""

    policy: nn.Module
    """The agent (the study's, or the random-init one)."""
    acts: Tensor
    """``(N, ...)``: each maze's activation at the steering hook (the line's base)."""
    vectors: Tensor
    """``(N, ...)``: the vector added to maze i's activation."""


def own_line(
    policy: nn.Module, mazes: StudyMazes, vectors: StudyVectors, hook: str
) -> tuple[Tensor, dict[str, Tensor]]:
    """The decision-square activations at ``hook`` (one maze per forward) and each maze's
    applied vectors."""
    dtype = next(policy.parameters()).dtype
    obs = mazes.obs["decision_square"].to(dtype)
    acts = activations_from_obs(policy, obs, hook, batch_size=1)
    vecs = vectors.applied(hook)
    if not vectors.per_maze:
        vecs = {k: v.expand(acts.shape[0], *v.shape) for k, v in vecs.items()}
    return acts, vecs


def paired_states(
    mazes: StudyMazes, specs: Sequence[VectorSpec] | None = None
) -> dict[str, list[MazeState]]:
    """Per vector of ``specs`` (default: the published two), each maze's paired real state
    (:meth:`VectorSpec.paired_state`: the other state of its pair), mouse on the maze's decision
    square.

    Cheese vector (made as with − without cheese): the maze without its cheese. Top-right vector
    (with − without the corridor): the maze with the top-right corridor open.
    """
    placed = [with_mouse(s, d) for s, d in zip(mazes.states, mazes.squares)]
    chosen = selected_specs(None) if specs is None else specs
    return {spec.name: [spec.paired_state(s) for s in placed] for spec in chosen}


def matched_random(
    vectors: Tensor, generator: torch.Generator, rows: tuple[int, int] | None = None
) -> Tensor:
    """Random vectors matched to ``vectors (N, C, ...)`` in norm and spatial support.

    At every maze and position the channel vector ``v[i, :, h, w]`` is replaced by a random
    direction (isotropic Gaussian, normalised) of the same norm, so positions where v is 0 stay 0.
    ``rows = (first, total)``: these are rows ``first:first + N`` of one draw over ``total`` rows
    (a block of the study gets its mazes' share of the whole study's draw).
    """
    first, total = rows or (0, vectors.shape[0])
    g = torch.randn((total, *vectors.shape[1:]), generator=generator, dtype=vectors.dtype)
    g = g[first : first + vectors.shape[0]].to(vectors.device)
    return g / g.norm(dim=1, keepdim=True) * vectors.norm(dim=1, keepdim=True)


def control_lines(
    policy: nn.Module, mazes: StudyMazes, vectors: StudyVectors, config: StudyConfig
) -> dict[str, dict[str, ControlLine]]:
    """``{vector: {control: line}}`` for every control of :data:`CONTROLS` (seeded)."""
    hook = config.hook
    acts, own = own_line(policy, mazes, vectors, hook)
    other = vectors.others(hook) if vectors.per_maze else own
    specs = vectors.specs
    paired = {
        k: activations_at(policy, s, hook, batch_size=1)
        for k, s in paired_states(mazes, specs).items()
    }
    seeds = config.seeds()
    generator = torch.Generator().manual_seed(seeds["localise"])
    rows = (mazes.first, mazes.total or len(mazes.states))
    untrained = random_init_policy(policy.scale, seeds["untrained"]).to(model_device(policy))
    u_acts, u_own = _untrained_line(untrained, mazes, config)
    loo = vectors.leave_one_out(hook) if vectors.per_maze else own
    return {
        name: {
            "vector": ControlLine(policy, acts, own[name]),
            "random": ControlLine(policy, acts, matched_random(own[name], generator, rows)),
            "other_maze": ControlLine(policy, acts, other[name]),
            "leave_one_out": ControlLine(policy, acts, loo[name]),
            "base_swap": ControlLine(policy, paired[name], own[name]),
            "base_swap_other_maze": ControlLine(policy, paired[name], other[name]),
            "base_swap_leave_one_out": ControlLine(policy, paired[name], loo[name]),
            "untrained": ControlLine(untrained, u_acts, u_own[name]),
        }
        for name in vectors.names
    }


def _untrained_line(
    untrained: nn.Module, mazes: StudyMazes, config: StudyConfig
) -> tuple[Tensor, dict[str, Tensor]]:
    """The random-init agent's activations and vectors (its own pairs), one maze per forward:
    per-maze vectors are made maze by maze, the seeded pairs' vectors once."""
    hook = config.hook
    if config.vectors_from != "same_maze":
        return own_line(untrained, mazes, study_vectors(untrained, config, [], [hook]), hook)
    parts = [
        own_line(untrained, one, study_vectors(untrained, config, one.states, [hook]), hook)
        for one in (mazes.block(i, i + 1) for i in range(len(mazes.states)))
    ]
    acts = torch.cat([a for a, _ in parts])
    return acts, {k: torch.cat([v[k] for _, v in parts]) for k in parts[0][1]}


# --------------------------------------------------------------------------------------------
# Controls and the base swap
# --------------------------------------------------------------------------------------------


def localise_controls(
    policy: nn.Module, mazes: StudyMazes, vectors: StudyVectors, config: StudyConfig
) -> xr.Dataset:
    """``loc_base``, ``loc_even``, ``loc_odd`` over (control, vector, readout, [t_loc,] maze) and
    ``base_swap_distance`` over (vector, sign, maze)."""
    lines = control_lines(policy, mazes, vectors, config)
    names = vectors.names
    targets = target_directions(mazes, vectors.specs)
    ts = _line_ts(config.localise_ts)
    r = np.stack(
        [
            np.stack([exact_readouts(lines[v][c], config, ts, targets[v]) for v in names])
            for c in CONTROLS
        ]
    )  # (control, vector, readout, t, maze)
    dims = ("control", "vector", "readout", "t", "maze")
    coords = {"control": list(CONTROLS), "vector": list(names), "readout": list(READOUTS)}
    coords |= {"t": ts, "maze": np.arange(r.shape[-1])}
    parts = _even_odd(r, dims, coords)
    base = xr.DataArray(r, dims=dims, coords=coords).sel(t=0.0, drop=True)
    ds = xr.Dataset(
        {
            "loc_base": base,
            "loc_even": parts["even"].transpose("control", "vector", "readout", "t_loc", "maze"),
            "loc_odd": parts["odd"].transpose("control", "vector", "readout", "t_loc", "maze"),
            "base_swap_distance": source_distances(lines),
        }
    )
    return label_readouts(ds)


def exact_readouts(
    line: ControlLine, config: StudyConfig, ts: Sequence[float], target: np.ndarray
) -> np.ndarray:
    """``(readout, t, maze)`` along the exact network, one maze per forward."""

    def one(m: slice) -> np.ndarray:
        logits = line_response(
            line.policy,
            line.acts[m],
            config.hook,
            line.vectors[m],
            ts,
            depth=line.policy.output_hook,
            max_rows=config.max_rows,
        )
        return readouts(logits.values, target[m], ts)

    return each_maze(len(target), one)


def source_distances(lines: Mapping[str, Mapping[str, ControlLine]]) -> xr.DataArray:
    """:func:`base_swap_distance` for every vector source (:data:`VECTOR_SOURCES`), over
    (source, vector, sign, maze): the source's vector added to the maze's own base, measured
    from the maze's paired real state."""
    names = list(lines)
    per_source = []
    for own_line, swap_line in VECTOR_SOURCES.values():
        mine = {v: lines[v][own_line] for v in names}
        per_source.append(base_swap_distance(mine, {v: lines[v][swap_line].acts for v in names}))
    return xr.concat(per_source, dim="source").assign_coords(source=list(VECTOR_SOURCES))


def base_swap_distance(
    lines: Mapping[str, ControlLine], paired: Mapping[str, Tensor]
) -> xr.DataArray:
    """‖(a + s·v) − a_paired‖ / ‖a_paired − a‖ over (vector, sign, maze), s = +1, −1.

    a: each maze's activation at the decision square, v its vector, a_paired the activation of
    its paired real state (:func:`paired_states`) at the same square. Small for the sign that
    moves a toward a real state (interpolation), about 2 for the one that extrapolates.
    """
    names = list(lines)
    out = np.zeros((len(names), len(SIGNS), len(paired[names[0]])))
    for i, name in enumerate(names):
        a = lines[name].acts.double().flatten(1)
        v, p = lines[name].vectors.double().flatten(1), paired[name].double().flatten(1)
        gap = (p - a).norm(dim=1)
        for j, s in enumerate((1.0, -1.0)):
            out[i, j] = ((a + s * v - p).norm(dim=1) / gap).cpu().numpy()
    return xr.DataArray(
        out,
        dims=("vector", "sign", "maze"),
        coords={"vector": names, "sign": list(SIGNS), "maze": np.arange(out.shape[-1])},
    )


# --------------------------------------------------------------------------------------------
# The scan: cuts and frozen layers
# --------------------------------------------------------------------------------------------


def localise_scan(
    policy: nn.Module, mazes: StudyMazes, vectors: StudyVectors, config: StudyConfig
) -> xr.Dataset:
    """``loc_even_cut`` over (vector, variant, cut, readout, t_loc, maze) and
    ``loc_even_knockout`` / ``loc_even_knockin`` over (vector, frozen_layer, readout, t_loc, maze),
    each maze steered by its own vector; ``loc_odd_cut`` / ``_knockout`` / ``_knockin``: the odd
    part O(t) beside each (an intervention that kills the steering does not locate E)."""
    acts, own = own_line(policy, mazes, vectors, config.hook)
    targets = target_directions(mazes, vectors.specs)
    per_vector = [
        xr.merge(
            [
                _cut_even(policy, acts, own[v], targets[v], config),
                _frozen_even(policy, acts, own[v], targets[v], config),
            ]
        )
        for v in vectors.names
    ]
    ds = xr.concat(per_vector, dim="vector").assign_coords(vector=list(vectors.names))
    return label_readouts(ds)


def _cut_even(
    policy: nn.Module, acts: Tensor, v: Tensor, target: np.ndarray, config: StudyConfig
) -> xr.DataArray:
    """E(t) and O(t) at every valid cut and variant: ``loc_even_cut`` and ``loc_odd_cut`` over
    (variant, cut, readout, t_loc, maze), one maze's rows per forward."""
    ts, cuts = _line_ts(config.localise_ts), []

    def one(m: slice) -> np.ndarray:
        scan = cut_scan(
            policy,
            acts[m],
            config.hook,
            v[m],
            ts,
            depth=policy.output_hook,
            max_rows=config.max_rows,
        )
        scan = scan.sel(variant=list(SCAN_VARIANTS))
        cuts[:] = scan["cut"].values.tolist()
        return readouts(scan.values, target[m], ts)

    r = each_maze(acts.shape[0], one)  # (readout, variant, cut, t, maze)
    coords = {"readout": list(READOUTS), "variant": list(SCAN_VARIANTS)}
    coords |= {"cut": cuts, "t": ts, "maze": np.arange(acts.shape[0])}
    parts = _even_odd(r, ("readout", "variant", "cut", "t", "maze"), coords)
    order = ("variant", "cut", "readout", "t_loc", "maze")
    return xr.Dataset(
        {
            "loc_even_cut": parts["even"].transpose(*order),
            "loc_odd_cut": parts["odd"].transpose(*order),  # the steering kept beside E
        }
    )


def _frozen_even(
    policy: nn.Module, acts: Tensor, v: Tensor, target: np.ndarray, config: StudyConfig
) -> xr.Dataset:
    """E(t) (and O(t), ``loc_odd_*``) with one layer frozen (knock-out) or all but one
    (knock-in), per freezable layer."""
    layers = freezable(policy, config.hook, policy.output_hook)
    ts = _line_ts(config.localise_ts)
    kinds = {
        "loc_even_knockout": [[layer] for layer in layers],
        "loc_even_knockin": [[o for o in layers if o != layer] for layer in layers],
    }
    out = {}

    def frozen(f: list[str], m: slice) -> np.ndarray:
        logits = line_response(
            policy,
            acts[m],
            config.hook,
            v[m],
            ts,
            depth=policy.output_hook,
            freeze=f,
            max_rows=config.max_rows,
        )
        return readouts(logits.values, target[m], ts)

    for name, freezes in kinds.items():
        r = np.stack(
            [each_maze(acts.shape[0], partial(frozen, f)) for f in freezes]
        )  # (frozen_layer, readout, t, maze)
        coords = {"frozen_layer": layers, "readout": list(READOUTS), "t": ts}
        coords["maze"] = np.arange(acts.shape[0])
        parts = _even_odd(r, ("frozen_layer", "readout", "t", "maze"), coords)
        order = ("frozen_layer", "readout", "t_loc", "maze")
        out[name] = parts["even"].transpose(*order)
        out[name.replace("even", "odd")] = parts["odd"].transpose(*order)  # steering kept
    return xr.Dataset(out)


# --------------------------------------------------------------------------------------------
# Exact attribution over kinks
# --------------------------------------------------------------------------------------------


def localise_kinks(
    policy: nn.Module, mazes: StudyMazes, vectors: StudyVectors, config: StudyConfig
) -> xr.Dataset:
    """``kink_even`` (vector, frozen_layer, t_loc, kink_maze), ``kink_even_channel`` (vector,
    frozen_layer, kink_channel, t_loc, kink_maze), their sum ``kink_even_total`` and the directly
    evaluated ``kink_even_direct`` (vector, t_loc, kink_maze), on the first ``breakpoint_mazes``
    mazes, in float64. Without ``config.breakpoints`` nothing is walked (``kink_maze`` is empty)."""
    k = kink_maze_count(config, len(mazes.states))
    policy64 = copy.deepcopy(policy).double()
    acts, own = own_line(policy64, _first(mazes, max(k, 1)), vectors, config.hook)
    if k == 0:
        channels = _layer_channels(policy64, acts, config.hook)
        return _no_kinks(vectors.names, channels, config.localise_ts)
    targets = target_directions(_first(mazes, k), vectors.specs)
    names = vectors.names
    parts = [_kink_even(policy64, acts, own[v][:k].double(), targets[v], config) for v in names]
    return xr.concat(parts, dim="vector").assign_coords(vector=list(names))


def kink_maze_count(config: StudyConfig, n_mazes: int) -> int:
    """How many of the ``n_mazes`` studied mazes the kink walk covers (the first ones)."""
    return min(config.breakpoint_mazes, n_mazes) if config.breakpoints else 0


def _no_kinks(names: Sequence[str], channels: Mapping[str, int], ts: Sequence[float]) -> xr.Dataset:
    """The kink variables of the vectors ``names`` over an empty ``kink_maze`` (nothing
    walked)."""
    shape = (len(names), len(channels), len(ts), 0)
    dims = ("vector", "frozen_layer", "t_loc", "kink_maze")
    n = max(channels.values())
    coords = {"vector": list(names), "frozen_layer": list(channels), "kink_channel": np.arange(n)}
    coords |= {"t_loc": sorted(float(t) for t in ts), "kink_maze": np.arange(0)}
    channel_dims = ("vector", "frozen_layer", "kink_channel", "t_loc", "kink_maze")
    return xr.Dataset(
        {
            "kink_even": (dims, np.zeros(shape)),
            "kink_even_channel": (channel_dims, np.zeros(shape[:2] + (n,) + shape[2:])),
            "kink_even_total": (dims[:1] + dims[2:], np.zeros(shape[:1] + shape[2:])),
            "kink_even_direct": (dims[:1] + dims[2:], np.zeros(shape[:1] + shape[2:])),
        },
        coords=coords,
    )


def _first(mazes: StudyMazes, k: int) -> StudyMazes:
    """The first ``k`` studied mazes."""
    obs = {p: x[:k] for p, x in mazes.obs.items()}
    return StudyMazes(mazes.states[:k], mazes.squares[:k], obs)


def _kink_even(
    policy: nn.Module, acts: Tensor, v: Tensor, target: np.ndarray, config: StudyConfig
) -> xr.Dataset:
    """One vector's even part of w·logits by layer, by channel, in total, and evaluated directly."""
    hook, ts = config.hook, sorted(float(t) for t in config.localise_ts)
    w = _log_odds_gradient(policy, acts, hook, target)
    attribution = kink_attribution(
        policy,
        acts,
        hook,
        v,
        max(ts),
        weights=w,
        depth=policy.output_hook,
        max_pieces=config.max_pieces,
    )
    channels = _layer_channels(policy, acts, hook)
    ds = _kink_sums(attribution, ts, channels)
    line = _line_ts(ts)
    logits = line_response(policy, acts, hook, v, line, depth=policy.output_hook).values
    r = np.einsum("tmo,mo->tm", logits, w.cpu().numpy())
    direct = _even_odd(r, ("t", "kink_maze"), {"t": line, "kink_maze": ds["kink_maze"].values})
    ds["kink_even_direct"] = direct["even"]
    return ds.where(xr.DataArray(target >= 0, dims="kink_maze"))


def _kink_sums(
    attribution: xr.Dataset, ts: Sequence[float], channels: Mapping[str, int]
) -> xr.Dataset:
    """E(t) from the kinks: ``kink_even`` per layer, ``kink_even_channel`` per layer and channel
    (NaN past a layer's channels), ``kink_even_total``; over (..., t_loc, kink_maze)."""
    layers = list(channels)
    by_layer = even_from_kinks(attribution, ts, by="layer").reindex(layer=layers, fill_value=0.0)
    n = max(channels.values())
    per_channel = []
    for layer in layers:
        mine = attribution.isel(breakpoint=attribution["layer"].values == layer)
        e = even_from_kinks(mine, ts, by="channel").reindex(channel=np.arange(n), fill_value=0.0)
        per_channel.append(e.where(e["channel"] < channels[layer]))
    by_channel = xr.concat(per_channel, dim="layer").assign_coords(layer=layers)
    ds = xr.Dataset(
        {
            "kink_even": by_layer.transpose("layer", "t_pos", "sample"),
            "kink_even_channel": by_channel.transpose("layer", "channel", "t_pos", "sample"),
            "kink_even_total": even_from_kinks(attribution, ts).transpose("t_pos", "sample"),
        }
    )
    names = {"layer": "frozen_layer", "channel": "kink_channel", "t_pos": "t_loc"}
    return ds.rename(names | {"sample": "kink_maze"})


def _layer_channels(policy: nn.Module, acts: Tensor, hook: str) -> dict[str, int]:
    """The channels (first axis after the batch) of each freezable layer, in forward order."""
    layers = freezable(policy, hook, policy.output_hook)
    with torch.no_grad(), capture(policy, layers) as seen:
        policy.run_segment(acts[:1], hook, policy.output_hook)
    return {layer: int(seen[layer].shape[1]) for layer in layers}


def _log_odds_gradient(policy: nn.Module, acts: Tensor, hook: str, target: np.ndarray) -> Tensor:
    """w = ∂(target log-odds)/∂logits at t = 0, per maze ``(K, 15)`` (0 where no target)."""
    tgt = torch.as_tensor(target, device=acts.device)
    with torch.enable_grad():
        logits = policy.run_segment(acts, hook, policy.output_hook).detach().requires_grad_(True)
        (w,) = torch.autograd.grad(target_log_odds(logits, tgt).sum(), logits)
    return w.detach() * (tgt >= 0)[:, None].to(w.dtype)


def localise_attrs(config: StudyConfig, n_mazes: int) -> dict[str, Any]:
    """The attrs of the localisation: its t, seeds, how many mazes the kink walk covered, and
    the t, maze count and interventions of the cut rollouts."""
    seeds = config.seeds()
    return {
        "localise_ts": json.dumps(sorted(float(t) for t in config.localise_ts)),
        "localise_seed": int(seeds["localise"]),
        "untrained_seed": int(seeds["untrained"]),
        "kink_mazes": kink_maze_count(config, n_mazes),
        "loc_roll_t": roll_t(config),
        "loc_roll_mazes": min(config.localise_rollout_mazes, config.rollout_mazes, n_mazes),
        "loc_roll_variants": json.dumps(list(config.localise_rollout_variants)),
    }
