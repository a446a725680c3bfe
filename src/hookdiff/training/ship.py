"""Ship a trained agent inside the package: its checkpoint, evaluated, with a model card.

The card (``agent/weights/model_card.json``) records the training distribution, method, samples,
seed and wall time from the run's ``train_state.pt``, and the evaluation figures from
:func:`hookdiff.training.evaluate.evaluate`, each with the command that reproduces it. The target
folder is the package's by default (what ``load_default`` reads); ``dest`` writes elsewhere.
"""

from __future__ import annotations

import datetime as _dt
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hookdiff._config import option
from hookdiff._io import atomic_write, write_json
from hookdiff.agent import checkpoint_sha256, default_checkpoint_path, load_checkpoint
from hookdiff.training.evaluate import EvalConfig, evaluate

__all__ = ["ShipConfig", "model_card_path", "ship_agent"]

METHOD = (
    "Behaviour cloning of the exact shortest-path expert: every open cell of freshly sampled "
    "training mazes rendered by procgen with the mouse on it, labelled with the first step of the "
    "shortest path to the cheese; cross-entropy on the policy's 5 direction log-probabilities "
    "(logsumexp over each direction's actions); Adam, cosine-decayed learning rate; CPU only."
)

DAGGER_METHOD = (
    " Then online DAgger: rounds that roll the policy out (sampling actions) on fresh training "
    "mazes, label every state it visited with the expert's step (at most {visits} samples of one "
    "maze cell per round), and train on those mixed 1:1 with fresh expert cells; Adam at "
    "{lr:g}, cosine-decayed to 10%."
)


@dataclass(frozen=True)
class ShipConfig:
    """Which training run ``hookdiff ship`` ships, and where to."""

    run_dir: str = option(help="A training run folder (hookdiff train --out).")
    dest: str | None = option(
        None,
        "Folder the checkpoint and its model_card.json are written to; none: the package's "
        "agent/weights, which hookdiff.agent.load_default reads.",
    )


def _target(dest: str | Path | None) -> Path:
    """The checkpoint path in ``dest`` (None: the shipped agent's path inside the package)."""
    default = default_checkpoint_path()
    return default if dest is None else Path(dest) / default.name


def model_card_path(dest: str | Path | None = None) -> Path:
    """Where the model card lives, beside the checkpoint (``dest`` None: the shipped agent's)."""
    return _target(dest).with_name("model_card.json")


def ship_agent(
    run_dir: str | Path, eval_config: EvalConfig | None = None, *, dest: str | Path | None = None
) -> dict[str, Any]:
    """Copy ``run_dir/policy.pt`` into ``dest`` (the package), evaluate it, write its model card.

    Returns:
        The model card (also written to :func:`model_card_path` of ``dest``).
    """
    run_dir = Path(run_dir)
    eval_config = eval_config or EvalConfig()
    state = torch.load(run_dir / "train_state.pt", weights_only=False, map_location="cpu")
    policy = load_checkpoint(run_dir / "policy.pt")  # validates the checkpoint before shipping
    figures = evaluate(policy, eval_config)
    target = _target(dest)
    with atomic_write(target) as tmp:
        shutil.copyfile(run_dir / "policy.pt", tmp)
    cfg = state["config"]
    total = cfg["total_samples"]
    dagger = int(cfg.get("dagger_samples", 0))
    planned = total + dagger
    method = METHOD
    command = (
        f"hookdiff train --out RUN_DIR --total-samples {total} --seed {cfg['seed']} "
        f"--scale {cfg['scale']} --threads 2"
    )
    if dagger:
        method += DAGGER_METHOD.format(visits=cfg["dagger_max_visits"], lr=cfg["dagger_lr"])
        command += (
            f" --dagger-samples {dagger} --dagger-lr {cfg['dagger_lr']:g} "
            f"--dagger-mazes {cfg['dagger_mazes']} --dagger-max-steps {cfg['dagger_max_steps']}"
        )
    card = {
        "name": target.name,
        "sha256": checkpoint_sha256(target),
        "architecture": f"IMPALA policy (Langosco et al.), scale {cfg['scale']}, 15 actions",
        "parameters": sum(p.numel() for p in policy.parameters()),
        "training_distribution": (
            f"procgen 0.10.7 maze, spec {cfg['spec']!r}: hard mode, cheese moved to a uniformly "
            f"random open cell of the inner maze's top-right 5x5, mouse at the start"
        ),
        "method": method,
        "training": {
            "samples": state["samples"],
            "steps": state["step"],
            "planned_samples": planned,
            "behaviour_cloning_samples": total,
            "dagger_samples": dagger,
            "finished": state["samples"] >= planned,
            "seed": cfg["seed"],
            "batch_size": cfg["batch_size"],
            "lr": cfg["lr"],
            "wall_hours": round(state["wall_seconds"] / 3600, 2),
            "validation_accuracy_history": state["history"],
            "command": command + "  # resumable: rerun to continue",
        },
        "evaluation": figures,
        "evaluation_command": (
            f"hookdiff eval --n-mazes {eval_config.n_mazes} --seed {eval_config.seed} "
            f"--max-steps {eval_config.max_steps}"
        ),
        "shipped": _dt.date.today().isoformat(),
    }
    write_json(card, model_card_path(dest))
    return card
