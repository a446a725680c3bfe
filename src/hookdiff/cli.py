"""The ``hookdiff`` command line: one parser, one subcommand per job, options from the configs.

Each subcommand is a thin layer over the library. Its options are generated from its frozen
dataclass configs (:mod:`hookdiff._config`: one option per field, the field's help text, the
dataclass's default), so the command line cannot drift from the library. A user mistake (a bad
option, an unknown name, a file that is not a checkpoint) is one message on stderr and exit
status 2; ``--debug`` shows the traceback instead. Library warnings that are not ours (gym's
banner, deprecations inside torch) are kept out of the user's terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from hookdiff import _config
from hookdiff._config import option
from hookdiff.errors import HookdiffError

__all__ = ["EvalTarget", "build_parser", "main"]

#: Exit status of a user mistake (argparse's).
USAGE_ERROR = 2


@dataclass(frozen=True)
class _Command:
    """A subcommand: its configs, the options that are not config fields, and what it runs."""

    run: Callable[[argparse.Namespace], int]
    """Runs the command; the first line of its docstring is the command's help."""
    configs: Callable[[], tuple[type, ...]]
    """The config classes whose fields are the options (imported when the parser is built)."""
    extra: Callable[[argparse.ArgumentParser], None] | None = None
    """Adds the options that are not config fields (profiles, progress bars)."""


_COMMANDS: dict[str, _Command] = {}


def _quiet_third_party_warnings() -> None:
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*is deprecated.*")
    warnings.filterwarnings("ignore", message=".*HookedTransformer is deprecated.*")


def _progress_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")


# -------------------------------------------------------------------------------- demo


def _demo(args: argparse.Namespace) -> int:
    """Steer a tiny random HookedTransformer: one batched sweep, diff(t) per downstream depth."""
    from hookdiff.demo import HOOK, DemoConfig, diff_table, run_demo

    ds, path = run_demo(_config.from_args(DemoConfig, args))
    print(f"steered {HOOK} of a tiny random HookedTransformer with t in [-3, 3]")
    print(diff_table(ds))
    print(f"wrote {path} (the full sweep as netCDF: variables per hook, dims coeff x batch x ...)")
    return 0


def _demo_configs() -> tuple[type, ...]:
    from hookdiff.demo import DemoConfig

    return (DemoConfig,)


_COMMANDS["demo"] = _Command(_demo, _demo_configs)


# -------------------------------------------------------------------------------- study, plot


def _study_extra(p: argparse.ArgumentParser) -> None:
    profile = p.add_mutually_exclusive_group()
    profile.add_argument(
        "--quick",
        action="store_true",
        help="tiny profile: few mazes, few t, short rollouts (about half a minute)",
    )
    profile.add_argument(
        "--full",
        action="store_true",
        help="publication profile: 104 mazes, every maze walked and rolled out (26 CPU minutes "
        "for the shipped agent; 2.8 CPU hours for a scale-4 network, about 90 minutes on 2 cores "
        "with --backend ray --ray-workers 2; stop and --resume as you like)",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="JSON file of config fields (any subset; options given as well win) (default: none)",
    )
    _progress_option(p)


def study_config(args: argparse.Namespace) -> Any:
    """The StudyConfig of ``hookdiff study``'s options: defaults < --quick / --full < --config <
    options.

    Raises:
        ConfigError: a bad value, an unknown hook point or maze spec, an unreadable --config.
    """
    from hookdiff.study.config import StudyConfig, full_config, quick_config, read_json_object

    base = quick_config() if args.quick else full_config() if args.full else StudyConfig()
    values = read_json_object(args.config) if args.config is not None else {}
    given = {k: v for k, v in vars(args).items() if k in StudyConfig.__dataclass_fields__}
    given = {**values, **given}
    if given.get("confirm") is not None:
        from hookdiff.study.hypotheses import confirm_config

        profile = ["quick"] if args.quick else ["full"] if args.full else []
        return confirm_config(given["confirm"], {**given, **dict.fromkeys(profile)})
    return StudyConfig.from_dict(given, base)


