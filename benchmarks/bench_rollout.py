"""Rollout benchmark: env steps/s with steering on vs off, the policy's forwards channels-last
(what rollouts run on the CPU) vs NCHW, and vs raw procgen stepping (not a test).

Run: ``.venv/bin/python benchmarks/bench_rollout.py``. The variants are interleaved and the
median of the repeats is reported, so machine noise hits them alike.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

import hookdiff.rollout
from hookdiff.agent import ImpalaPolicy
from hookdiff.maze.envs import make_env, set_states
from hookdiff.maze.sets import sample_mazes
from hookdiff.rollout import Steering, rollout

N_ENVS, STEPS, REPEATS = 64, 40, 5
HOOK = "embedder.block2.res1.resadd_out"


def main() -> None:
    torch.set_num_threads(1)
    states = sample_mazes("vanilla-hard", N_ENVS, seed=0)
    torch.manual_seed(0)
    policy = ImpalaPolicy(scale=1).eval()
    v = torch.randn(32, 16, 16)
    # stop_at_top_right=False and a random policy: almost every env stays live for all STEPS
    variants = {
        "plain": lambda: rollout(policy, states, max_steps=STEPS, stop_at_top_right=False),
        "steered": lambda: rollout(
            policy,
            states,
            max_steps=STEPS,
            stop_at_top_right=False,
            steering=[Steering(HOOK, v, np.linspace(-3, 3, N_ENVS))],
        ),
        "plain, NCHW": lambda: _nchw(policy, states),
        "raw procgen": lambda: _raw(states),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    steps: dict[str, int] = {}
    for fn in variants.values():
        fn()  # warm-up
    for _ in range(REPEATS):
        for k, fn in variants.items():
            t = time.perf_counter()
            out = fn()
            times[k].append(time.perf_counter() - t)
            steps[k] = int(out.steps.sum()) if out is not None else N_ENVS * STEPS
    rate = {k: steps[k] / statistics.median(v) for k, v in times.items()}
    print(f"{N_ENVS} hard mazes, {STEPS} steps, scale-1 policy, 1 thread, median of {REPEATS}")
    for k, r in rate.items():
        print(f"  {k:12s} {r:9.0f} env steps/s")
    print(f"  steered / plain       : {rate['steered'] / rate['plain']:.3f}x  (target >= 0.95x)")
    print(f"  channels-last / NCHW  : {rate['plain'] / rate['plain, NCHW']:.3f}x")
    print(
        f"  plain / raw procgen   : {rate['plain'] / rate['raw procgen']:.4f}x  (the policy is the cost)"
    )


def _nchw(policy, states):
    """The plain rollout with the policy's forwards in NCHW (the channels-last path off)."""
    fast = hookdiff.rollout._channels_last
    hookdiff.rollout._channels_last = lambda policy, x: False
    try:
        return rollout(policy, states, max_steps=STEPS, stop_at_top_right=False)
    finally:
        hookdiff.rollout._channels_last = fast


def _raw(states) -> None:
    env = make_env(len(states))
    set_states(env, states)
    rng = np.random.default_rng(0)
    for _ in range(STEPS):
        env.act(rng.integers(0, 15, len(states)).astype(np.int32))
        env.observe()
    env.close()


if __name__ == "__main__":
    main()
