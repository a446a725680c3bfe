"""The one-command study, orchestrated: inputs, measurements, one Dataset, one run folder.

:func:`run_study` turns a :class:`~hookdiff.study.config.StudyConfig` into one run folder:

1. the studied mazes; per agent (one, or each of several checkpoints) the policy, the vectors
   (:mod:`hookdiff.study.inputs`) and the later layer, picked from the candidates' steering
   effects over every maze — these run on the driver;
2. the per-maze steps (:data:`hookdiff.study.steps.STEPS`, the one registry) at the steering
   layer and at the later layer ("sites"): the nonlinearity of diff(t) per depth, the behaviour,
   the vector fields of example mazes (:mod:`hookdiff.study.measure`), the later layers
   (:mod:`hookdiff.study.later`) and the localisation (:mod:`hookdiff.study.localise`,
   :mod:`hookdiff.study.cut_rollouts`), each as tasks over blocks of mazes run by the backend's
   executor (:mod:`hookdiff.study.backends`: this process or Ray) and joined along ``maze``, in
   waves (:func:`hookdiff.study.steps.waves`): the rollouts at the cuts that matter need the cuts
   that the joined localisation scan of every maze picks, so the scan runs first; finished blocks
   are kept on disk until the study completes (:mod:`hookdiff.study.resume`: ``--resume``
   continues a stopped run);
3. one joined ``xarray.Dataset`` (:mod:`hookdiff.study.dataset`; over ``agent`` too with several
   agents), written as netCDF, plus ``run.json`` (with the time of every step), the figures and
   the report (with several agents: one per agent and a comparison).

Everything is seeded (the same config gives an identical dataset on every backend); every file is
written to a temporary name and moved into place, so an interrupted run leaves no half-written
file, and a rerun starts the computation over and replaces the outputs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import resource
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from hookdiff._device import ieee_float32, resolve_device
from hookdiff._io import remove_stale_temporaries, write_json
from hookdiff.agent.family import SHIPPED, shipped_name
from hookdiff.study.answer import answer
from hookdiff.study.backends import Executor, block_config, executor, maze_blocks
from hookdiff.study.compare import COMPARISON_NAME, claim_rows, later_text, write_comparison
from hookdiff.study.config import StudyConfig
from hookdiff.study.dataset import (
    AGENT_ATTRS,
    DATASET_NAME,
    agent_view,
    concat_agents,
    concat_blocks,
    maze_record,
    merge_parts,
    shift_mazes,
    study_attrs,
    vector_record,
    write_dataset,
)
from hookdiff.study.inputs import (
    StudyMazes,
    later_candidates,
    load_policy,
    study_mazes,
    study_vectors,
)
from hookdiff.study.later import later_layer
from hookdiff.study.localise import localise_attrs
from hookdiff.study.resume import BlockStore
from hookdiff.study.steps import STEPS, Agent, given_args, waves
from hookdiff.study.steps import step as step_named

__all__ = ["run_study", "study_dataset", "write_reports"]


class _Progress:
    """One tqdm bar over the study's driver steps and finished block tasks, plus wall and CPU
    time and peak memory per step (for run.json).

    CPU time is the process's (every thread's) user + system time: on a shared machine it says
    what a step costs when wall time says how busy the machine was. Peak memory is the running
    process's high-water mark (RSS) when the step ended (a Ray block's: its worker's), so the
    first step that reaches the run's peak is where it happened.
    """

    def __init__(self, total: int, enabled: bool):
        self.enabled = enabled
        self.bar = tqdm(total=total, desc="hookdiff study", unit="task", disable=not enabled)
        self.timings: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.peak: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the step ``name`` and advance the bar when it ends."""
        self.bar.set_postfix_str(name)
        t0, c0 = time.perf_counter(), time.process_time()
        yield
        self.record(name, time.perf_counter() - t0, time.process_time() - c0, peak_rss_mib())
        self.bar.update(1)

    def add(self, n: int) -> None:
        """Count ``n`` more steps or tasks in the bar's total."""
        self.bar.total = (self.bar.total or 0) + n
        self.bar.refresh()

    def advance(self) -> None:
        """One task finished."""
        self.bar.update(1)

    def record(self, name: str, wall: float, cpu: float, peak: float) -> None:
        """Add ``wall`` and ``cpu`` seconds to the timings of step ``name``; ``peak``: MiB."""
        self.timings[name] = round(self.timings.get(name, 0.0) + wall, 3)
        self.cpu[name] = round(self.cpu.get(name, 0.0) + cpu, 3)
        self.peak[name] = round(max(self.peak.get(name, 0.0), peak), 1)

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


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB (``ru_maxrss``: KiB on Linux, bytes
    on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def study_dataset(config: StudyConfig, *, progress: bool = True) -> xr.Dataset:
    """Compute the study (everything but writing files) and return the joined Dataset.

    Args:
        config: the study's configuration.
        progress: show tqdm progress bars.

    Returns:
        The Dataset over (site, vector, position, t, depth, maze, ...) with the config, seeds,
        versions and checkpoint hash as attrs; with several checkpoints, over ``agent`` too.

    Usage (about a minute): ``study_dataset(quick_config(), progress=False)``.
    """
    return _compute(config.validate(), progress)[0]


def _compute(
    config: StudyConfig, progress: bool, store: BlockStore | None = None
) -> tuple[xr.Dataset, dict[str, Any]]:
    """The study's Dataset and the wall time of each step (seconds), with the CPU seconds of
    each step under ``"cpu_s"``. A per-maze step's times are the sums over its blocks (those
    taken from ``store`` with the times they took when they ran)."""
    with (
        _Progress(total=0, enabled=progress) as prog,
        _torch_threads(config.threads),
        ieee_float32(),
        executor(config) as ex,
    ):
        ds = _measure(config, prog, ex, store)
    return ds, {**prog.timings, "cpu_s": prog.cpu, "peak_rss_mib": prog.peak}


def _measure(
    config: StudyConfig, prog: _Progress, ex: Executor, store: BlockStore | None
) -> xr.Dataset:
    """Every step of the study, each timed by ``prog``: the mazes; per agent the policy, vectors
    and later layer; the per-maze steps of :data:`~hookdiff.study.steps.STEPS` over maze blocks
    on ``ex``, one map per wave (:func:`~hookdiff.study.steps.waves`: first the steps others
    need, then the rest, given what they need from each agent's joined parts); the joined
    Dataset. ``store``: finished blocks (or None)."""
    paths: list[str | None] = list(config.checkpoints()) or [None]
    prog.add(1 + 3 * len(paths))
    with prog.step("mazes"):
        mazes = study_mazes(config)
    prepared = [_prepare(config, path, mazes, prog) for path in paths]
    shared = [ex.share(agent) for agent, _ in prepared]
    n, size = len(mazes.states), config.maze_block
    run_map = partial(_map_blocks, ex, prog, store, ex.share(mazes), shared, n, size)
    joined: list[dict[str, xr.Dataset]] = [{} for _ in paths]
    for wave in waves(STEPS):
        extra = [{s.name: given_args(s, mine, config) for s in wave if s.needs} for mine in joined]
        for mine, parts in zip(joined, run_map([s.name for s in wave], extra)):
            mine.update(parts)
    studies = []
    for (agent, driver_parts), mine in zip(prepared, joined):
        per_step = {s.name: mine[s.name] for s in STEPS}
        studies.append(_join(config, agent, mazes, per_step, driver_parts))
    if len(studies) == 1:
        return studies[0]
    return concat_agents(studies, _agent_names(paths))


def _map_blocks(
    ex: Executor,
    prog: _Progress,
    store: BlockStore | None,
    mazes: Any,
    agents: list[Any],
    n: int,
    size: int,
    steps: list[str],
    extra: list[dict[str, tuple[Any, ...]]],
) -> list[dict[str, xr.Dataset]]:
    """Per agent, ``{step: part}``: each of ``steps`` run on blocks of ``size`` of the ``n``
    mazes (one task for a :attr:`~hookdiff.study.steps.Step.one_task` step) on ``ex``, joined along the maze dims. ``mazes`` and
    ``agents`` as shared by ``ex``; ``extra[a][step]``: further arguments of agent a's tasks.
    Blocks ``store`` holds are taken from it; the others are saved there as they finish."""
    blocks = {s: [(0, n)] if step_named(s).one_task else maze_blocks(n, size) for s in steps}
    # Block-major order: the first blocks (where the costly walks are) start first.
    keys = sorted(
        ((a, step, block) for a in range(len(agents)) for step in steps for block in blocks[step]),
        key=lambda k: (k[0], k[2][0]),
    )
    results = _finished_blocks(store, keys, extra)
    todo = [k for k in keys if k not in results]
    tasks = [(step, mazes, agents[a], *block, *extra[a].get(step, ())) for a, step, block in todo]
    prog.add(len(tasks))
    prog.bar.set_postfix_str(f"{len(tasks)} block tasks", refresh=True)

    def done(i: int, result: tuple[xr.Dataset, float, float, float]) -> None:
        _, step, (start, stop) = todo[i]
        if store is not None:
            store.save(_block_file(store, todo[i], extra), result)
        prog.bar.set_postfix_str(f"done: {step} {start}:{stop} ({result[1]:.0f} s)", refresh=False)
        prog.advance()

    results |= dict(zip(todo, ex.map(run_block, tasks, done)))
    out = []
    for a in range(len(agents)):
        joined = {}
        for step in steps:
            done_blocks = [results[a, step, block] for block in blocks[step]]
            wall, cpu = sum(r[1] for r in done_blocks), sum(r[2] for r in done_blocks)
            prog.record(step, wall, cpu, max(r[3] for r in done_blocks))
            joined[step] = concat_blocks([r[0] for r in done_blocks])
        out.append(joined)
    return out


def _finished_blocks(
    store: BlockStore | None,
    keys: list[tuple[int, str, tuple[int, int]]],
    extra: list[dict[str, tuple[Any, ...]]],
) -> dict[tuple[int, str, tuple[int, int]], tuple[xr.Dataset, float, float, float]]:
    """The block tasks of ``keys`` that a stopped run of this study finished, from ``store``."""
    if store is None:
        return {}
    found = {}
    for key in keys:
        result = store.load(_block_file(store, key, extra))
        if result is not None:
            found[key] = result
    return found


def _block_file(
    store: BlockStore,
    key: tuple[int, str, tuple[int, int]],
    extra: list[dict[str, tuple[Any, ...]]],
) -> Path:
    """Where ``store`` keeps the block task ``key`` (agent, step, maze range)."""
    a, step, (start, stop) = key
    return store.path(a, step, start, stop, extra[a].get(step, ()))


def _prepare(
    config: StudyConfig, path: str | None, mazes: StudyMazes, prog: _Progress
) -> tuple[Agent, tuple[dict[str, Any], str, xr.Dataset]]:
    """One agent's driver steps: its policy, vectors, later layer (compared over every maze)."""
    config = config if path is None else dataclasses.replace(config, checkpoint=path)
    with prog.step("policy"):
        policy, info = load_policy(config)
        candidates = later_candidates(policy, config)
    with prog.step("vectors"):
        vectors = study_vectors(policy, config, mazes.states, [config.hook, *candidates])
    with prog.step("later layer"), prog.inner(len(candidates), "candidate layers") as bar:
        tolerance = config.later_tolerance
        later, candidate_part = later_layer(
            policy, mazes, vectors, candidates, tolerance, bar.update
        )
    sites = {"steering": config.hook, "later": later}
    return Agent(policy, vectors, config, sites), (info, later, candidate_part)


def _join(
    config: StudyConfig,
    agent: Agent,
    mazes: StudyMazes,
    per_step: dict[str, xr.Dataset],
    driver_parts: tuple[dict[str, Any], str, xr.Dataset],
) -> xr.Dataset:
    """One agent's study: the per-maze steps' parts, the candidates and the input records, with
    the study's ``config`` (every checkpoint) in its attrs."""
    info, later, candidate_part = driver_parts
    inputs = [vector_record(agent.vectors, agent.sites), maze_record(mazes)]
    parts = [*per_step.values(), candidate_part, *inputs]
    effect_t = {spec.name: spec.published_t for spec in agent.vectors.specs}
    attrs = study_attrs(config, info, later, effect_t) | localise_attrs(config, len(mazes.states))
    attrs["skipped_levels"] = json.dumps([list(s) for s in mazes.skipped])
    return merge_parts(parts, attrs)


def _agent_names(paths: list[str | None]) -> list[str]:
    """A short distinct name per checkpoint: a shipped agent's name, else its file name without
    ``.pt``."""
    names: list[str] = []
    for path in paths:
        stem = (shipped_name(path) or Path(path).stem) if path else SHIPPED
        name, k = stem, 2
        while name in names:
            name, k = f"{stem}_{k}", k + 1
        names.append(name)
    return names


def run_block(
    name: str, mazes: StudyMazes, agent: Agent, start: int, stop: int, *extra: Any
) -> tuple[xr.Dataset, float, float, float]:
    """The per-maze step ``name`` on mazes ``start:stop`` (``extra``: the step's further arguments):
    its part (maze coordinates counted from ``start``), its wall and CPU seconds and the peak
    memory (MiB) of the process that ran it. One task of a map over maze blocks."""
    t0, c0 = time.perf_counter(), time.process_time()
    config = block_config(agent.config, start, stop)
    device = resolve_device(config.device)  # where the driver put them, or on a Ray worker its own
    agent, mazes = agent.to(device), mazes.to(device)
    block, vectors = mazes.block(start, stop), agent.vectors.block(start, stop)
    part = step_named(name).fn(agent.policy, block, vectors, config, agent, *extra)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return shift_mazes(part, start), wall, cpu, peak_rss_mib()


def run_study(config: StudyConfig, *, progress: bool = True) -> Path:
    """Run the study and write its run folder; returns the folder.

    Writes ``study.nc`` (the joined dataset), ``run.json`` (config, seeds, versions, checkpoint
    hash, timings, headline numbers), ``figures/*.png`` and ``report.md`` / ``report.html``; with
    several agents, each agent's figures and report under ``agents/<name>/`` and a comparison of
    the agents as ``report.md`` / ``report.html``. Each file is written atomically; stale
    temporary files of an interrupted run are removed first. Finished per-maze blocks are kept in
    ``blocks/`` until the study is complete, so ``config.resume`` can continue a stopped run
    (:mod:`hookdiff.study.resume`).

    Args:
        config: the study's configuration (``config.out_dir`` is the run folder).
        progress: show tqdm progress bars.

    Usage: ``run_study(quick_config())``, what ``hookdiff study --quick`` runs.
    """
    config = config.validate()
    if config.confirm is not None:
        _check_fresh(config)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    t0, c0 = time.perf_counter(), time.process_time()
    store = BlockStore(config)
    ds, timings = _compute(config, progress, store)
    write_dataset(ds, out / DATASET_NAME)
    t_figs, c_figs = time.perf_counter(), time.process_time()
    files, summary, claims, confirmation = write_reports(ds, out)
    timings["figures"] = round(time.perf_counter() - t_figs, 3)
    timings["cpu_s"]["figures"] = round(time.process_time() - c_figs, 3)
    timings["total"] = round(time.perf_counter() - t0, 3)
    timings["cpu_s"]["total"] = round(time.process_time() - c0, 3)
    timings["peak_rss_mib"]["figures"] = round(peak_rss_mib(), 1)
    record = _run_record(ds, timings, [DATASET_NAME, *files], summary, claims)
    record["resumed_blocks"] = store.reused
    if confirmation is not None:
        record["confirmation"] = confirmation
    write_json(record, out / "run.json")
    store.finish()
    return out


def write_reports(
    ds: xr.Dataset, out: Path
) -> tuple[list[str], dict[str, Any], dict[str, Any], Any]:
    """The figures and report of a study Dataset in the run folder ``out`` (with several agents:
    each agent's under ``agents/<name>/`` and their comparison); returns the files written
    (relative to ``out``), the summary, the answer (per agent with several) and, for a
    confirmatory run, the tested hypotheses (else None)."""
    if "agent" in ds.dims:
        return (*_report_agents(ds, out), None)
    return _report(ds, out)


def _report(ds: xr.Dataset, out: Path) -> tuple[list[str], dict[str, Any], dict[str, Any], Any]:
    """One agent's figures, report and hypotheses in ``out``: the files written, the summary,
    the answer (the claims computed once, worded in the report and returned as data for
    run.json) and the confirmation of a confirmatory run (None otherwise)."""
    from hookdiff.study.answer import answer_data, claims
    from hookdiff.study.figures import draw_figures
    from hookdiff.study.hypotheses import HYPOTHESES_NAME, hypotheses_of, write_hypotheses
    from hookdiff.study.report import summarize, write_report
    from hookdiff.study.select import equivalence_margin

    figures = draw_figures(ds, out)
    summary = summarize(ds)
    per_vector = claims(ds)
    confirmation = _confirmation(ds)
    write_report(ds, out, figures, summary, per_vector, confirmation)
    write_hypotheses(out / HYPOTHESES_NAME, hypotheses_of(per_vector, equivalence_margin(ds)), ds)
    files = ["report.md", "report.html", HYPOTHESES_NAME]
    return (
        files + [f"figures/{f.name}" for f in figures],
        summary,
        answer_data(per_vector),
        confirmation,
    )


def _confirmation(ds: xr.Dataset) -> list[dict[str, Any]] | None:
    """The confirmatory run's tested hypotheses (None: not a confirmatory run)."""
    from hookdiff.study.hypotheses import confirm, read_hypotheses

    path = json.loads(ds.attrs["config"]).get("confirm")
    if path is None:
        return None
    hypotheses, _ = read_hypotheses(path)
    return confirm(ds, hypotheses)


def _check_fresh(config: StudyConfig) -> None:
    """Refuse a confirmatory run on the discovery's mazes, before computing anything."""
    from hookdiff.study.hypotheses import check_fresh, read_hypotheses
    from hookdiff.study.inputs import study_mazes

    _, record = read_hypotheses(config.confirm)
    seeds = config.level_seeds() or [s.level_seed for s in study_mazes(config).states]
    check_fresh(seeds, record, str(config.confirm))


def _report_agents(ds: xr.Dataset, out: Path) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """Each agent's report under ``out/agents/<name>/`` and the comparison in ``out``; the files,
    and the summaries and answers per agent."""
    files, summaries, answers, later = ["report.md", "report.html", COMPARISON_NAME], {}, {}, {}
    for name in [str(a) for a in ds["agent"].values]:
        one = agent_view(ds, name)
        written, summaries[name], answers[name], _ = _report(one, out / "agents" / name)
        files += [f"agents/{name}/{f}" for f in written]
        later[name] = later_text(answers[name])
    write_comparison(claim_rows(answers), later, out)
    return files, summaries, answers


#: Dataset attrs copied into run.json as they are (JSON lists over agents in a many-agent run).
_RUN_ATTRS = ("agent", "checkpoint", "checkpoint_sha256", "warning", "steering_hook", "later_hook")


def _run_record(
    ds: xr.Dataset,
    timings: dict[str, Any],
    files: list[str],
    summary: dict[str, Any],
    claims: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """run.json's content: what ran (from the Dataset's attrs), how long, which files, headlines
    (``claims``: the answer, per agent with several; default: :func:`answer` of ``ds``)."""
    many = "agent" in ds.dims
    listed = set(AGENT_ATTRS) if many else set()
    run = {k: json.loads(ds.attrs[k]) if k in listed else ds.attrs[k] for k in _RUN_ATTRS}
    run |= {
        key: json.loads(ds.attrs[key]) for key in ("config", "seeds", "versions", "skipped_levels")
    }
    untrained = json.loads(ds.attrs["untrained"]) if many else [ds.attrs["untrained"]]
    run |= {"untrained": any(bool(u) for u in untrained), "timings_s": timings}
    if many:
        run["agents"] = [str(a) for a in ds["agent"].values]
    run |= {"files": files, "summary": summary, "answer": answer(ds) if claims is None else claims}
    return json.loads(json.dumps(run, sort_keys=True, default=_json_default))


def _json_default(x: Any) -> Any:
    """numpy scalars and arrays as JSON numbers and lists."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