def _study(args: argparse.Namespace) -> int:
    """Run the study: steering vectors, nonlinearity per depth, behaviour, data + figures + report."""
    from hookdiff._device import resolve_device
    from hookdiff.agent import load_checkpoint
    from hookdiff.study import DATASET_NAME, run_study

    config = study_config(args)
    resolve_device(config.device)  # a missing GPU fails now, before the progress bars
    for path in config.checkpoints():
        load_checkpoint(path)  # a bad file, too
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        out = run_study(config, progress=not args.no_progress)
    for w in caught:
        if "UNTRAINED" in str(w.message):
            print(f"WARNING: {w.message}", file=sys.stderr)
    run = json.loads((out / "run.json").read_text())
    print(f"study written to {out}/ in {run['timings_s']['total']:.1f} s")
    print(f"  report:  {out / 'report.html'} (and report.md)")
    figures = out / ("agents/<name>/figures" if run.get("agents") else "figures")
    print(f"  dataset: {out / DATASET_NAME}; figures: {figures}/")
    print(f"  {_later_line(run)}")
    return 0


def _later_line(run: dict[str, Any]) -> str:
    """The report's later-layer answer in one line: per vector (and agent, with several), the
    latest layer a vector the mazes were not built from still steers, matched in effect (the
    ``matched`` claim; :func:`hookdiff.study.compare.later_text`)."""
    from hookdiff.study.compare import later_text

    answer = run.get("answer", {})
    if run.get("agents"):
        per_agent = [f"{a} ({later_text(answer.get(a, {}))})" for a in run["agents"]]
        return "latest layer a leave-one-out vector still steers: " + "; ".join(per_agent)
    return "latest layer a leave-one-out vector still steers: " + later_text(answer)


def _study_configs() -> tuple[type, ...]:
    from hookdiff.study.config import StudyConfig

    return (StudyConfig,)


def _plot(args: argparse.Namespace) -> int:
    """Redraw a study's figures and report from its saved dataset (RUN_DIR/study.nc)."""
    from hookdiff.study import load_dataset
    from hookdiff.study.config import PlotConfig
    from hookdiff.study.run import write_reports

    run_dir = Path(_config.from_args(PlotConfig, args).run_dir)
    files = write_reports(load_dataset(run_dir), run_dir)[0]
    figures = [f for f in files if f.endswith(".png")]
    print(f"redrew {len(figures)} figures and the report in {run_dir}")
    return 0


def _plot_configs() -> tuple[type, ...]:
    from hookdiff.study.config import PlotConfig

    return (PlotConfig,)


_COMMANDS["study"] = _Command(_study, _study_configs, _study_extra)
_COMMANDS["plot"] = _Command(_plot, _plot_configs)


# -------------------------------------------------------------------------------- train


def _train(args: argparse.Namespace) -> int:
    """Train (or resume) an ImpalaPolicy by imitating the shortest-path expert."""
    from hookdiff.training.train import TrainConfig, train

    config = _config.from_args(TrainConfig, args)
    result = train(config, progress=not args.no_progress)
    state = "finished" if result.finished else "paused (rerun the same command to resume)"
    print(
        f"{state}: {result.steps} steps, {result.samples} samples, "
        f"{result.wall_seconds / 60:.1f} min, validation accuracy {result.val_accuracy}"
    )
    print(f"policy (original checkpoint format): {Path(config.out_dir) / 'policy.pt'}")
    return 0


def _train_configs() -> tuple[type, ...]:
    from hookdiff.training.train import TrainConfig

    return (TrainConfig,)


_COMMANDS["train"] = _Command(_train, _train_configs, _progress_option)


# -------------------------------------------------------------------------------- eval, ship


@dataclass(frozen=True)
class EvalTarget:
    """Which agent ``hookdiff eval`` evaluates and where the figures go."""

    checkpoint: str | None = option(
        None,
        "Checkpoint to evaluate (original format), or a shipped agent's name "
        "(hookdiff.agent.available_agents()); none: the shipped agent.",
    )
    out: str = option("eval.json", "Write the figures (rates with Wilson 95 % intervals) here.")


def _eval(args: argparse.Namespace) -> int:
    """Evaluate an agent: reach rates in/out of distribution, P(toward cheese) at decision squares."""
    from hookdiff._io import write_json
    from hookdiff.agent import load_checkpoint, load_default
    from hookdiff.agent.family import resolve_checkpoint
    from hookdiff.training.evaluate import EvalConfig, evaluate

    target = _config.from_args(EvalTarget, args)
    config = _config.from_args(EvalConfig, args)
    if target.checkpoint is None:
        policy = load_default()
    else:
        policy = load_checkpoint(resolve_checkpoint(target.checkpoint))
    figures = evaluate(policy, config)
    figures["checkpoint"] = target.checkpoint or "shipped default"
    print(json.dumps(figures, indent=2))
    write_json(figures, target.out)
    print(f"written to {target.out}", file=sys.stderr)  # stdout stays one JSON document
    return 0


