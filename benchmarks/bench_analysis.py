"""Benchmark of hookdiff.analysis on the scale-1 IMPALA agent (a script, not a test).

1. Exact breakpoints (the batched line walk) vs a dense t grid with the resolution of the finest
   breakpoint gap the walk found: the grid's time is measured on a slice of its points and scaled
   to the whole grid; a full-interval grid of fixed resolution checks that the walk misses no
   pattern change the grid sees.
2. The full analysis of the published setting: hook ``embedder.block2.res1.resadd_out``, 64
   inputs, 41 values of t, every depth to the logits (and the direction probabilities).

Uses the shipped checkpoint when ``hookdiff.agent.default_checkpoint_path()`` exists, else random
weights (seed 0; a random net has many more breakpoints than a trained one). Run:
``.venv/bin/python benchmarks/bench_analysis.py``.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from hookdiff.agent import ImpalaPolicy, default_checkpoint_path, load_checkpoint
from hookdiff.analysis import nonlinearity
from hookdiff.analysis._chain import build_chain, prepare
from hookdiff.analysis.breakpoints import walk_line
from hookdiff.ops import tile_rows

HOOK = "embedder.block2.res1.resadd_out"


def load() -> tuple[ImpalaPolicy, str]:
    path = default_checkpoint_path()
    if path.exists():
        return load_checkpoint(path).eval(), f"checkpoint {path.name}"
    torch.manual_seed(0)
    return ImpalaPolicy(scale=1).eval(), "random weights (seed 0)"


def setup(policy: ImpalaPolicy, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
    gen = torch.Generator().manual_seed(seed)
    dtype = next(policy.parameters()).dtype
    obs = torch.rand(n, 3, 64, 64, generator=gen, dtype=dtype)
    with torch.no_grad():
        _, cache = policy.run_with_cache(obs)
    a = cache[HOOK]
    v = torch.randn(a.shape[1:], generator=gen, dtype=dtype)
    return a, v / v.norm() * 0.3 * a[0].norm(), dict(cache)


def grid_patterns(chain, a, v, ctx, ts: torch.Tensor, rows: int = 1024) -> torch.Tensor:
    """Per grid point, a hash-free pattern signature: the concatenated relu/maxpool states."""
    out = []
    with torch.no_grad():
        for i in range(0, len(ts), rows):
            c = ts[i : i + rows]
            x = tile_rows(a, len(c)) + c.reshape(-1, 1, 1, 1) * v
            _, pats = chain.run(x, {k: tile_rows(t, len(c)) for k, t in ctx.items()}, True)
            out.append(torch.cat([p.reshape(len(c), -1).long() for p in pats.values()], dim=1))
    return torch.cat(out)


def bench_breakpoints(policy: ImpalaPolicy, half_width: float) -> None:
    # float64: in float32 the grid's direct evaluation flips the sign of units that hover within
    # rounding noise of 0, which neither method can call a real pattern change
    policy = copy.deepcopy(policy).double()
    a, v, cache = setup(policy, 1, seed=1)
    chain = build_chain(policy, HOOK, None)
    a, v, ctx = prepare(chain, a, v, cache)
    t0 = time.perf_counter()
    walk = walk_line(chain, a, v, ctx, -half_width, half_width)
    t_walk = time.perf_counter() - t0
    bps = walk.t
    gap = float(np.diff(bps).min())
    n_grid = int(np.ceil(2 * half_width / gap)) + 1
    probe = torch.linspace(-half_width, half_width, 4096, dtype=torch.float64)
    t0 = time.perf_counter()
    grid_patterns(chain, a, v, ctx, probe)
    per_point = (time.perf_counter() - t0) / len(probe)
    t_grid = per_point * n_grid
    # misses: every change between neighbours of a 20001-point grid holds a breakpoint
    check = torch.linspace(-half_width, half_width, 20001, dtype=torch.float64)
    sig = grid_patterns(chain, a, v, ctx, check)
    changed = np.nonzero((sig[1:] != sig[:-1]).any(dim=1).numpy())[0]
    g = check.double().numpy()
    lo = np.searchsorted(bps, g[changed], side="left")
    missed = int(
        (lo >= len(bps)).sum() + (bps[np.minimum(lo, len(bps) - 1)] > g[changed + 1]).sum()
    )
    print(f"[1] line walk, 1 observation, t in [{-half_width}, {half_width}] (float64, 2 threads)")
    print(f"    breakpoints found: {len(bps)}  ({walk.kink.sum()} change the logits' slope)")
    print(f"    nearest to 0: {bps[bps < 0].max():.3g}, {bps[bps > 0].min():.3g}")
    print(f"    finest gap: {gap:.3g} -> a grid at that resolution has {n_grid:,} points")
    print(
        f"    exact walk: {t_walk:.2f} s; grid: {per_point * 1e3:.2f} ms/point -> {t_grid:,.0f} s"
    )
    print(f"    ratio grid / walk: {t_grid / t_walk:,.0f}x")
    print(
        f"    20001-point grid: {len(changed)} cells with a pattern change, "
        f"{missed} without a breakpoint from the walk"
    )


def bench_full(policy: ImpalaPolicy) -> None:
    a, v, cache = setup(policy, 64, seed=2)
    i = np.arange(-20, 21)
    ts = np.sign(i) * (np.abs(i) / 20) ** 2  # 41 values in [-1, 1], dense near 0
    t0 = time.perf_counter()
    ds = nonlinearity(policy, a, HOOK, v, ts, context=cache, breakpoints=False, seed=2)
    t_lin = time.perf_counter() - t0
    print(f"[2] published setting: {HOOK}, 64 inputs, 41 t in [-1, 1], {ds.sizes['depth']} depths")
    print(f"    diff + JVP + residual + asymmetry + flips: {t_lin:.1f} s")
    sub = 4
    t0 = time.perf_counter()
    dsb = nonlinearity(
        policy, a[:sub], HOOK, v, ts, context={k: x[:sub] for k, x in cache.items()}, seed=2
    )
    t_all = time.perf_counter() - t0
    pieces = dsb["n_pieces"].sel(depth="fc_policy_out").values
    print(
        f"    with exact breakpoints on [-1, 1], {sub} inputs: {t_all:.1f} s "
        f"(pieces of the logits per input: {pieces.tolist()}); "
        f"scaled to 64 inputs: ~{t_lin + (t_all - t_lin * sub / 64) * 64 / sub:.0f} s"
    )
    r = ds["residual"].sel(depth=["embedder.block3.conv_out", "fc_policy_out"])
    print(
        f"    median residual at |t| = 0.0025 / 1: {np.nanmedian(r.isel(t=[19, 21])):.3f} / "
        f"{np.nanmedian(r.isel(t=[0, 40])):.3f}"
    )


def main() -> None:
    torch.set_num_threads(2)
    policy, what = load()
    print(f"scale-1 agent, {what}")
    bench_breakpoints(policy, half_width=0.25)
    bench_full(policy)  # float32, as the agent runs


if __name__ == "__main__":
    main()
