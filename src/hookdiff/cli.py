"""The ``hookdiff`` command line: one subcommand per job, each a thin layer over the library.

Subcommands register themselves in ``_COMMANDS`` with a function that adds their arguments and a
function that runs them, so adding a job touches one place. Library warnings that are not ours
(gym's banner, deprecations inside torch) are kept out of the user's terminal.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

_Command = tuple[
    str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]
]
_COMMANDS: list[_Command] = []


def _quiet_third_party_warnings() -> None:
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*is deprecated.*")
    warnings.filterwarnings("ignore", message=".*HookedTransformer is deprecated.*")


# -------------------------------------------------------------------------------- demo


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed of the model, inputs and vector")


def _demo(args: argparse.Namespace) -> int:
    """Steer a tiny random HookedTransformer: one batched sweep, diff(t) per downstream depth."""
    import torch

    import hookdiff
    from hookdiff._io import atomic_write
    from hookdiff.testing import make_tiny_transformer

    torch.manual_seed(args.seed)
    model = make_tiny_transformer(seed=args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    tokens = torch.randint(0, model.cfg.d_vocab, (8, 6), generator=gen)
    hook = "blocks.0.hook_resid_pre"
    with hookdiff.capture(model, [hook]) as acts:
        model(tokens[:2])
    vector = (acts[hook][0] - acts[hook][1]).detach()  # a contrast pair, as steering vectors are
    coeffs = torch.linspace(-3, 3, 13)
    depths = [n for n in hookdiff.hook_chain(model) if n not in (hook, "logits")]
    ds = hookdiff.sweep(model, tokens, hook, vector, coeffs, capture=["output", *depths])
    ds.attrs.update(seed=args.seed, model="tiny HookedTransformer (2 layers, d_model 16)")
    path = args.out / "sweep.nc"
    with atomic_write(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")

    print(f"steered {hook} of a tiny random HookedTransformer with t in [-3, 3]")
    print(f"{'t':>6} " + " ".join(f"{d:>26}" for d in [*depths, "output"]))
    for k, t in enumerate(coeffs.tolist()):
        norms = []
        for name in [*depths, "output"]:
            diff = ds[name].values[k] - ds[f"{name}:baseline"].values
            norms.append(float((diff**2).sum() ** 0.5))
        print(f"{t:6.2f} " + " ".join(f"{x:26.4f}" for x in norms))
    print(f"wrote {path} (the full sweep as netCDF: variables per hook, dims coeff x batch x ...)")
    return 0


_COMMANDS.append(("demo", _demo_args, _demo))


# -------------------------------------------------------------------------------- study, plot


def _study_args(p: argparse.ArgumentParser) -> None:
    from hookdiff.study_cli import add_study_args

    add_study_args(p)


def _study(args: argparse.Namespace) -> int:
    """Run the study: steering vectors, nonlinearity per depth, behaviour, data + figures + report."""
    from hookdiff.study_cli import run_study_cli

    return run_study_cli(args)


def _plot_args(p: argparse.ArgumentParser) -> None:
    from hookdiff.study_cli import add_plot_args

    add_plot_args(p)


def _plot(args: argparse.Namespace) -> int:
    """Redraw a study's figures and report from its saved dataset (RUN_DIR/study.nc)."""
    from hookdiff.study_cli import run_plot_cli

    return run_plot_cli(args)


_COMMANDS.append(("study", _study_args, _study))
_COMMANDS.append(("plot", _plot_args, _plot))


# -------------------------------------------------------------------------------- train


def _train_args(p: argparse.ArgumentParser) -> None:
    from hookdiff.training.train import TrainConfig

    defaults = TrainConfig()
    p.add_argument("--out", default=defaults.out_dir, help="run folder (resumed if it exists)")
    p.add_argument("--total-samples", type=int, default=defaults.total_samples)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--scale", type=int, default=defaults.scale)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--spec", default=defaults.spec, help="maze spec in envs/")
    p.add_argument("--threads", type=int, default=defaults.threads)
    p.add_argument("--max-minutes", type=float, default=None, help="stop (resumably) after this")
    p.add_argument("--checkpoint-minutes", type=float, default=defaults.checkpoint_every_s / 60)
    p.add_argument(
        "--dagger-samples",
        type=int,
        default=defaults.dagger_samples,
        help="samples of on-policy DAgger rounds after behaviour cloning (0: none)",
    )
    p.add_argument("--dagger-lr", type=float, default=defaults.dagger_lr)
    p.add_argument("--dagger-mazes", type=int, default=defaults.dagger_mazes)
    p.add_argument("--dagger-max-steps", type=int, default=defaults.dagger_max_steps)


