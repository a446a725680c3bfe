"""Study benchmark: wall time and peak memory of ``hookdiff study`` (quick and default profiles).

Each profile runs in its own subprocess (the standalone CLI entry point, exactly what a user
runs), so peak memory is that process's own ``ru_maxrss`` (read with ``resource.getrusage`` of the
finished child). Targets: the default study ≤ 10 minutes on 2 cores and ≤ 4 GiB; the
quick profile ≤ 1 minute. The per-step timings come from each run's ``run.json``.

Run: ``.venv/bin/python benchmarks/bench_study.py [--only quick|default] [--out DIR]``. Not a
test: these machines are shared and noisy, so the numbers are reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENTRY = "import sys; from hookdiff.cli import main; sys.exit(main(sys.argv[1:]))"
PROFILES = {"quick": (["--quick"], 60.0), "default": ([], 600.0)}
MEMORY_TARGET_GIB = 4.0


def run_profile(name: str, out: Path) -> dict[str, object]:
    """Run one profile in a child process; return wall time, peak RSS and the run's timings."""
    args, target_s = PROFILES[name]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, "study", *args, "--no-progress", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{name} study failed:\n{proc.stderr[-3000:]}")
    # ru_maxrss of RUSAGE_CHILDREN is the largest child's peak (KiB on Linux)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak_kib < before:  # pragma: no cover - not on Linux
        peak_kib = before
    run = json.loads((out / "run.json").read_text())
    return {
        "profile": name,
        "wall_s": round(wall, 1),
        "target_s": target_s,
        "peak_rss_gib": round(peak_kib / 2**20, 2),
        "steps_s": run["timings_s"],
        "untrained": run["untrained"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(PROFILES), default=None)
    parser.add_argument("--out", type=Path, default=None, help="keep the run folders here")
    args = parser.parse_args()
    base = args.out or Path(tempfile.mkdtemp(prefix="bench_study_"))
    names = [args.only] if args.only else ["quick", "default"]
    for name in names:
        r = run_profile(name, base / name)
        ok_t = "ok" if r["wall_s"] <= r["target_s"] else "OVER"
        ok_m = "ok" if r["peak_rss_gib"] <= MEMORY_TARGET_GIB else "OVER"
        print(
            f"{name:8s} wall {r['wall_s']:7.1f} s (target {r['target_s']:.0f} s: {ok_t})  "
            f"peak RSS {r['peak_rss_gib']:.2f} GiB (target {MEMORY_TARGET_GIB:g}: {ok_m})"
            + ("  [untrained agent]" if r["untrained"] else "")
        )
        print("         steps: " + ", ".join(f"{k} {v:.1f}s" for k, v in r["steps_s"].items()))
    print(f"run folders: {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
