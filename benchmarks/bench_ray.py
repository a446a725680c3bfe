"""Ray backend benchmark: the same study on the local backend and on Ray with 1 and 2 workers.

One process, one run: a local Ray instance (2 CPUs) is started first and not timed (a cluster
runs before a study starts), then the same study (``--quick`` with more mazes, in blocks of
``--block``) runs three times, each on one torch thread per task: the local backend, Ray with
1 worker, Ray with 2 workers. Prints the wall times, the overhead ratio at 1 worker
(Ray 1 / local; target ≤ 1.15) and the speed-up at 2 (local / Ray 2; target ≥ 1.6), and checks
that the three datasets are identical. The driver's own steps (mazes, vectors, later layer) run
serially on every backend and bound the speed-up.

Run: ``.venv/bin/python benchmarks/bench_ray.py [--mazes 8] [--block 2]``. Not a test: these
machines are shared and noisy, so the numbers are reported, not asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import xarray as xr

from hookdiff.study import quick_config, study_dataset
from hookdiff.study.backends import import_ray


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mazes", type=int, default=8, help="studied mazes (default 8)")
    parser.add_argument("--block", type=int, default=2, help="mazes per block (default 2)")
    args = parser.parse_args()
    config = dataclasses.replace(
        quick_config(), n_mazes=args.mazes, maze_block=args.block, threads=1
    )
    ray = import_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
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
    print(f"overhead at 1 worker: {overhead:.2f}x (target <= 1.15x)")
    print(f"speed-up at 2 workers: {speedup:.2f}x (target >= 1.6x)")


if __name__ == "__main__":
    main()
