"""Benchmark of the cut scan against a plain steered sweep of the same (t, maze) grid (not a test).

The shipped agent, steering at ``embedder.block2.res1.resadd_out``, read at the logits: every
valid cut x (linearize, symmetrize) x 17 values of t x 32 mazes (the mouse on each maze's decision
square), float32, 2 threads. Side by side in one run, interleaved, medians:

- ``cut_scan``: every cut and variant in one call (its exact response included);
- ``sweep``: :func:`hookdiff.sweep` of the observations, the whole network at every (t, maze);
- ``exact``: :func:`hookdiff.analysis.line_response` exact, the segment from the hook only;
- ``loop`` (full run only): one ``line_response`` per cut and variant, what the scan shares.

Target: ``cut_scan`` within 3x the sweep. Ratios are medians over rounds of back-to-back times
(on a shared machine, another process's burst then hits one round, not one contender). Run:
``.venv/bin/python benchmarks/bench_interventions.py`` (``--quick``: 8 mazes, 9 t, no loop;
``--threads N``, ``--repeats N``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

import hookdiff
from hookdiff.agent import load_default, obs_to_tensor
from hookdiff.analysis import cut_scan, line_response, valid_cuts
from hookdiff.maze import decision_square, render, sample_mazes, with_mouse

HOOK = "embedder.block2.res1.resadd_out"
DEPTH = "fc_policy_out"
VARIANTS = ("linearize", "symmetrize")


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each function per round, measured round-robin so drift hits all alike."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """Median over rounds of ``a``'s time over ``b``'s (the two ran back to back)."""
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def setup(n_mazes: int, n_t: int) -> tuple:
    """The agent, observations on the decision squares, activations, a vector and the t grid."""
    policy = load_default()
    mazes = sample_mazes("eval-decision-square", n_mazes, seed=0)
    obs = obs_to_tensor(render([with_mouse(m, decision_square(m)) for m in mazes]))
    with torch.no_grad():
        _, cache = policy.run_with_cache(obs)
    a = cache[HOOK]
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(a.shape[1:], generator=gen) * a.norm() / a.numel() ** 0.5
    ts = np.linspace(-2.0, 2.0, n_t)
    return policy, obs, a, v, dict(cache), ts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 mazes, 9 t, 3 repeats, no loop")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds (default 5; quick 3)")
    args = parser.parse_args()
    n_mazes, n_t, repeats = (8, 9, 3) if args.quick else (32, 17, 5)
    repeats = args.repeats or repeats
    torch.set_num_threads(args.threads)
    policy, obs, a, v, cache, ts = setup(n_mazes, n_t)
    cuts = valid_cuts(policy, HOOK, DEPTH)
    fns: dict[str, Callable[[], object]] = {
        "cut_scan": lambda: cut_scan(policy, a, HOOK, v, ts, depth=DEPTH, context=cache),
        "sweep": lambda: hookdiff.sweep(policy, obs, HOOK, v, ts, capture=[DEPTH]),
        "exact": lambda: line_response(policy, a, HOOK, v, ts, depth=DEPTH, context=cache),
    }
    if not args.quick:
        fns["loop"] = lambda: [
            line_response(policy, a, HOOK, v, ts, depth=DEPTH, cut=c, variant=var, context=cache)
            for c in cuts
            for var in VARIANTS
        ]
    t = interleaved(fns, repeats)
    print(
        f"shipped agent, {HOOK} -> {DEPTH}: {len(cuts)} cuts x {len(VARIANTS)} variants x "
        f"{n_t} t x {n_mazes} mazes, float32, {torch.get_num_threads()} threads, "
        f"{repeats} interleaved rounds"
    )
    for name, sec in t.items():
        print(
            f"  {name:9s}: median {statistics.median(sec) * 1e3:8.1f} ms, min {min(sec) * 1e3:8.1f} ms"
        )
    print("ratios (median over rounds):")
    print(
        f"  cut_scan / sweep of the observations: {ratio(t, 'cut_scan', 'sweep'):.2f}x (target <= 3x)"
    )
    print(
        f"  cut_scan / exact line_response      : {ratio(t, 'cut_scan', 'exact'):.2f}x (target <= 3x)"
    )
    print(f"  sweep / exact line_response         : {ratio(t, 'sweep', 'exact'):.2f}x")
    if "loop" in t:
        print(f"  loop of line_response / cut_scan    : {ratio(t, 'loop', 'cut_scan'):.2f}x")


if __name__ == "__main__":
    main()
