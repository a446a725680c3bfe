"""What the hookdiff pytest plugin costs a test run that uses none of its fixtures (not a test).

Installing hookdiff registers :mod:`hookdiff.testing` as a pytest plugin in every project of the
environment, so its load time is paid by every ``pytest`` run. This times a pytest run of a
one-assert test file in a temporary folder with the plugin and with ``-p no:hookdiff``,
interleaved (so machine drift hits both alike), and reports the medians, their difference and
ratio, beside the import time of the plugin module alone (less noisy than whole runs). Target:
< 0.2 s extra.

Run: ``.venv/bin/python benchmarks/bench_plugin.py [--repeats N]``. Exit status 1 when the
extra time is over the target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 0.2
TEST_FILE = "def test_one():\n    assert 1 + 1 == 2\n"


def run_once(folder: Path, *extra: str) -> float:
    """Wall seconds of one ``python -m pytest`` of the one-assert file, which must pass."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, "test_one.py"]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, env=env, timeout=300)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0 or "1 passed" not in proc.stdout:
        raise RuntimeError(f"pytest failed: {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def import_seconds() -> float:
    """Seconds to import the plugin module in a fresh interpreter that has pytest loaded already."""
    code = (
        "import time, pytest; t = time.perf_counter(); import hookdiff.testing; "
        "print(time.perf_counter() - t)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return float(proc.stdout)


def plugin_loaded(folder: Path) -> bool:
    """Whether pytest in ``folder`` loads hookdiff's plugin (else the benchmark measures nothing)."""
    cmd = [sys.executable, "-m", "pytest", "--trace-config", "-q", "--co", "-p", "no:cacheprovider"]
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=300)
    return "hookdiff.testing" in proc.stdout or "hookdiff/testing.py" in proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="runs of each variant (default: 7)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_one.py").write_text(TEST_FILE)
        if not plugin_loaded(folder):
            print("hookdiff's pytest plugin is not registered in this environment", file=sys.stderr)
            return 2
        run_once(folder)  # warm the file-system caches for both variants
        run_once(folder, "-p", "no:hookdiff")
        times: dict[str, list[float]] = {"with plugin": [], "-p no:hookdiff": []}
        for _ in range(args.repeats):
            times["with plugin"].append(run_once(folder))
            times["-p no:hookdiff"].append(run_once(folder, "-p", "no:hookdiff"))
    imports = [import_seconds() for _ in range(args.repeats)]
    with_p = statistics.median(times["with plugin"])
    without = statistics.median(times["-p no:hookdiff"])
    extra = with_p - without
    for name, ts in times.items():
        print(
            f"{name:>16}: median {statistics.median(ts):.3f} s, min {min(ts):.3f} s "
            f"over {len(ts)} runs"
        )
    print(f"importing hookdiff.testing after pytest: median {statistics.median(imports):.3f} s")
    status = "OK" if extra < TARGET_S else "OVER TARGET"
    print(
        f"plugin cost: {extra:+.3f} s per pytest run ({with_p / without:.3f}x); "
        f"target < {TARGET_S} s: {status}"
    )
    return 0 if extra < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