def _eval_configs() -> tuple[type, ...]:
    from hookdiff.training.evaluate import EvalConfig

    return (EvalTarget, EvalConfig)


def _ship(args: argparse.Namespace) -> int:
    """Ship a trained run's policy (into the package by default), evaluated, with its model card."""
    from hookdiff.training.evaluate import EvalConfig
    from hookdiff.training.ship import ShipConfig, model_card_path, ship_agent

    ship = _config.from_args(ShipConfig, args)
    evaluation = _config.from_args(EvalConfig, args)
    card = ship_agent(ship.run_dir, evaluation, dest=ship.dest, name=ship.name)
    print(json.dumps(card["evaluation"], indent=2))
    print(f"shipped as {ship.name!r}; model card: {model_card_path(ship.dest, ship.name)}")
    return 0


def _ship_configs() -> tuple[type, ...]:
    from hookdiff.training.evaluate import EvalConfig
    from hookdiff.training.ship import ShipConfig

    return (ShipConfig, EvalConfig)


def _answer(args: argparse.Namespace) -> int:
    """Answer the asymmetry question for your own model: TASK.py defines task() -> SteeringTask."""
    from hookdiff.asymmetry import AnswerConfig, answer, load_task

    config = _config.from_args(AnswerConfig, args)
    task = load_task(config.task)
    result = answer(
        task, seed=config.seed, random_draws=config.random_draws, progress=not args.no_progress
    )
    out = result.save(config.out)
    for c in result.claims:
        print(f"{c.kind:15s} {c.where or '—':40s} {c.estimate:+.4g} {c.verdict}")
    print(f"answer written to {out}/ (report.md, answer.json, answer.nc)")
    return 0


def _answer_configs() -> tuple[type, ...]:
    from hookdiff.asymmetry import AnswerConfig

    return (AnswerConfig,)


_COMMANDS["answer"] = _Command(_answer, _answer_configs, _progress_option)
_COMMANDS["eval"] = _Command(_eval, _eval_configs)
_COMMANDS["ship"] = _Command(_ship, _ship_configs)


# -------------------------------------------------------------------------------- entry point


class _UsageError(Exception):
    """A command line argparse cannot parse (the message is ready for the user)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump) and do not exit, and that
    takes no abbreviations (``--vector`` is not silently read as ``--vectors-from``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "allow_abbrev": False})

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


def _add_debug(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback of an error instead of one line",
    )


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of every subcommand (exposed for the docs and the tests).

    ``only``: build the options of that subcommand alone (the others keep their one-line help):
    a subcommand's options come from its configs, whose imports (torch, procgen) take seconds,
    so ``hookdiff --help`` and one command's run import only what they need.
    """
    parser = _Parser(prog="hookdiff", description="How steering vectors act inside a network.")
    _add_debug(parser)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, command in _COMMANDS.items():
        p = sub.add_parser(name, help=(command.run.__doc__ or "").strip().splitlines()[0])
        if only is not None and name != only:
            continue
        for cls in command.configs():
            _config.add_options(p, cls)
        if command.extra is not None:
            command.extra(p)
        _add_debug(p)
        p.set_defaults(_run=command.run)
    return parser


def _report(command: str, error: BaseException) -> None:
    """The user's error as one message on stderr."""
    message = " ".join(str(error).split()) or type(error).__name__
    print(f"hookdiff {command}: error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hookdiff`` with ``argv`` (default: the process's arguments); returns the exit code.

    Example:
        >>> main(["eval", "--n-mazes", "0"])  # a mistake: one line on stderr, exit status 2
        2
    """
    _quiet_third_party_warnings()
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen = next((a for a in argv if a in _COMMANDS), "")  # "" builds no command's options
    try:
        args = build_parser(only=chosen).parse_args(argv)
    except _UsageError as e:
        print(e, file=sys.stderr)
        return USAGE_ERROR
    try:
        return int(args._run(args) or 0)
    except (HookdiffError, FileNotFoundError) as e:
        if getattr(args, "debug", False):
            raise
        _report(args.command, e)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
