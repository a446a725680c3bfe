"""The exact line walk on the CPU vs on a GPU, side by side in one run, breakpoints compared.

Each line is one maze of ``eval-decision-square`` steered by its own cheese vector at
``embedder.block2.res1.resadd_out`` of the shipped agent (float64), t in [-t_max, t_max]. Per line
the walk runs on the CPU and on the GPU (``--repeats`` times each, interleaved, best kept); their
breakpoints must agree (same count, layers, units and kinks; every t within 1e-9). A script, not a
test; it needs a GPU. Run: ``python benchmarks/bench_walk_device.py --lines 3 --threads 16``.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch

from hookdiff.agent import load_default
from hookdiff.analysis._chain import build_chain, prepare
from hookdiff.analysis.breakpoints import walk_line
from hookdiff.maze import sample_mazes
from hookdiff.vectors import activations_at, cheese_vector

HOOK = "embedder.block2.res1.resadd_out"


def timed_walk(chain, a, v, ctx, t_max: float, device: torch.device):
    """One walk on ``device`` and its wall time (the GPU synchronised before the clock stops)."""
    t0 = time.perf_counter()
    result = walk_line(chain, a, v, ctx, -t_max, t_max)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return result, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=3, help="mazes (one line each)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads on the CPU")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved runs per line and device")
    ap.add_argument("--t-max", type=float, default=3.0, help="the line is t in [-t_max, t_max]")
    ap.add_argument("--device", default="cuda", help="the GPU to compare with")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gpu = torch.device(args.device)
    policy = load_default().eval()
    mazes = sample_mazes("eval-decision-square", args.lines, seed=0)
    v = cheese_vector(policy, mazes, HOOK, per_maze=True).double()
    a = activations_at(policy, mazes, HOOK).double()
    devices = {"cpu": torch.device("cpu"), "gpu": gpu}
    chains = {
        k: build_chain(copy.deepcopy(policy).double().to(d), HOOK, None) for k, d in devices.items()
    }
    name = torch.cuda.get_device_name(gpu) if gpu.type == "cuda" else str(gpu)
    print(
        f"shipped agent, float64, {HOOK}, t in [-{args.t_max}, {args.t_max}]; "
        f"CPU {args.threads} thread(s) vs {name}"
    )
    ratios = []
    for i in range(args.lines):
        best, out = {}, {}
        for _ in range(args.repeats):
            for key, chain in chains.items():
                dev = devices[key]
                line = prepare(chain, a[i : i + 1].to(dev), v[i].to(dev), None)
                out[key], s = timed_walk(chain, *line, args.t_max, dev)
                best[key] = min(best.get(key, np.inf), s)
        cpu, cuda = out["cpu"], out["gpu"]
        same = len(cpu.t) == len(cuda.t) and all(
            (getattr(cpu, f) == getattr(cuda, f)).all() for f in ("layer", "unit", "kink")
        )
        gap = np.abs(cpu.t - cuda.t).max() if same and len(cpu.t) else np.nan
        same = same and (not len(cpu.t) or gap <= 1e-9)
        ratios.append(best["cpu"] / best["gpu"])
        print(
            f"line {i}: {len(cpu.t)} breakpoints on the CPU, {len(cuda.t)} on the GPU, "
            f"{'identical' if same else 'DIFFERENT'} (max |dt| {gap:.1e}); CPU {best['cpu']:.2f} s,"
            f" GPU {best['gpu']:.2f} s, ratio {ratios[-1]:.2f}x"
        )
    print(f"CPU / GPU per line: median {np.median(ratios):.2f}x, min {min(ratios):.2f}x")


if __name__ == "__main__":
    main()
