"""``hookdiff study --quick`` end to end through a subprocess: files, documented schema, rerun.

Runs :func:`hookdiff.cli.main` (what the ``hookdiff`` script runs) in a child process. The quick
profile is shrunk further with CLI overrides so the whole module stays around half a minute.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from hookdiff.study.answer import VERDICTS
from hookdiff.study.figures import draw, figure_names
from hookdiff.study.schema import CONTROL_LINES, VARIABLES

ENTRY = "import sys; from hookdiff.cli import main; sys.exit(main(sys.argv[1:]))"
TINY = ["--quick", "--n-mazes", "3", "--ts=-1,-0.5,0,0.5,1", "--rollout-max-steps", "6"]

DIMS = {"site", "vector", "position", "maze", "t", "depth", "t_pos", "layer", "candidate"}
#: The localisation's variables (finite everywhere but past a layer's channels; the rollouts with
#: the network cut are NaN off the chosen cuts by design, checked on their own below).
LOCALISATION = [
    name
    for name in VARIABLES
    if name.startswith(("loc_", "kink_")) and not name.startswith("loc_roll_")
] + ["base_swap_distance"]
ATTRS = {
    "config",
    "seeds",
    "versions",
    "checkpoint_sha256",
    "agent",
    "untrained",
    "later_hook",
    "localise_ts",
    "localise_seed",
    "untrained_seed",
    "kink_mazes",
}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", ENTRY, *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same command twice into the same folder (the rerun replaces the first run's files)."""
    base = tmp_path_factory.mktemp("study")
    out, first = base / "run", base / "first"
    done = []
    for _ in range(2):
        proc = _run("study", *TINY, "--no-progress", "--out", str(out))
        assert proc.returncode == 0, proc.stderr[-3000:]
        if not done:
            shutil.copytree(out, first)
            done.append((first, proc))
        else:
            done.append((out, proc))
    return done


def _load(path: Path) -> xr.Dataset:
    with xr.open_dataset(path / "study.nc", engine="h5netcdf") as ds:
        return ds.load()


