"""Ship a trained agent inside the package: its checkpoint, evaluated, with a model card.

The card (``agent/weights/model_card.json``) records the training distribution, method, samples,
seed and wall time from the run's ``train_state.pt``, and the evaluation figures from
:func:`hookdiff.training.evaluate.evaluate`, each with the command that reproduces it.
"""

from __future__ import annotations

import datetime as _dt
import shutil
from pathlib import Path
from typing import Any

import torch

from hookdiff._io import atomic_write, write_json
from hookdiff.agent import checkpoint_sha256, default_checkpoint_path, load_checkpoint
from hookdiff.training.evaluate import EvalConfig, evaluate

__all__ = ["model_card_path", "ship_agent"]

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


def model_card_path() -> Path:
    """Where the shipped agent's model card lives (beside its checkpoint)."""
    return default_checkpoint_path().with_name("model_card.json")


def ship_agent(run_dir: str | Path, eval_config: EvalConfig | None = None) -> dict[str, Any]:
    """Copy ``run_dir/policy.pt`` into the package, evaluate it, and write its model card.

    Returns:
        The model card (also written to :func:`model_card_path`).
    """
    run_dir = Path(run_dir)
    eval_config = eval_config or EvalConfig()
    state = torch.load(run_dir / "train_state.pt", weights_only=False, map_location="cpu")
    policy = load_checkpoint(run_dir / "policy.pt")  # validates the checkpoint before shipping
    figures = evaluate(policy, eval_config)
    target = default_checkpoint_path()
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
    write_json(card, model_card_path())
    return card
