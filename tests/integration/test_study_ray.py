"""The study on Ray (a local Ray instance, 2 CPUs) gives the local backend's dataset exactly.

One tiny study of the shipped agent runs block by block (one maze per block, so every per-maze
step, the first-K limits and the "other maze" control cross a block boundary) in this process;
the same study on Ray, and again with one Ray worker killed mid-task (a fault the test injects:
its tasks run through :func:`_kill_once`), must give identical values,
and the steps that follow the joined scan must not depend on the blocks;
with two agents on Ray, the shipped agent's part must be its one-agent study.
Ray is an optional extra: without it these tests skip, and asking for the backend raises
:class:`~hookdiff.errors.MissingExtraError`.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from _study_tiny import tiny_config

from hookdiff.agent import ImpalaPolicy, default_checkpoint_path, save_checkpoint
from hookdiff.errors import MissingExtraError
from hookdiff.study import backends, study_dataset
from hookdiff.study.dataset import agent_view


def _kill_once(task, marker: Path):
    """``task`` (the function each Ray task runs) with a fault injected: the first call that finds
    no file at ``marker`` creates it and kills its own worker process, so Ray must retry the task.
    A nested function, so Ray ships it to the workers by value (they need not import this file)."""
    marker = str(marker)

    def killing_task(*args):
        if not os.path.exists(marker):
            Path(marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return task(*args)

    return killing_task


@pytest.fixture(scope="module")
def local_study():
    return study_dataset(tiny_config(), progress=False)


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):
    """A local Ray instance (2 CPUs), shut down after the module; its tasks run through
    :func:`_kill_once`, disarmed (its marker file exists) until a test removes the marker."""
    ray = pytest.importorskip(
        "ray", reason="the Ray backend needs Ray: pip install 'hookdiff[ray]'"
    )
    marker = tmp_path_factory.mktemp("fault") / "killed"
    marker.touch()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    with pytest.MonkeyPatch.context() as patch:  # RayExecutor makes its remote function of this
        patch.setattr(backends, "_ray_task", _kill_once(backends._ray_task, marker))
        yield marker
    ray.shutdown()


def test_blocks_cover_every_maze(local_study):
    ds = local_study
    assert ds.sizes["maze"] == 2 and list(ds["maze"].values) == [0, 1]
    assert ds.sizes["field_maze"] == 2 and ds.sizes["kink_maze"] == 1
    walked = ds["n_pieces"].sel(site="steering", position="decision_square")
    assert walked.sel(maze=0).notnull().all() and walked.sel(maze=1).isnull().all()
    assert ds["reached_cheese"].sel(t=0.0).notnull().all()
    at_logits = ds["loc_roll_steps"].sel(variant="symmetrize", cut="fc_policy_out")
    assert at_logits.notnull().all()  # the cut rollouts (second map) ran on both blocks
    assert ds["matched_effect"].sizes["maze"] == 2


def test_the_steps_after_the_scan_do_not_depend_on_the_blocks(local_study):
    """The cut rollouts (per-maze seeds, cuts from the joined scan) and the matched later layers
    (one task) are the same with both mazes in one block."""
    one_block = study_dataset(tiny_config(maze_block=2), progress=False)
    names = [v for v in local_study.data_vars if v.startswith(("loc_roll_", "matched_"))]
    assert "loc_roll_cut_chosen" in names and "matched_t" in names
    for name in names:
        xr.testing.assert_identical(one_block[name], local_study[name])


def test_ray_gives_the_local_dataset(ray_instance, local_study):
    ds = study_dataset(tiny_config(backend="ray", ray_workers=2), progress=False)
    xr.testing.assert_equal(ds, local_study)


def test_a_killed_worker_is_retried_and_changes_nothing(ray_instance, local_study):
    ray_instance.unlink()  # arm the fault: the next task kills its own worker once
    ds = study_dataset(tiny_config(backend="ray", ray_workers=2), progress=False)
    assert ray_instance.exists(), "no task was killed, so the retry was not exercised"
    xr.testing.assert_equal(ds, local_study)


def test_agents_fan_out_and_each_is_its_own_study(ray_instance, local_study, tmp_path):
    shutil.copy(default_checkpoint_path(), tmp_path / "alpha.pt")
    torch.manual_seed(7)
    save_checkpoint(ImpalaPolicy(scale=1).eval(), tmp_path / "beta.pt")
    config = tiny_config(backend="ray", ray_workers=2, checkpoint=str(tmp_path))
    ds = study_dataset(config, progress=False)
    assert list(ds["agent"].values) == ["alpha", "beta"]
    alpha = agent_view(ds, "alpha")
    same = [v for v in local_study.data_vars if not any(d.endswith("_feature") for d in ds[v].dims)]
    xr.testing.assert_equal(alpha[same], local_study[same])  # the shipped agent, as alone
    beta = ds["p_toward_cheese"].sel(agent="beta")
    assert not np.allclose(beta, ds["p_toward_cheese"].sel(agent="alpha"))


def test_without_ray_the_backend_names_the_extra(monkeypatch):
    from hookdiff.study.backends import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'hookdiff\[ray\]'"):
        import_ray()