def _train(args: argparse.Namespace) -> int:
    """Train (or resume) an ImpalaPolicy by imitating the shortest-path expert."""
    from hookdiff.training.train import TrainConfig, train

    config = TrainConfig(
        out_dir=args.out,
        total_samples=args.total_samples,
        batch_size=args.batch_size,
        lr=args.lr,
        scale=args.scale,
        seed=args.seed,
        spec=args.spec,
        threads=args.threads,
        max_seconds=None if args.max_minutes is None else args.max_minutes * 60,
        checkpoint_every_s=args.checkpoint_minutes * 60,
        dagger_samples=args.dagger_samples,
        dagger_lr=args.dagger_lr,
        dagger_mazes=args.dagger_mazes,
        dagger_max_steps=args.dagger_max_steps,
    )
    result = train(config)
    state = "finished" if result.finished else "paused (rerun the same command to resume)"
    print(
        f"{state}: {result.steps} steps, {result.samples} samples, "
        f"{result.wall_seconds / 60:.1f} min, validation accuracy {result.val_accuracy}"
    )
    print(f"policy (original checkpoint format): {Path(args.out) / 'policy.pt'}")
    return 0


_COMMANDS.append(("train", _train_args, _train))


# -------------------------------------------------------------------------------- eval


def _eval_args(p: argparse.ArgumentParser) -> None:
    from hookdiff.training.evaluate import EvalConfig

    d = EvalConfig()
    p.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped agent")
    p.add_argument("--n-mazes", type=int, default=d.n_mazes, help="mazes per set")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--max-steps", type=int, default=d.max_steps)
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")


def _eval(args: argparse.Namespace) -> int:
    """Evaluate an agent: reach rates in/out of distribution, P(toward cheese) at decision squares."""
    import json

    from hookdiff._io import write_json
    from hookdiff.agent import load_checkpoint, load_default
    from hookdiff.training.evaluate import EvalConfig, evaluate

    policy = load_default() if args.checkpoint is None else load_checkpoint(args.checkpoint)
    config = EvalConfig(n_mazes=args.n_mazes, seed=args.seed, max_steps=args.max_steps)
    figures = evaluate(policy, config)
    figures["checkpoint"] = str(args.checkpoint or "shipped default")
    print(json.dumps(figures, indent=2))
    if args.out is not None:
        write_json(figures, args.out)
    return 0


_COMMANDS.append(("eval", _eval_args, _eval))


# -------------------------------------------------------------------------------- ship


def _ship_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, help="a training run folder (hookdiff train --out)")
    p.add_argument("--n-mazes", type=int, default=200, help="mazes per evaluation set")


def _ship(args: argparse.Namespace) -> int:
    """Ship a trained run's policy inside the package, evaluated, with its model card."""
    import json

    from hookdiff.training.evaluate import EvalConfig
    from hookdiff.training.ship import model_card_path, ship_agent

    card = ship_agent(args.run_dir, EvalConfig(n_mazes=args.n_mazes))
    print(json.dumps(card["evaluation"], indent=2))
    print(f"shipped; model card: {model_card_path()}")
    return 0


_COMMANDS.append(("ship", _ship_args, _ship))


# -------------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand (exposed for the docs and the tests)."""
    parser = argparse.ArgumentParser(
        prog="hookdiff", description="How steering vectors act inside a network."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, add_args, run in _COMMANDS:
        p = sub.add_parser(name, help=(run.__doc__ or "").strip().splitlines()[0])
        add_args(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hookdiff`` with ``argv`` (default: the process's arguments); returns the exit code."""
    _quiet_third_party_warnings()
    args = build_parser().parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
