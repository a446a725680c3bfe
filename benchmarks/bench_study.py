"""Study benchmark: wall time, CPU time and peak memory of ``hookdiff study`` per profile.

Each profile runs in its own subprocess (the standalone CLI entry point, exactly what a user
runs), so peak memory is that process's own ``ru_maxrss`` and its CPU time (user + system, every
thread) comes from ``resource.getrusage`` of the finished child. Targets: the default study
≤ 10 minutes on 2 idle cores and ≤ 4 GiB; the quick profile ≤ 1 minute. Per-step wall and CPU
times come from each run's ``run.json``. On a shared machine wall time says how busy it was; CPU
time says what the study costs (run with ``--threads 1`` to keep other processes' load from
inflating it with threads that spin while waiting for a core).

The agent: the shipped one (scale 1, trained) by default; ``--checkpoint PATH`` any checkpoint;
``--scale N`` a seeded random-init policy of scale N written first with
:func:`hookdiff.agent.write_random_checkpoint` (scale 4 is the published agents' size, 3.65M
parameters: the study's cost at publication scale). ``--device`` is passed to the study; on a GPU
the peak GPU memory (``torch.cuda.max_memory_allocated``) is reported as well.

``--estimate-full`` also runs the default profile with twice its walked and rolled-out mazes and
extrapolates each step's cost linearly to the ``--full`` profile (every maze walked and rolled out),
which takes about 20 minutes for the shipped agent on 2 cores: the two runs differ only in those
counts.

Run: ``.venv/bin/python benchmarks/bench_study.py [--only quick|default|full] [--threads N]
[--estimate-full] [--checkpoint PATH | --scale N] [--device D] [--out DIR]``. Not a test: these machines are shared and noisy, so the numbers
are reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENTRY = (
    "import sys; from hookdiff.cli import main; code = main(sys.argv[1:]); import torch; "
    "gpu = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0; "
    "print(f'GPU_PEAK_BYTES {gpu}', file=sys.stderr); sys.exit(code)"
)
PROFILES = {"quick": (["--quick"], 60.0), "default": ([], 600.0), "full": (["--full"], None)}
MEMORY_TARGET_GIB = 4.0


def _children() -> resource.struct_rusage:
    return resource.getrusage(resource.RUSAGE_CHILDREN)


def run_profile(name: str, out: Path, extra: list[str]) -> dict[str, object]:
    """Run one profile in a child process; return wall and CPU time, peak RSS, step timings."""
    args, target_s = PROFILES[name]
    before = _children()
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, "study", *args, *extra, "--no-progress", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{name} study failed:\n{proc.stderr[-3000:]}")
    after = _children()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss of RUSAGE_CHILDREN is the largest child's peak (KiB on Linux)
    peak_kib = max(after.ru_maxrss, before.ru_maxrss)
    gpu_peak = re.findall(r"GPU_PEAK_BYTES (\d+)", proc.stderr)
    run = json.loads((out / "run.json").read_text())
    timings = dict(run["timings_s"])
    return {
        "profile": name,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "target_s": target_s,
        "peak_rss_gib": round(peak_kib / 2**20, 2),
        "peak_gpu_gib": round(int(gpu_peak[-1]) / 2**30, 2) if gpu_peak else 0.0,
        "steps_s": {k: v for k, v in timings.items() if k not in ("cpu_s", "peak_rss_mib")},
        "steps_cpu_s": timings.get("cpu_s", {}),
        "steps_peak_mib": timings.get("peak_rss_mib", {}),
        "config": run["config"],
        "untrained": run["untrained"],
        "agent": run["agent"],
    }


def _print(r: dict[str, object]) -> None:
    target = r["target_s"]
    ok_t = (
        ""
        if target is None
        else f" (target {target:.0f} s: {'ok' if r['wall_s'] <= target else 'OVER'})"
    )
    ok_m = "ok" if r["peak_rss_gib"] <= MEMORY_TARGET_GIB else "OVER"
    print(
        f"{r['profile']:8s} wall {r['wall_s']:7.1f} s{ok_t}  CPU {r['cpu_s']:7.1f} s  "
        f"peak RSS {r['peak_rss_gib']:.2f} GiB (target {MEMORY_TARGET_GIB:g}: {ok_m})"
        + (f"  peak GPU {r['peak_gpu_gib']:.2f} GiB" if r["peak_gpu_gib"] else "")
        + f"  [{r['agent']}, device {r['config']['device']}]"
    )
    steps, cpu = r["steps_s"], r["steps_cpu_s"]
    print(
        "  steps (wall / CPU s): "
        + ", ".join(
            f"{k} {v:.1f}/{cpu[k]:.1f}" if k in cpu else f"{k} {v:.1f}" for k, v in steps.items()
        )
    )
    peaks = r["steps_peak_mib"]
    if peaks:
        print(
            "  process peak RSS when each step ended (GiB): "
            + ", ".join(f"{k} {v / 1024:.2f}" for k, v in peaks.items())
        )


def estimate_full(base: Path, extra: list[str]) -> None:
    """Extrapolate the --full profile's cost from the default and a run with twice the walks."""
    one = run_profile("default", base / "default", extra)
    _print(one)
    n = one["config"]
    walked, rolled, cut = n["breakpoint_mazes"], n["rollout_mazes"], n["localise_rollout_mazes"]
    more = ["--breakpoint-mazes", str(2 * walked), "--rollout-mazes", str(2 * rolled)]
    more += ["--localise-rollout-mazes", str(2 * cut)]
    two = run_profile("default", base / "default_x2", [*extra, *more])
    print(f"default with {2 * walked} walked, {2 * rolled} + {2 * cut} rolled-out mazes:")
    _print(two)
    # the walks (nonlinearity, localise kinks) grow with the walked mazes, the rollouts
    # (behaviour, localise rollouts) with the rolled-out ones; every other step is the same
    scale = {k: (104 - walked) / walked for k in _WALKS} | {"behaviour": (104 - rolled) / rolled}
    scale["localise rollouts"] = (104 - cut) / cut
    for what in ("steps_s", "steps_cpu_s"):
        a, b = one[what], two[what]
        est = {k: a[k] + scale.get(k, 0.0) * (b[k] - a[k]) for k in a if k != "total"}
        total = sum(est.values())
        print(
            f"full estimate ({'wall' if what == 'steps_s' else 'CPU'}): {total:.0f} s = "
            f"{total / 60:.1f} min; " + ", ".join(f"{k} {v:.0f}" for k, v in est.items())
        )


