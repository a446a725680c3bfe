"""Ray backend benchmark: the same study on the local backend and on Ray with 1 and 2 workers.

One process, one run: a local Ray instance (2 CPUs) is started and its two workers warmed up
by a tiny study first, not timed (a cluster and its workers run before a study starts), then
the same study (``--quick`` with more mazes, each walked and rolled out as in ``--full`` so
every block has the same work, in blocks of ``--block``) runs three times, each on one torch thread per task: the local backend, Ray with
1 worker, Ray with 2 workers. Prints the wall times, the overhead ratio at 1 worker
(Ray 1 / local; target ≤ 1.15) and the speed-up at 2 (local / Ray 2; target ≥ 1.6), and checks
that the three datasets are identical. The driver's own steps (mazes, vectors, later layer) run
serially on every backend and bound the speed-up, and so does a machine busy with other work
(the load average is printed: a speed-up needs two idle cores).

Run: ``.venv/bin/python benchmarks/bench_ray.py [--mazes 16] [--block 4]``. Not a test: these
machines are shared and noisy, so the numbers are reported, not asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import xarray as xr

from hookdiff.study import quick_config, study_dataset
from hookdiff.study.backends import import_ray


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mazes", type=int, default=16, help="studied mazes (default 16)")
    parser.add_argument("--block", type=int, default=4, help="mazes per block (default 4)")
    args = parser.parse_args()
    every = dict.fromkeys(
        ("breakpoint_mazes", "rollout_mazes", "localise_rollout_mazes"), args.mazes
    )
    config = dataclasses.replace(
        quick_config(), n_mazes=args.mazes, maze_block=args.block, threads=1, **every
    )
    ray = import_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    warm = dataclasses.replace(config, backend="ray", ray_workers=2, n_mazes=2, maze_block=1)
    study_dataset(warm, progress=False)  # both workers import hookdiff, torch, procgen once
    runs = {
        "local": config,
        "ray, 1 worker": dataclasses.replace(config, backend="ray", ray_workers=1),
        "ray, 2 workers": dataclasses.replace(config, backend="ray", ray_workers=2),
    }
    seconds, results = {}, {}
    try:
        for name, c in runs.items():
            t0 = time.perf_counter()
            results[name] = study_dataset(c, progress=False)
            seconds[name] = time.perf_counter() - t0
            print(f"{name:15s} {seconds[name]:7.1f} s", flush=True)
    finally:
        ray.shutdown()
    for name in runs:
        xr.testing.assert_equal(results[name], results["local"])
    overhead = seconds["ray, 1 worker"] / seconds["local"]
    speedup = seconds["local"] / seconds["ray, 2 workers"]
    print(f"identical datasets: yes ({args.mazes} mazes, blocks of {args.block})")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"overhead at 1 worker: {overhead:.2f}x (target <= 1.15x)")
    print(f"speed-up at 2 workers: {speedup:.2f}x (target >= 1.6x)")


if __name__ == "__main__":
    main()