def test_quick_run_writes_dataset_figures_and_report(runs):
    out, proc = runs[0]
    ds = _load(out)
    assert "study written to" in proc.stdout
    for name in figure_names(ds):
        assert (out / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(figure_names(ds))
    assert "figures/" not in html.split("<body>")[1].replace("figcaption", "")  # self-contained
    md = (out / "report.md").read_text()
    assert md.index("## Answer") < md.index("## Figures") < md.index("## Supporting")
    run = json.loads((out / "run.json").read_text())
    matched = [c for cs in run["answer"].values() for c in cs if c["kind"] == "matched"]
    # where no later layer steers any vector, the report says that once for all of them
    said_once = {"matched"} if all(c["where"] is None for c in matched) else set()
    for vector in ("cheese", "top_right"):
        claims = run["answer"][vector]
        assert {c["kind"] for c in claims} >= {"asymmetry", "published", "rollouts", "cut_rollouts"}
        for c in claims:
            assert {
                "claim",
                "estimate",
                "ci95",
                "where",
                "n",
                "kind",
                "readout",
                "t",
                "verdict",
                "odd",
                "tolerance",
                "margin",
                "detail",
            } <= set(c)
            assert c["verdict"] in VERDICTS and c["vector"] == vector
            assert c["kind"] in said_once or c["claim"] in md
    assert run["config"]["n_mazes"] == 3 and run["seeds"]["mazes"] == 0
    assert set(run["files"]) >= {"study.nc", "report.md", "report.html"}
    assert not list(out.rglob("*.tmp"))


def test_dataset_has_the_documented_schema(runs):
    ds = _load(runs[0][0])
    assert DIMS <= set(ds.dims)
    assert set(VARIABLES) <= set(ds.data_vars), set(VARIABLES) - set(ds.data_vars)
    for name, dims in VARIABLES.items():
        assert ds[name].dims == dims, name
    assert ATTRS <= set(ds.attrs)
    assert list(ds["site"].values) == ["steering", "later"]
    assert list(ds["vector"].values) == ["cheese", "top_right"]
    assert list(ds["position"].values) == ["decision_square", "start"]
    assert list(ds["t"].values) == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert ds["diff_norm"].dims == ("site", "vector", "position", "maze", "t", "depth")
    assert ds["p_toward_cheese"].dims == ("site", "vector", "t", "maze")
    assert "fc_policy_out" in ds["depth"].values and "directions" in ds["depth"].values
    assert json.loads(ds.attrs["config"])["ts"] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    # the quick profile walks the first maze only: breakpoint figures there, NaN (unknown) after
    assert json.loads(ds.attrs["config"])["breakpoint_mazes"] == 1
    pieces = ds["n_pieces"].sel(depth="fc_policy_out")
    assert (  # pieces = 1 + the breakpoints the density records, and the logits do bend on [-1, 1]
        (pieces.isel(maze=0) > 1)
        & (
            pieces.isel(maze=0) - 1
            == (ds["breakpoint_density"] * (ds["t_bin_hi"] - ds["t_bin_lo"]))
            .sum("t_bin")
            .sel(depth="fc_policy_out")
            .isel(maze=0)
            .round()
        )
    ).all()
    assert pieces.isel(maze=slice(1, None)).isnull().all()
    summary = json.loads((runs[0][0] / "run.json").read_text())["summary"]
    assert summary["sites"]["steering"]["cheese"]["breakpoint_mazes"] == 1
    if ds.attrs["untrained"]:
        assert "UNTRAINED" in (runs[0][0] / "report.md").read_text()
        assert "UNTRAINED" in runs[0][1].stderr


def test_localisation_variables_are_complete(runs):
    ds = _load(runs[0][0])
    for name in LOCALISATION:
        finite = np.isfinite(ds[name].values)
        assert finite.all() or name == "kink_even_channel", name  # NaN: past a layer's channels
    assert list(ds["control"].values) == list(CONTROL_LINES)
    assert list(ds["readout"].values) == ["p", "logodds", "margin"]
    for name in [v for v in ds.data_vars if "readout" in ds[v].dims]:
        assert "margin: the log-odds linearised in the logits" in ds[name].attrs["readout"], name
    sym = ds["loc_even_cut"].sel(variant="symmetrize", cut="fc_policy_out", readout="margin")
    assert np.nanmax(np.abs(sym.values)) < 1e-4  # linear in the logits: 0 up to rounding
    assert list(ds["variant"].values) == ["linearize", "symmetrize"]
    assert ds["cut"].values[-1] == "fc_policy_out" and ds.sizes["frozen_layer"] == 9
    assert ds.sizes["kink_maze"] == ds.attrs["kink_mazes"] == 1
    assert list(ds["t_loc"].values) == json.loads(ds.attrs["localise_ts"])
    np.testing.assert_allclose(
        ds["kink_even"].sum("frozen_layer"), ds["kink_even_direct"], rtol=1e-6, atol=1e-9
    )
    # r(0) of the real vector is the unsteered P toward the target at the decision square
    base = ds["loc_base"].sel(control="vector", readout="p")
    p0 = ds["p_toward_cheese"].sel(site="steering", vector="cheese", t=0.0)
    np.testing.assert_allclose(base.sel(vector="cheese"), p0, atol=1e-5)


def test_cut_rollouts_cover_the_chosen_cuts_of_the_rollout_mazes(runs):
    ds = _load(runs[0][0])
    roll = ds["loc_roll_reached_cheese"]
    assert roll.dims == ("vector", "variant", "cut", "sign", "maze", "episode")
    k = ds.sizes["episode"]
    assert ds["loc_roll_cut_chosen"].sel(cut="fc_policy_out").all()  # the softmax-only cut
    n = ds.attrs["loc_roll_mazes"]
    chosen = ds["loc_roll_cut_chosen"] == 1
    done = roll.sel(variant="symmetrize").isel(maze=slice(0, n))
    assert done.where(chosen).notnull().sum() == chosen.sum() * 2 * n * k  # chosen cuts, ±t
    base = ds["loc_roll_base_reached_cheese"].sel(variant="symmetrize").isel(maze=slice(0, n))
    assert base.where(chosen).notnull().sum() == chosen.sum() * n * k  # and their t = 0 arm
    assert done.where(~chosen).isnull().all() and roll.isel(maze=slice(n, None)).isnull().all()
    assert roll.attrs["long_name"] and roll.attrs["description"]
    assert "answer_cut_rollouts.png" in figure_names(ds)


def _plotted(fig) -> np.ndarray:
    """Every y value a figure plots: lines and error-bar points, and bar heights."""
    ys = [np.asarray(line.get_ydata(), dtype=float).ravel() for ax in fig.axes for line in ax.lines]
    ys += [np.array([p.get_height()]) for ax in fig.axes for p in ax.patches]
    return np.concatenate(ys) if ys else np.array([])


def test_supporting_figures_plot_the_saved_data(runs):
    ds = _load(runs[0][0])
    heights = _plotted(draw(ds, "later_layers"))
    for x in ds["candidate_effect"].values.ravel():
        assert np.isclose(heights, x, atol=1e-9).any(), x
    lines = _plotted(draw(ds, "behaviour", "steering"))
    for vector in ds["vector"].values:
        mean = ds["p_toward_cheese"].sel(site="steering", vector=vector).mean("maze").values
        for x in mean:
            assert np.isclose(lines, x, atol=1e-9).any(), (vector, x)


def test_rerun_with_the_same_seed_is_identical(runs):
    a, b = _load(runs[0][0]), _load(runs[1][0])
    xr.testing.assert_identical(a, b)


def test_plot_redraws_from_the_saved_dataset(runs, tmp_path):
    out = tmp_path / "copy"
    out.mkdir()
    (out / "study.nc").write_bytes((runs[0][0] / "study.nc").read_bytes())
    proc = _run("plot", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ds = _load(out)
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(figure_names(ds))
    assert (out / "report.html").is_file() and (out / "report.md").is_file()


def test_plot_of_a_folder_without_a_study_fails_clearly(tmp_path):
    proc = _run("plot", str(tmp_path))
    assert proc.returncode == 2
    assert "study.nc" in proc.stderr


def test_an_unknown_vector_is_one_message_naming_the_known_ones(tmp_path):
    proc = _run("study", "--vectors", "cheese,bogus", "--out", str(tmp_path / "run"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "--vectors" in lines[0] and "'bogus'" in lines[0]
    assert all(name in lines[0] for name in ("cheese", "top_right", "cheese_location", "all"))
    assert not (tmp_path / "run").exists()


def test_a_confirmatory_run_tests_the_discovery_hypotheses_on_fresh_mazes(runs, tmp_path):
    out, _ = runs[0]
    hyp = json.loads((out / "hypotheses.json").read_text())
    assert hyp["hypotheses"] and hyp["config"]["n_mazes"] == 3 and len(hyp["level_seeds"]) == 3
    confirmed = tmp_path / "confirm"
    args = ["study", "--confirm", str(out / "hypotheses.json"), "--no-progress"]
    proc = _run(*args, "--levels", "52000,52001,52002,52003", "--out", str(confirmed))
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((confirmed / "run.json").read_text())
    assert run["config"]["ts"] == hyp["config"]["ts"] and run["config"]["levels"]
    rows = run["confirmation"]
    assert [r["id"] for r in rows] == [h["id"] for h in hyp["hypotheses"]]
    assert all(r["verdict"] in ("confirmed", "refuted", "inconclusive") and r["n"] for r in rows)
    assert "## Confirmation" in (confirmed / "report.md").read_text()
    # the discovery's own mazes, or a changed analysis choice, are refused: one line, status 2
    for extra in (["--seed", "0"], ["--seed", "2", "--threshold", "0.3"]):
        proc = _run(*args, *extra, "--out", str(tmp_path / "refused"))
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "refused" / "run.json").exists()
