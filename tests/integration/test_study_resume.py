"""A study killed mid-run resumes from its finished blocks and gives the uninterrupted dataset.

The tiny study (two one-maze blocks per step) runs once to completion; a second run of it, a
real ``hookdiff study`` process, is killed (SIGKILL) once a few blocks are on disk, then resumed
with ``--resume``: its dataset must equal the first one, it must have reused the saved blocks,
and the block folder must be gone. Blocks of other settings are refused with a message naming
what differs; a run without ``--resume`` starts anew.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import xarray as xr
from _study_tiny import tiny_config

from hookdiff.errors import ConfigError
from hookdiff.study import load_dataset, run_study
from hookdiff.study.resume import BLOCKS_DIR, BlockStore
from hookdiff.study.run import peak_rss_mib

#: Blocks on disk when the run is killed (of the tiny study's 14 block tasks).
KILL_AFTER = 3


def _start_study(config, out) -> subprocess.Popen:
    """``hookdiff study --config`` of ``config`` into ``out``, in its own process."""
    cfg = out.parent / f"{out.name}.json"
    cfg.write_text(config.to_json())
    cmd = [sys.executable, "-m", "hookdiff.cli", "study", "--config", str(cfg), "--no-progress"]
    env = {**os.environ, "HOOKDIFF_DEVICE": "cpu", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([*cmd, "--out", str(out)], env=env, stderr=subprocess.PIPE)


def _kill_when_blocks(proc: subprocess.Popen, folder, n: int, timeout: float = 300.0) -> int:
    """SIGKILL ``proc`` once ``folder`` holds ``n`` finished blocks; return how many it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        done = list(folder.glob("*.pkl")) if folder.is_dir() else []
        if len(done) >= n:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return len(list(folder.glob("*.pkl")))
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"the study ended ({proc.wait()}) before {n} blocks were on disk")


def test_a_killed_study_resumes_to_the_uninterrupted_dataset(tmp_path):
    whole = run_study(tiny_config(out_dir=str(tmp_path / "whole")), progress=False)
    assert not (whole / BLOCKS_DIR).exists()
    config = tiny_config(out_dir=str(tmp_path / "resumed"))
    blocks = tmp_path / "resumed" / BLOCKS_DIR
    saved = _kill_when_blocks(_start_study(config, tmp_path / "resumed"), blocks, KILL_AFTER)
    assert not (tmp_path / "resumed" / "study.nc").exists()

    out = run_study(dataclasses.replace(config, resume=True), progress=False)
    run = json.loads((out / "run.json").read_text())
    assert run["resumed_blocks"] == saved >= KILL_AFTER
    peaks, cpu = run["timings_s"]["peak_rss_mib"], run["timings_s"]["cpu_s"]
    assert set(peaks) == set(cpu) - {"total"} and min(peaks.values()) > 0
    assert max(peaks.values()) <= peak_rss_mib() + 0.05  # this process's marks, to 0.1 MiB
    assert not blocks.exists()
    xr.testing.assert_equal(load_dataset(out), load_dataset(whole))


def test_blocks_of_other_settings_are_refused(tmp_path):
    config = tiny_config(out_dir=str(tmp_path))
    BlockStore(config)
    other = dataclasses.replace(config, resume=True, seed=1, rollout_max_steps=7)
    with pytest.raises(ConfigError, match=r"other --seed, --rollout-max-steps; rerun"):
        BlockStore(other)
    same_elsewhere = dataclasses.replace(config, resume=True, backend="ray", ray_workers=2)
    BlockStore(same_elsewhere)  # where the blocks run does not change them

    record = tmp_path / BLOCKS_DIR / "study.json"
    saved = json.loads(record.read_text())
    record.write_text(json.dumps({**saved, "code_sha256": "0" * 64}))  # blocks of other code
    with pytest.raises(ConfigError, match=r"other hookdiff code"):
        BlockStore(dataclasses.replace(config, resume=True))


def test_a_new_run_or_nothing_to_resume_starts_anew(tmp_path, capsys):
    config = tiny_config(out_dir=str(tmp_path))
    stale = BlockStore(config).folder / "0-behaviour-0-1-000000000000.pkl"
    stale.write_bytes(b"from a stopped run")
    BlockStore(config)
    assert not stale.exists()

    BlockStore(tiny_config(out_dir=str(tmp_path / "empty"), resume=True))
    assert "no finished blocks" in capsys.readouterr().err


def test_cli_refuses_a_resume_with_one_message(tmp_path):
    config = tiny_config(out_dir=str(tmp_path / "run"))
    BlockStore(config)
    proc = _start_study(dataclasses.replace(config, seed=5, resume=True), tmp_path / "run")
    _, err = proc.communicate(timeout=120)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, err.decode()
    assert "cannot resume" in lines[0] and "--seed" in lines[0]
