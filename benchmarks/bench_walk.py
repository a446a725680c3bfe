"""Benchmark of the exact line walk: today's walk vs the reference copy vs a dense grid + bisection.

On the shipped agent (float64 copy), hook ``embedder.block2.res1.resadd_out``, each line is one
maze of ``eval-decision-square`` steered by its own cheese vector, t in [-t_max, t_max] (default
[-3, 3]). Per line the package's walk and the reference (``_walk_reference.py``, the walk before
its speed-up) run interleaved, ``--repeats`` times each, best time kept; their breakpoints must be
identical (same count, every t within 1e-9, same layers, units and kinks). Then, on the first
line, a dense grid of pattern evaluations with bisection of ``--bisect`` of its changed cells (an
independent reference): every change it locates must lie within 1e-9 of a walk breakpoint, and
its time per line is extrapolated from the bisected cells. With ``--batch N``, the first N lines
are also walked in one call (one sample each, own direction): the same breakpoints as one by one,
and the per-line ratio of that call against the reference walking them one by one. A script, not a
test. Run: ``.venv/bin/python benchmarks/bench_walk.py --lines 3 --repeats 2 --batch 3``.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hookdiff.agent import load_default
from hookdiff.analysis._chain import Chain, build_chain, prepare
from hookdiff.analysis.breakpoints import WalkResult, walk_line
from hookdiff.maze import sample_mazes
from hookdiff.ops import tile_rows
from hookdiff.vectors import activations_at, cheese_vector

HOOK = "embedder.block2.res1.resadd_out"


def load_reference():
    """The reference walk (``benchmarks/_walk_reference.py``) as a module."""
    path = Path(__file__).with_name("_walk_reference.py")
    spec = importlib.util.spec_from_file_location("_walk_reference", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def lines(n: int, seed: int) -> tuple[Chain, list[tuple[torch.Tensor, torch.Tensor, dict]]]:
    """The float64 chain after the hook and ``n`` lines (activation, own cheese vector, context)."""
    policy = load_default().eval()
    mazes = sample_mazes("eval-decision-square", n, seed=seed)
    v = cheese_vector(policy, mazes, HOOK, per_maze=True)
    a = activations_at(policy, mazes, HOOK)
    chain = build_chain(copy.deepcopy(policy).double(), HOOK, None)
    return chain, [prepare(chain, a[i : i + 1].double(), v[i].double(), None) for i in range(n)]


def same(new: WalkResult, old: WalkResult) -> str:
    """'' when the walks agree (count, t within 1e-9, layers, units, kinks), else what differs."""
    if len(new.t) != len(old.t):
        return f"count {len(new.t)} vs {len(old.t)}"
    bad = [
        f for f in ("sample", "layer", "unit", "kink") if (getattr(new, f) != getattr(old, f)).any()
    ]
    if len(new.t) and np.abs(new.t - old.t).max() > 1e-9:
        bad.append(f"t (max diff {np.abs(new.t - old.t).max():.1e})")
    return ", ".join(bad)


def patterns(chain: Chain, a, v, ctx, ts: torch.Tensor, rows: int = 512) -> torch.Tensor:
    """Per t, every relu state and maxpool argmax of the segment, concatenated (one row per t)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(ts), rows):
            c = ts[i : i + rows]
            x = tile_rows(a, len(c)) + c.reshape(-1, 1, 1, 1) * v
            _, pats = chain.run(x, {k: tile_rows(t, len(c)) for k, t in ctx.items()}, True)
            out.append(torch.cat([p.reshape(len(c), -1).long() for p in pats.values()], dim=1))
    return torch.cat(out)


def grid_bisection(chain, a, v, ctx, t_max, points, n_bisect, seed):
    """Dense grid + bisection: changed cells, a change located to 1e-11 in ``n_bisect`` of them,
    and the time of the grid and of one bisected cell."""
    t0 = time.perf_counter()
    grid = torch.linspace(-t_max, t_max, points, dtype=torch.float64)
    sig = patterns(chain, a, v, ctx, grid)
    cells = torch.nonzero((sig[1:] != sig[:-1]).any(dim=1)).flatten()
    t_grid = time.perf_counter() - t0
    pick = np.random.default_rng(seed).permutation(len(cells))[:n_bisect]
    lo, hi = grid[cells[pick]], grid[cells[pick] + 1]
    left = sig[cells[pick]]
    t0 = time.perf_counter()
    while (hi - lo).max() > 1e-11:
        mid = (lo + hi) / 2
        moved = (patterns(chain, a, v, ctx, mid) != left).any(dim=1)
        hi, lo = torch.where(moved, mid, hi), torch.where(moved, lo, mid)
    per_cell = (time.perf_counter() - t0) / max(len(pick), 1)
    return len(cells), ((lo + hi) / 2).numpy(), t_grid, per_cell


