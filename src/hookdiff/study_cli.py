"""Command-line layer of the study: ``hookdiff study`` and ``hookdiff plot RUN_DIR``.

Every field of :class:`~hookdiff.study.config.StudyConfig` is an option (``--n-mazes``,
``--ts -3,-1,0,1,3``, ``--breakpoints/--no-breakpoints``, ...), generated from the dataclass so
the CLI cannot drift from the config. Precedence: the defaults (``hookdiff/study/default.json``),
then ``--quick``, then ``--config FILE.json``, then the options given. ``hookdiff.cli`` registers
:func:`add_study_args` / :func:`run_study_cli` and :func:`add_plot_args` / :func:`run_plot_cli`;
:func:`main` runs them standalone (``python -m hookdiff.study_cli study --quick``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
import warnings
from collections.abc import Sequence
from pathlib import Path

__all__ = ["add_plot_args", "add_study_args", "main", "run_plot_cli", "run_study_cli"]

#: Options spelled differently from their field (the brief's names).
_OPTION_NAMES = {"out_dir": "--out"}


def _field_help(name: str) -> str:
    """The field's docstring, read from the config module's source (first sentence)."""
    import ast
    import inspect

    from hookdiff.study import config as cfg

    tree = ast.parse(inspect.getsource(cfg.StudyConfig))
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == name
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
        ):
            return " ".join(str(nxt.value.value).split())
    return ""


def add_study_args(parser: argparse.ArgumentParser) -> None:
    """Add ``hookdiff study``'s options (one per config field, plus --quick and --config)."""
    from hookdiff.study.config import StudyConfig, default_config

    defaults = default_config()
    hints = typing.get_type_hints(StudyConfig)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny profile: few mazes, few t, short rollouts (about a minute)",
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="JSON file of config fields (any subset)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    for f in dataclasses.fields(StudyConfig):
        opt = _OPTION_NAMES.get(f.name, "--" + f.name.replace("_", "-"))
        default = getattr(defaults, f.name)
        shown = (
            ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)
            if isinstance(default, tuple)
            else default
        )
        help_text = f"{_field_help(f.name)} (default: {shown})"
        hint = hints[f.name]
        if hint is bool:
            parser.add_argument(
                opt, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                help=help_text,
            )  # fmt: skip
        elif typing.get_origin(hint) is tuple:
            parser.add_argument(opt, dest=f.name, default=None, metavar="A,B,...", help=help_text)
        else:
            parser.add_argument(opt, dest=f.name, default=None, help=help_text)


def config_from_args(args: argparse.Namespace):  # -> StudyConfig
    """The :class:`StudyConfig` an argparse namespace of :func:`add_study_args` describes."""
    from hookdiff.study.config import StudyConfig, default_config, quick_config

    config = default_config()
    if getattr(args, "quick", False):
        config = quick_config(config)
    if getattr(args, "config", None) is not None:
        config = StudyConfig.from_json(args.config, base=config)
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(StudyConfig)
        if getattr(args, f.name, None) is not None
    }
    if given.get("checkpoint") == "":
        given["checkpoint"] = None
    return StudyConfig.from_dict(given, base=config)


def run_study_cli(args: argparse.Namespace) -> int:
    """Run the study the options describe; print where the outputs are. Returns the exit code."""
    from hookdiff.study.run import DATASET_NAME, run_study

    try:
        config = config_from_args(args)
    except ValueError as e:
        print(f"hookdiff study: {e}", file=sys.stderr)
        return 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        out = run_study(config, progress=not args.no_progress)
    for w in caught:
        if "UNTRAINED" in str(w.message):
            print(f"WARNING: {w.message}", file=sys.stderr)
    run = json.loads((out / "run.json").read_text())
    print(f"study written to {out}/ in {run['timings_s']['total']:.1f} s")
    print(f"  report:  {out / 'report.html'} (and report.md)")
    print(f"  dataset: {out / DATASET_NAME}; figures: {out / 'figures'}/")
    print(f"  later layer: {run['later_hook']}")
    return 0


def add_plot_args(parser: argparse.ArgumentParser) -> None:
    """Add ``hookdiff plot``'s arguments: the run folder."""
    parser.add_argument("run_dir", type=Path, help="a study run folder (holds study.nc)")


def run_plot_cli(args: argparse.Namespace) -> int:
    """Redraw a run folder's figures and report from its saved dataset. Returns the exit code."""
    from hookdiff.study.figures import draw_figures
    from hookdiff.study.report import summarize, write_report
    from hookdiff.study.run import load_dataset

    try:
        ds = load_dataset(args.run_dir)
    except FileNotFoundError as e:
        print(f"hookdiff plot: {e}", file=sys.stderr)
        return 2
    figures = draw_figures(ds, args.run_dir)
    write_report(ds, args.run_dir, figures, summarize(ds))
    print(f"redrew {len(figures)} figures and the report in {args.run_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``study`` or ``plot`` standalone (before ``hookdiff.cli`` wires them in).

    Example:
        >>> main(["study", "--quick", "--out", "runs/quick"])  # doctest: +SKIP
    """
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*is deprecated.*")
    parser = argparse.ArgumentParser(prog="hookdiff", description="hookdiff's study commands")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("study", help="run the study into a run folder")
    add_study_args(p)
    p.set_defaults(_run=run_study_cli)
    p = sub.add_parser("plot", help="redraw a run folder's figures and report")
    add_plot_args(p)
    p.set_defaults(_run=run_plot_cli)
    args = parser.parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
