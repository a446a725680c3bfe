"""The one-command study, orchestrated: inputs, measurements, one Dataset, one run folder.

:func:`run_study` turns a :class:`~hookdiff.study.config.StudyConfig` into one run folder:

1. the policy, the studied mazes and the vectors (:mod:`hookdiff.study.inputs`);
2. the later layer, picked from the candidates' steering effects; then at the steering layer and
   at the later layer ("sites"): the nonlinearity of diff(t) per depth and the behaviour; and the
   vector fields of example mazes (:mod:`hookdiff.study.measure`);
3. one joined ``xarray.Dataset`` (:mod:`hookdiff.study.dataset`), written as netCDF, plus
   ``run.json`` (with the wall time of every step), the figures and the report.

Everything is seeded (the same config gives an identical dataset); every file is written to a
temporary name and moved into place, so an interrupted run leaves no half-written file, and a
rerun starts the computation over and replaces the outputs.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from hookdiff._device import ieee_float32
from hookdiff._io import remove_stale_temporaries, write_json
from hookdiff.study.answer import answer
from hookdiff.study.config import StudyConfig
from hookdiff.study.dataset import (
    DATASET_NAME,
    POSITIONS,
    VECTORS,
    maze_record,
    merge_parts,
    per_site,
    study_attrs,
    vector_record,
    write_dataset,
)
from hookdiff.study.inputs import (
    later_candidates,
    load_policy,
    study_mazes,
    study_vectors,
)
from hookdiff.study.localise import (
    localise_attrs,
    localise_controls,
    localise_cut_rollouts,
    localise_kinks,
    localise_scan,
)
from hookdiff.study.measure import (
    EFFECT_T,
    behaviour_at,
    later_layer,
    matched_later,
    nonlinearity_at,
    vector_fields,
)

__all__ = ["run_study", "study_dataset"]


class _Progress:
    """One tqdm bar over the study's steps, plus wall and CPU time per step (for run.json).

    CPU time is the process's (every thread's) user + system time: on a shared machine it says
    what a step costs when wall time says how busy the machine was.
    """

    def __init__(self, total: int, enabled: bool):
        self.enabled = enabled
        self.bar = tqdm(total=total, desc="hookdiff study", unit="step", disable=not enabled)
        self.timings: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the step ``name`` and advance the bar when it ends."""
        self.bar.set_postfix_str(name)
        t0, c0 = time.perf_counter(), time.process_time()
        yield
        self.timings[name] = round(time.perf_counter() - t0, 3)
        self.cpu[name] = round(time.process_time() - c0, 3)
        self.bar.update(1)

    def inner(self, total: int, desc: str) -> tqdm:
        """A transient bar inside a step."""
        return tqdm(total=total, desc=desc, leave=False, disable=not self.enabled)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """torch's thread count set to ``n`` (None: unchanged) for the block, then restored."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def study_dataset(config: StudyConfig, *, progress: bool = True) -> xr.Dataset:
    """Compute the study (everything but writing files) and return the joined Dataset.

    Args:
        config: the study's configuration.
        progress: show tqdm progress bars.

    Returns:
        The Dataset over (site, vector, position, t, depth, maze, ...) with the config, seeds,
        versions and checkpoint hash as attrs.

    Usage (about a minute): ``study_dataset(quick_config(), progress=False)``.
    """
    return _compute(config, progress)[0]


def _compute(config: StudyConfig, progress: bool) -> tuple[xr.Dataset, dict[str, Any]]:
    """The study's Dataset and the wall time of each step (seconds), with the CPU seconds of
    each step under ``"cpu_s"``."""
    config = config.validate()
    with (
        _Progress(total=12, enabled=progress) as prog,
        _torch_threads(config.threads),
        ieee_float32(),
    ):
        ds = _measure(config, prog)
    return ds, {**prog.timings, "cpu_s": prog.cpu}


def _measure(config: StudyConfig, prog: _Progress) -> xr.Dataset:
    """Every step of the study in order, each timed by ``prog``; the joined Dataset."""
    with prog.step("policy"):
        policy, info = load_policy(config)
        candidates = later_candidates(policy, config)
    with prog.step("mazes"):
        mazes = study_mazes(config)
    with prog.step("vectors"):
        vectors = study_vectors(policy, config, mazes.states, [config.hook, *candidates])
    with prog.step("later layer"), prog.inner(len(candidates), "candidate layers") as bar:
        tolerance = config.later_tolerance
        later, candidate_part = later_layer(
            policy, mazes, vectors, candidates, tolerance, bar.update
        )
    sites = {"steering": config.hook, "later": later}
    analyses = len(set(sites.values())) * len(VECTORS) * len(POSITIONS)
    with prog.step("nonlinearity"), prog.inner(analyses, "nonlinearity") as bar:
        nonlin = per_site(
            sites,
            partial(nonlinearity_at, policy, mazes, vectors, config=config, advance=bar.update),
        )
    with prog.step("behaviour"):
        behaviour = per_site(sites, partial(behaviour_at, policy, mazes, vectors, config=config))
    with prog.step("vector fields"):
        fields = vector_fields(policy, mazes, vectors, config)
    localised = []
    for name, measure in _LOCALISE.items():
        with prog.step(name):
            localised.append(measure(policy, mazes, vectors, config))
    scan = xr.merge(localised, compat="override", join="outer", combine_attrs="drop")
    for name, measure in _FROM_SCAN.items():
        with prog.step(name):
            localised.append(measure(policy, mazes, vectors, config, scan))
    inputs = [vector_record(vectors, sites), maze_record(mazes)]
    parts = [nonlin, behaviour, candidate_part, *inputs, fields, *localised]
    attrs = study_attrs(config, info, later, EFFECT_T) | localise_attrs(config, len(mazes.states))
    attrs["skipped_levels"] = json.dumps([list(s) for s in mazes.skipped])
    return merge_parts(parts, attrs)


#: The localisation's steps, in order: the cut / freeze scan, the controls, the kink walk, the
#: later layers matched to a common effect size with the scan at the latest that still steers.
_LOCALISE = {
    "localise scan": localise_scan,
    "localise controls": localise_controls,
    "localise kinks": localise_kinks,
    "later matched": matched_later,
}

#: Steps that read the localisation computed so far (``scan``), then measure per maze.
_FROM_SCAN = {"localise rollouts": localise_cut_rollouts}


def run_study(config: StudyConfig, *, progress: bool = True) -> Path:
    """Run the study and write its run folder; returns the folder.

    Writes ``study.nc`` (the joined dataset), ``run.json`` (config, seeds, versions, checkpoint
    hash, timings, headline numbers), ``figures/*.png`` and ``report.md`` / ``report.html``. Each
    file is written atomically; stale temporary files of an interrupted run are removed first.

    Args:
        config: the study's configuration (``config.out_dir`` is the run folder).
        progress: show tqdm progress bars.

    Usage: ``run_study(quick_config())``, what ``hookdiff study --quick`` runs.
    """
    from hookdiff.study.figures import draw_figures
    from hookdiff.study.report import summarize, write_report

    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    t0, c0 = time.perf_counter(), time.process_time()
    ds, timings = _compute(config, progress)
    write_dataset(ds, out / DATASET_NAME)
    t_figs, c_figs = time.perf_counter(), time.process_time()
    figures = draw_figures(ds, out)
    timings["figures"] = round(time.perf_counter() - t_figs, 3)
    timings["cpu_s"]["figures"] = round(time.process_time() - c_figs, 3)
    summary = summarize(ds)
    write_report(ds, out, figures, summary)
    timings["total"] = round(time.perf_counter() - t0, 3)
    timings["cpu_s"]["total"] = round(time.process_time() - c0, 3)
    files = [DATASET_NAME, "report.md", "report.html", *[f"figures/{f.name}" for f in figures]]
    write_json(_run_record(ds, timings, files, summary), out / "run.json")
    return out


#: Dataset attrs copied into run.json as they are.
_RUN_ATTRS = ("agent", "checkpoint", "checkpoint_sha256", "warning", "steering_hook", "later_hook")


def _run_record(
    ds: xr.Dataset, timings: dict[str, Any], files: list[str], summary: dict[str, Any]
) -> dict[str, Any]:
    """run.json's content: what ran (from the Dataset's attrs), how long, which files, headlines."""
    run = {key: ds.attrs[key] for key in _RUN_ATTRS}
    run |= {
        key: json.loads(ds.attrs[key]) for key in ("config", "seeds", "versions", "skipped_levels")
    }
    run |= {"untrained": bool(ds.attrs["untrained"]), "timings_s": timings}
    run |= {"files": files, "summary": summary, "answer": answer(ds)}
    return json.loads(json.dumps(run, sort_keys=True, default=_json_default))


def _json_default(x: Any) -> Any:
    """numpy scalars and arrays as JSON numbers and lists."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
