"""Several agents in one study: an ``agent`` dimension, each agent's values its own study's, and a
report comparing them.

Two checkpoints in a folder: a copy of the shipped agent and a seeded random-init agent of the
same architecture. Each agent's slice of the joined dataset is checked against a one-agent study
of that checkpoint, and the random agent's decision-square probabilities against a direct
forward of its policy.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
import xarray as xr

from hookdiff.agent import ImpalaPolicy, default_checkpoint_path, load_checkpoint, save_checkpoint
from hookdiff.errors import ConfigError
from hookdiff.rollout import decision_square_probs
from hookdiff.study import quick_config, run_study, study_dataset
from hookdiff.study.dataset import agent_view
from hookdiff.study.inputs import study_mazes

HOOK = "embedder.block2.res1.resadd_out"


@pytest.fixture(scope="module")
def agents(tmp_path_factory):
    """A folder with ``alpha.pt`` (the shipped agent) and ``beta.pt`` (random init, seed 7)."""
    folder = tmp_path_factory.mktemp("agents")
    shutil.copy(default_checkpoint_path(), folder / "alpha.pt")
    torch.manual_seed(7)
    save_checkpoint(ImpalaPolicy(scale=1).eval(), folder / "beta.pt")
    return folder


def tiny_config(checkpoint, out_dir):
    return dataclasses.replace(
        quick_config(),
        checkpoint=str(checkpoint),
        out_dir=str(out_dir),
        n_mazes=2,
        ts=(-1.0, 0.0, 1.0),
        later_candidates=(HOOK, "embedder.block3.res2.resadd_out"),
        breakpoints=False,
        rollout_mazes=1,
        rollout_ts=(0.0, 1.0),
        rollout_max_steps=4,
        field_mazes=1,
        field_ts=(0.0,),
        localise_ts=(1.0,),
    )


@pytest.fixture(scope="module")
def run(agents, tmp_path_factory):
    out = run_study(tiny_config(agents, tmp_path_factory.mktemp("run")), progress=False)
    return out, xr.open_dataset(out / "study.nc", engine="h5netcdf").load()


def test_a_folder_gives_one_agent_per_checkpoint(run):
    _, ds = run
    assert list(ds["agent"].values) == ["alpha", "beta"]
    assert "agent" in ds["p_toward_cheese"].dims and "agent" in ds["loc_even_cut"].dims
    assert "agent" not in ds["level_seed"].dims  # the mazes are shared
    assert json.loads(ds.attrs["checkpoint"])[1].endswith("beta.pt")


def test_each_agent_is_its_own_study(run, agents, tmp_path):
    _, ds = run
    one = study_dataset(tiny_config(agents / "beta.pt", tmp_path), progress=False)
    assert "agent" not in one.dims
    mine = agent_view(ds, "beta")
    names = (
        "p_toward_cheese",
        "loc_even_cut",
        "loc_even",
        "diff_norm",
        "field_probs",
        "loc_roll_reached_cheese",
        "matched_effect",
    )
    for name in names:
        xr.testing.assert_equal(mine[name], one[name])
        assert mine[name].attrs == one[name].attrs  # a variable's long_name survives the stacking
    assert one["loc_roll_reached_cheese"].attrs["long_name"]
    assert mine.attrs["later_hook"] == one.attrs["later_hook"]


def test_the_random_agent_probabilities_match_its_forward(run, agents):
    _, ds = run
    config = tiny_config(agents, ".")
    states = study_mazes(config).states
    direct = decision_square_probs(load_checkpoint(agents / "beta.pt").eval(), states)
    got = ds["p_toward_cheese"].sel(agent="beta", site="steering", vector="cheese", t=0.0)
    np.testing.assert_allclose(got.values, direct["p_toward_cheese"].values, rtol=1e-5)


def test_the_report_compares_every_claim_per_agent(run):
    out, _ = run
    record = json.loads((out / "run.json").read_text())
    assert record["agents"] == ["alpha", "beta"] and set(record["answer"]) == {"alpha", "beta"}
    comparison = json.loads((out / "comparison.json").read_text())
    rows = comparison["rows"]
    for name in ("alpha", "beta"):
        assert (out / "agents" / name / "report.html").is_file()
        claims = [c for v in record["answer"][name].values() for c in v]
        cells = [r["agents"][name] for r in rows if r["agents"][name] is not None]
        assert len(cells) == len(claims)  # every claim of the agent's answer has its cell
        for vector, mine in record["answer"][name].items():
            asym = next(c for c in mine if (c["kind"], c["readout"]) == ("asymmetry", "logodds"))
            row = next(
                r
                for r in rows
                if (r["vector"], r["kind"], r["readout"]) == (vector, "asymmetry", "logodds")
            )
            assert row["agents"][name]["estimate"] == asym["estimate"]
            assert row["agents"][name]["verdict"] == asym["verdict"]


def test_an_empty_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"holds no \*\.pt checkpoint"):
        tiny_config(tmp_path, tmp_path).checkpoints()
