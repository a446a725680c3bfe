"""Ship a trained agent inside the package: its checkpoint, evaluated, with a model card.

The card (``<checkpoint stem>.card.json`` beside the checkpoint, see :mod:`hookdiff.agent.family`)
records the agent's name, the training distribution, method, samples, seed, wall time, the
checkpoint it was fine-tuned from and any shortened schedule, from the run's ``train_state.pt``,
and the evaluation figures from :func:`hookdiff.training.evaluate.evaluate` (in distribution: the
run's own training spec), each with the command that reproduces it. The target folder is the
package's by default (what ``available_agents`` lists); ``dest`` writes elsewhere.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hookdiff._config import option
from hookdiff._io import atomic_write, write_json
from hookdiff.agent import checkpoint_sha256, load_checkpoint
from hookdiff.agent.family import SHIPPED, card_path, checkpoint_file_name, weights_dir
from hookdiff.maze.sets import load_spec
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
    name: str = option(
        SHIPPED,
        "The agent's name in hookdiff.agent.available_agents() (and --checkpoint NAME); "
        "'shipped' replaces the default agent.",
    )
    dest: str | None = option(
        None,
        "Folder the checkpoint and its model card (<stem>.card.json) are written to; none: the "
        "package's agent/weights, which hookdiff.agent.available_agents lists.",
    )


def _target(dest: str | Path | None, name: str) -> Path:
    """The checkpoint path of agent ``name`` in ``dest`` (None: the package's weights folder)."""
    return (weights_dir() if dest is None else Path(dest)) / checkpoint_file_name(name)


def model_card_path(dest: str | Path | None = None, name: str = SHIPPED) -> Path:
    """Where agent ``name``'s model card lives, beside its checkpoint (``dest`` None: the
    package's)."""
    return card_path(_target(dest, name))


def ship_agent(
    run_dir: str | Path,
    eval_config: EvalConfig | None = None,
    *,
    dest: str | Path | None = None,
    name: str = SHIPPED,
) -> dict[str, Any]:
    """Copy ``run_dir/policy.pt`` into ``dest`` (the package) as agent ``name``, evaluate it in
    and out of distribution (in distribution: the run's own training spec), write its card.

    Returns:
        The model card (also written to :func:`model_card_path` of ``dest`` and ``name``).
    """
    run_dir = Path(run_dir)
    state = torch.load(run_dir / "train_state.pt", weights_only=False, map_location="cpu")
    cfg = state["config"]
    eval_config = dataclasses.replace(eval_config or EvalConfig(), in_spec=cfg["spec"])
    policy = load_checkpoint(run_dir / "policy.pt")  # validates the checkpoint before shipping
    figures = evaluate(policy, eval_config)
    target = _target(dest, name)
    with atomic_write(target) as tmp:
        shutil.copyfile(run_dir / "policy.pt", tmp)
    total = cfg["total_samples"]
    dagger = int(cfg.get("dagger_samples", 0))
    planned = total + dagger
    method = METHOD
    changes = [h for h in state["history"] if "schedule_change" in h]
    first_total = changes[0]["schedule_change"]["total_samples"][0] if changes else total
    command = (
        f"hookdiff train --out RUN_DIR --total-samples {first_total} --seed {cfg['seed']} "
        f"--spec {cfg['spec']} --scale {cfg['scale']} --lr {cfg['lr']:g} --threads 2"
    )
    if cfg.get("init_from"):
        command += f" --init-from {cfg['init_from']}"
    if dagger:
        method += DAGGER_METHOD.format(visits=cfg["dagger_max_visits"], lr=cfg["dagger_lr"])
        command += (
            f" --dagger-samples {dagger} --dagger-lr {cfg['dagger_lr']:g} "
            f"--dagger-mazes {cfg['dagger_mazes']} --dagger-max-steps {cfg['dagger_max_steps']}"
        )
    card = {
        "agent": name,
        "name": target.name,
        "sha256": checkpoint_sha256(target),
        "architecture": f"IMPALA policy (Langosco et al.), scale {cfg['scale']}, 15 actions",
        "parameters": sum(p.numel() for p in policy.parameters()),
        "training_distribution": (
            f"procgen 0.10.7 maze, spec {cfg['spec']!r}: {load_spec(cfg['spec']).description}"
        ),
        "fine_tuned_from": _origin(cfg.get("init_from")),
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
            "cpu_hours": _hours(state.get("cpu_seconds")),
            "schedule_changes": changes,
            "cpu_threads": cfg["threads"],
            "validation_accuracy_history": state["history"],
            "command": command + _resume_note(changes, total),
        },
        "evaluation": figures,
        "evaluation_command": (
            f"hookdiff eval --checkpoint {name} --in-spec {eval_config.in_spec} "
            f"--n-mazes {eval_config.n_mazes} --seed {eval_config.seed} "
            f"--max-steps {eval_config.max_steps}"
        ),
        "shipped": _dt.date.today().isoformat(),
    }
    write_json(card, model_card_path(dest, name))
    return card


def _origin(init_from: str | None) -> dict[str, str] | None:
    """The checkpoint a fine-tuned run started from (its file name and sha256), else None."""
    if not init_from:
        return None
    found = Path(init_from).is_file()
    return {
        "checkpoint": Path(init_from).name,
        "sha256": checkpoint_sha256(init_from) if found else None,
    }


def _resume_note(changes: list[dict[str, Any]], total: int) -> str:
    """How the command continues: resumable, and where behaviour cloning was shortened."""
    if not changes:
        return "  # resumable: rerun to continue"
    at = changes[0]["samples"]
    return f"  # resumable; after {at} samples rerun it with --total-samples {total} (shortened)"


def _hours(seconds: float | None) -> float | None:
    """Seconds as hours (2 decimals); None when the run did not record them (before 2026-12-07)."""
    return None if seconds is None else round(seconds / 3600, 2)
