"""Maze harness benchmarks (a script, not a test): ratios measured side by side in one run.

1. Observations at every open cell of a 25x25 maze: hookdiff's batched path (one ``set_state``
   over a 64-env batch + one ``observe``; 1 or 2 threads for the per-env work) vs one env call per
   position (a persistent 1-env env: ``set_state`` + ``observe`` per cell) and vs the naive
   one-fresh-env-per-position loop.
2. Parse + edit + serialize throughput over 1,000 states.
3. ``expert_batch`` samples/s (sampling + labelling + rendering), the training data path.

Run: ``.venv/bin/python benchmarks/bench_maze.py``
"""

from __future__ import annotations

import os
import time

import numpy as np

from hookdiff.maze import (
    MazeState,
    expert_batch,
    generate_states,
    make_env,
    mouse_cells,
    observations_at_every_cell,
    set_states,
    with_cheese,
    with_mouse,
)


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_every_cell() -> None:
    state = next(s for s in generate_states(40, seed=0) if s.maze_dim == 25)
    cells = mouse_cells(state)
    env64 = make_env(64)
    env1 = make_env(1)
    ref, _ = observations_at_every_cell(state, cells, env=env64)

    def per_position_env1() -> np.ndarray:
        out = np.empty((len(cells), 64, 64, 3), np.uint8)
        for i, c in enumerate(cells):
            set_states(env1, [with_mouse(state, c)], threads=1)
            out[i] = env1.observe()[1]["rgb"][0]
        return out

    def per_position_fresh_env() -> np.ndarray:
        out = np.empty((len(cells), 64, 64, 3), np.uint8)
        for i, c in enumerate(cells):
            env = make_env(1)
            set_states(env, [with_mouse(state, c)], threads=1)
            out[i] = env.observe()[1]["rgb"][0]
            env.close()
        return out

    assert np.array_equal(per_position_env1(), ref)
    t_batched = _best(lambda: observations_at_every_cell(state, cells, env=env64, threads=2))
    t_batched1 = _best(lambda: observations_at_every_cell(state, cells, env=env64, threads=1))
    t_env1 = _best(per_position_env1)
    t_fresh = _best(per_position_fresh_env, repeat=1)
    n = len(cells)
    print(
        f"[1] observations at every open cell: {n} cells of a 25x25 maze (level {state.level_seed})"
    )
    print(
        f"    batched, 64 envs, 2 threads  : "
        f"{t_batched * 1e3:7.1f} ms  ({n / t_batched:7.0f} obs/s)"
    )
    print(
        f"    batched, 64 envs, 1 thread   : {t_batched1 * 1e3:7.1f} ms  ({n / t_batched1:7.0f} obs/s)"
    )
    print(f"    one call per position, 1 env : {t_env1 * 1e3:7.1f} ms  ({n / t_env1:7.0f} obs/s)")
    print(f"    fresh env per position       : {t_fresh * 1e3:7.1f} ms  ({n / t_fresh:7.0f} obs/s)")
    print(f"    ratio batched 2-thread / per-position        : {t_env1 / t_batched:5.2f}x")
    print(f"    ratio batched 1-thread / per-position        : {t_env1 / t_batched1:5.2f}x")
    print(f"    ratio batched 1-thread / fresh env per pos.  : {t_fresh / t_batched1:5.2f}x")


def bench_codec() -> None:
    states = generate_states(100, seed=500)
    raws = [s.to_bytes() for s in states] * 10  # 1,000 states
    free = {s.level_seed: mouse_cells(s) for s in states}
    targets = [
        (free[s.level_seed][-1], free[s.level_seed][len(free[s.level_seed]) // 2]) for s in states
    ] * 10
    t0 = time.perf_counter()
    parsed = [MazeState.from_bytes(b) for b in raws]
    t1 = time.perf_counter()
    edited = [with_mouse(with_cheese(s, c), m) for s, (c, m) in zip(parsed, targets)]
    t2 = time.perf_counter()
    out = [s.to_bytes() for s in edited]
    t3 = time.perf_counter()
    assert len(out) == 1000
    total = t3 - t0
    print("[2] parse + edit + serialize, 1,000 hard states")
    print(
        f"    parse {1e6 * (t1 - t0) / 1000:6.1f} us/state, edit (cheese + mouse) "
        f"{1e6 * (t2 - t1) / 1000:6.1f} us, serialize {1e6 * (t3 - t2) / 1000:6.2f} us"
    )
    print(f"    total {total * 1e3:6.1f} ms  ->  {1000 / total:8.0f} states/s")


def bench_expert() -> None:
    env = make_env(64)
    expert_batch("train-top-right-5", 2, seed=0, env=env)  # warm
    t = time.perf_counter()
    b = expert_batch("train-top-right-5", 32, seed=1, env=env)
    dt = time.perf_counter() - t
    print("[3] expert_batch('train-top-right-5', 32 mazes)")
    print(
        f"    {len(b.labels)} samples in {dt:5.2f} s  ->  {len(b.labels) / dt:7.0f} samples/s "
        f"(label counts left/down/up/right {np.bincount(b.labels, minlength=4).tolist()})"
    )


if __name__ == "__main__":
    print(f"cpu cores: {os.cpu_count()}")
    make_env(1)  # procgen's one-off asset load (~1.7 s) outside the timings
    bench_every_cell()
    bench_codec()
    bench_expert()