def pick(r: WalkResult, i: int) -> WalkResult:
    """The breakpoints of sample ``i`` of a walk of several lines, as a walk of that line alone."""
    m = r.sample == i
    return WalkResult(
        r.sample[m] * 0, r.t[m], r.layer[m], r.layers, r.kink[m], r.kink_depth, r.unit[m]
    )


def together(chain: Chain, todo: list, singles: list, old_per_line: float, tm: float, repeats: int):
    """Walk ``todo``'s lines in one call (one sample each, own direction; pieces of all lines
    share the batches): the same breakpoints as one by one, and the time per line."""
    a = torch.cat([x[0] for x in todo])
    v = torch.cat([x[1].expand_as(x[0]) for x in todo])  # one direction per sample
    ctx = {k: torch.cat([x[2][k] for x in todo]) for k in todo[0][2]}
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = walk_line(chain, a, v, ctx, -tm, tm)
        best = min(best, time.perf_counter() - t0)
    diffs = [same(pick(r, i), singles[i]) for i in range(len(todo))]
    per_line = best / len(todo)
    print(
        f"{len(todo)} lines walked together: {best:.2f} s, {per_line:.2f} s per line, "
        f"{'identical to one by one' if not any(diffs) else 'DIFFERENT: ' + '; '.join(diffs)}; "
        f"per-line ratio in a batch vs the reference one by one "
        f"(mean {old_per_line:.2f} s) {old_per_line / per_line:.2f}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=3, help="mazes (one line each)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--repeats", type=int, default=1, help="interleaved runs of each walk per line")
    ap.add_argument("--t-max", type=float, default=3.0, help="the line is t in [-t_max, t_max]")
    ap.add_argument("--grid", type=int, default=6001, help="grid points of the grid reference")
    ap.add_argument("--bisect", type=int, default=100, help="changed cells bisected (0: skip)")
    ap.add_argument(
        "--seed",
        type=int,
        default=0,
        help="maze seed: the first qualifying levels from it, so nearby seeds can share mazes",
    )
    ap.add_argument("--batch", type=int, default=0, help="also walk this many lines together")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ref = load_reference()
    chain, todo = lines(args.lines, args.seed)
    tm = args.t_max
    print(f"shipped agent, float64, {HOOK}, t in [{-tm}, {tm}], {args.threads} thread(s)")
    total_old = total_new = 0.0
    ratios, first, news, olds = [], None, [], []
    for i, (a, v, ctx) in enumerate(todo):
        best = {"old": np.inf, "new": np.inf}
        for _ in range(args.repeats):
            for name, fn in (("old", ref.walk_line), ("new", walk_line)):
                t0 = time.perf_counter()
                result = fn(chain, a, v, ctx, -tm, tm)
                best[name] = min(best[name], time.perf_counter() - t0)
                if name == "old":
                    old = result
                else:
                    new = result
        diff = same(new, old)
        news.append(new)
        olds.append(best["old"])
        first = first or new
        total_old, total_new = total_old + best["old"], total_new + best["new"]
        ratios.append(best["old"] / best["new"])
        print(
            f"line {i}: {len(new.t)} breakpoints (reference {len(old.t)}), "
            f"max |t - t_ref| {np.abs(new.t - old.t).max() if not diff else np.nan:.1e}, "
            f"{'identical' if not diff else 'DIFFERENT: ' + diff}; reference {best['old']:.2f} s, "
            f"new {best['new']:.2f} s, ratio {ratios[-1]:.2f}x"
        )
    print(
        f"ratio reference / new: total {total_old / total_new:.2f}x, per line "
        f"median {np.median(ratios):.2f}x, min {min(ratios):.2f}x"
    )
    if args.batch > 1:
        n = min(args.batch, len(todo))
        together(chain, todo[:n], news, float(np.mean(olds[:n])), tm, args.repeats)
    if args.bisect:
        a, v, ctx = todo[0]
        cells, found, t_grid, per_cell = grid_bisection(
            chain, a, v, ctx, tm, args.grid, args.bisect, args.seed
        )
        near = np.abs(first.t[None, :] - found[:, None]).min(axis=1)
        t_ref = t_grid + per_cell * cells
        print(
            f"grid + bisection, line 0: {args.grid} points, {cells} cells with a change "
            f"(walk: {len(first.t)} breakpoints); {len(found)} bisected, "
            f"{(near <= 1e-9).sum()} within 1e-9 of a walk breakpoint (max {near.max():.1e}); "
            f"grid {t_grid:.1f} s + {per_cell:.2f} s per cell -> ~{t_ref:.0f} s per line "
            f"(finding only one change per cell), {t_ref / (total_new / len(todo)):.0f}x the walk"
        )


if __name__ == "__main__":
    main()