#: The steps whose cost grows with the number of walked mazes.
_WALKS = ("nonlinearity", "localise kinks")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(PROFILES), default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the study")
    parser.add_argument("--estimate-full", action="store_true", help="see the module docstring")
    parser.add_argument("--out", type=Path, default=None, help="keep the run folders here")
    agent = parser.add_mutually_exclusive_group()
    agent.add_argument("--checkpoint", type=Path, default=None, help="study this checkpoint")
    agent.add_argument(
        "--scale", type=int, default=None, help="study a seeded random-init policy of this scale"
    )
    parser.add_argument("--device", default=None, help="the study's --device (default: auto)")
    args = parser.parse_args()
    base = args.out or Path(tempfile.mkdtemp(prefix="bench_study_"))
    base.mkdir(parents=True, exist_ok=True)
    extra = [] if args.threads is None else ["--threads", str(args.threads)]
    extra += [] if args.device is None else ["--device", args.device]
    checkpoint = args.checkpoint
    if args.scale is not None:
        from hookdiff.agent import write_random_checkpoint

        checkpoint = write_random_checkpoint(base / f"random_init_s{args.scale}.pt", args.scale)
    extra += [] if checkpoint is None else ["--checkpoint", str(checkpoint)]
    if args.estimate_full:
        estimate_full(base, extra)
    else:
        for name in [args.only] if args.only else ["quick", "default"]:
            _print(run_profile(name, base / name, extra))
    print(f"run folders: {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
