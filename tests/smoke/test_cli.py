"""Every ``hookdiff`` subcommand end to end through :func:`hookdiff.cli.main`, with tiny arguments.

The commands run in-process on real parts (tiny random models, real procgen mazes, a real tiny
training run); ``ship`` writes to a temporary folder, so the package's shipped agent is untouched.
The demo also runs in a child process where pytest cannot be imported, as in a plain install.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import pytest
import torch
import xarray as xr

from hookdiff.agent import checkpoint_sha256, default_checkpoint_path
from hookdiff.cli import main
from hookdiff.training.ship import model_card_path

# fmt: skip below: the flag-value pairs read as a table
TINY_TRAIN = [
    "--total-samples", "128", "--batch-size", "64", "--chunk-mazes", "2", "--eval-mazes", "2",
    "--eval-every", "1", "--threads", "1", "--dagger-samples", "64", "--dagger-mazes", "2",
    "--dagger-max-steps", "4", "--no-progress",
]  # fmt: skip
TINY_EVAL = ["--n-mazes", "2", "--max-steps", "8"]


def test_demo_writes_the_sweep_and_prints_diff_per_depth(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "blocks.1.hook_resid_post" in out and f"wrote {tmp_path / 'sweep.nc'}" in out
    with xr.open_dataset(tmp_path / "sweep.nc", engine="h5netcdf") as ds:
        assert ds.attrs["seed"] == 1 and ds.sizes["coeff"] == 13
        diff = ds["output"].sel(coeff=0.0) - ds["output_baseline"]
        assert float(abs(diff).max()) < 1e-5  # t = 0 is the unsteered model


def test_demo_runs_without_pytest(tmp_path):
    """A plain install has no pytest: the demo (and the package) must not import it."""
    code = textwrap.dedent(
        f"""
        import importlib.abc, sys

        class NoPytest(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("pytest", "_pytest"):
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, NoPytest())
        from hookdiff.cli import main
        code = main(["demo", "--out", {str(tmp_path)!r}])
        assert not any(m.split(".")[0] in ("pytest", "_pytest") for m in sys.modules)
        sys.exit(code)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "sweep.nc").is_file()


def test_study_then_plot(tmp_path, capsys):
    out = tmp_path / "study"
    # fmt: skip below: the flag-value pairs read as a table
    argv = [
        "study",
        "--quick",
        "--n-mazes",
        "1",
        "--ts=-1,0,1",
        "--rollout-ts=-1,0,1",
        "--rollout-max-steps",
        "3",
        "--later-candidates",
        "embedder.block2.res1.resadd_out",
        "--no-breakpoints",
        "--no-progress",
        "--seed",
        "2",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert "study written to" in capsys.readouterr().out
    config = json.loads((out / "run.json").read_text())["config"]
    assert (config["n_mazes"], config["ts"], config["seed"]) == (1, [-1.0, 0.0, 1.0], 2)
    assert config["breakpoints"] is False
    for f in (out / "figures").iterdir():
        f.unlink()
    assert main(["plot", str(out)]) == 0
    assert "redrew" in capsys.readouterr().out
    assert list((out / "figures").iterdir())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny real training run (behaviour cloning, then DAgger) through ``hookdiff train``."""
    run = tmp_path_factory.mktemp("train") / "run"
    assert main(["train", "--out", str(run), *TINY_TRAIN]) == 0
    return run


def test_train_writes_a_finished_run(trained, capsys):
    import torch

    state = torch.load(trained / "train_state.pt", weights_only=False)
    assert state["config"]["total_samples"] == 128 and state["config"]["dagger_mazes"] == 2
    assert state["samples"] >= 128 + 64
    assert (trained / "policy.pt").is_file()
    # rerunning the finished run resumes it and does nothing more
    assert main(["train", "--out", str(trained), *TINY_TRAIN]) == 0
    assert capsys.readouterr().out.startswith("finished")
    # other settings into the same folder: one clear line, nothing overwritten
    assert main(["train", "--out", str(trained), *TINY_TRAIN, "--seed", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hookdiff train: error: cannot resume") and "seed" in err
    assert len(err.strip().splitlines()) == 1


def test_train_can_start_from_a_checkpoint(trained, tmp_path):
    """--init-from copies the checkpoint's weights: with a learning rate of 0 the run's policy
    is exactly the one it started from (a fresh seeded start differs from it)."""
    from hookdiff.agent import load_checkpoint

    start = trained / "policy.pt"
    zero_lr = ["--lr", "0", "--dagger-lr", "0", "--seed", "9"]
    out = tmp_path / "tuned"
    assert main(["train", "--out", str(out), *TINY_TRAIN, *zero_lr, "--init-from", str(start)]) == 0
    tuned, original = load_checkpoint(out / "policy.pt"), load_checkpoint(start)
    for (name, a), b in zip(tuned.state_dict().items(), original.state_dict().values()):
        assert torch.equal(a, b), name
    fresh = tmp_path / "fresh"
    assert main(["train", "--out", str(fresh), *TINY_TRAIN, *zero_lr]) == 0
    w = "embedder.block1.conv.weight"
    assert not torch.equal(
        load_checkpoint(fresh / "policy.pt").state_dict()[w], original.state_dict()[w]
    )


def test_eval_writes_the_figures(trained, tmp_path, capsys):
    out = tmp_path / "figures.json"
    argv = ["eval", "--checkpoint", str(trained / "policy.pt"), *TINY_EVAL, "--out", str(out)]
    assert main(argv) == 0
    figures = json.loads(out.read_text())
    assert figures == json.loads(capsys.readouterr().out)
    assert figures["checkpoint"] == str(trained / "policy.pt")
    assert figures["config"]["n_mazes"] == 2
    assert 0.0 <= figures["in_distribution"]["p_reach_cheese"] <= 1.0
    n = figures["config"]["n_mazes"]
    for part in ("in_distribution", "out_of_distribution"):
        rates = [k for k in figures[part] if k.startswith("p_") and not k.endswith("_ci95")]
        assert rates
        for name in rates:  # each rate with its Wilson interval, recomputed by hand
            p, (lo, hi) = figures[part][name], figures[part][f"{name}_ci95"]
            z = 1.959963984540054
            mid = (p + z * z / (2 * n)) / (1 + z * z / n)
            half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
            assert (lo, hi) == pytest.approx((mid - half, mid + half), abs=1e-9)


def test_ship_to_a_folder_leaves_the_shipped_agent_alone(trained, tmp_path, capsys):
    shipped = default_checkpoint_path()
    before = checkpoint_sha256(shipped), model_card_path().read_bytes()
    dest = tmp_path / "weights"
    args = ["ship", str(trained), "--dest", str(dest), "--name", "twin", *TINY_EVAL]
    assert main(args) == 0
    capsys.readouterr()
    card = json.loads((dest / "impala_maze_twin.card.json").read_text())
    assert card["agent"] == "twin" and card["name"] == "impala_maze_twin.pt"
    assert card["sha256"] == checkpoint_sha256(trained / "policy.pt")
    assert card["sha256"] == checkpoint_sha256(dest / "impala_maze_twin.pt")
    assert card["training"]["dagger_samples"] == 64
    assert card["training"]["cpu_hours"] is not None and card["fine_tuned_from"] is None
    assert card["evaluation"]["in_distribution"]["spec"] == "train-top-right-5"
    assert card["evaluation_command"].startswith("hookdiff eval --checkpoint twin --in-spec ")
    assert (checkpoint_sha256(shipped), model_card_path().read_bytes()) == before
