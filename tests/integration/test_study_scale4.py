"""A study of a policy at the published agents' size (scale 4, 3.65M parameters) runs to the end.

The seeded random-init checkpoint of :func:`hookdiff.agent.write_random_checkpoint` stands in for
the published weights. The quick profile at scale 4 takes minutes on 2 cores
(``benchmarks/bench_study.py --scale 4`` measures it), so this runs every step of the study on a
cut-down quick profile: one maze, a short line, a 4-step rollout.
"""

from __future__ import annotations

import json

import pytest
import xarray as xr

from hookdiff.agent import write_random_checkpoint
from hookdiff.cli import main

pytestmark = pytest.mark.slow

HOOK = "embedder.block2.res1.resadd_out"
# fmt: skip (below): the flag-value pairs read as a table
SMALL = [
    "--quick", "--n-mazes", "1", "--ts=-0.25,0,0.25", "--rollout-ts=0,0.25", "--field-ts=0",
    "--rollout-mazes", "1", "--rollout-max-steps", "4", "--field-mazes", "1",
    "--localise-ts", "0.25", "--later-candidates", HOOK, "--no-progress",
]  # fmt: skip


def test_study_of_a_scale4_checkpoint_runs_to_completion(tmp_path, capsys):
    ckpt = write_random_checkpoint(tmp_path / "s4.pt", scale=4, seed=0)
    out = tmp_path / "run"
    code = main(["study", *SMALL, "--checkpoint", str(ckpt), "--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "study written to" in stdout
    run = json.loads((out / "run.json").read_text())
    assert run["agent"] == "checkpoint s4.pt" and not run["untrained"]
    assert run["config"]["checkpoint"] == str(ckpt)
    with xr.open_dataset(out / "study.nc", engine="h5netcdf") as ds:
        assert int(ds["n_pieces"].max()) >= 1  # the exact walk ran on the scale-4 network
        # block2 at scale 4: 128 channels of 16 x 16
        assert ds["vector_steering"].sizes["steering_feature"] == 128 * 16 * 16
