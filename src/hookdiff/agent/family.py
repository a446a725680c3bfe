"""The agents shipped with hookdiff, by name: each checkpoint with its model card beside it.

A model card is ``<checkpoint stem>.card.json`` next to the checkpoint in ``agent/weights``; its
``agent`` field is the short name (``shipped``, ``control``, ``replicate``) and its ``name`` field
the checkpoint's file name. The family is read from the cards, so shipping another agent
(``hookdiff ship RUN --name NAME``) adds it without touching code. Everywhere a checkpoint path is
taken (``hookdiff study --checkpoint``, ``hookdiff eval --checkpoint``) a shipped name works too:
``--checkpoint shipped,control,replicate``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hookdiff.agent.checkpoint import DEFAULT_CHECKPOINT_NAME, default_checkpoint_path
from hookdiff.errors import ConfigError

__all__ = [
    "SHIPPED",
    "available_agents",
    "card_path",
    "checkpoint_file_name",
    "model_card",
    "resolve_checkpoint",
    "shipped_name",
]

SHIPPED = "shipped"
"""The name of the default agent (the one :func:`~hookdiff.agent.load_default` loads)."""

CARD_SUFFIX = ".card.json"


def weights_dir() -> Path:
    """The package folder the shipped checkpoints and their cards live in."""
    return default_checkpoint_path().parent


def card_path(checkpoint: str | os.PathLike[str]) -> Path:
    """The model card beside ``checkpoint``: ``impala_maze_s1.pt`` → ``impala_maze_s1.card.json``.

    Example:
        >>> card_path("weights/impala_maze_control.pt").name
        'impala_maze_control.card.json'
    """
    path = Path(checkpoint)
    return path.with_name(path.stem + CARD_SUFFIX)


def checkpoint_file_name(name: str) -> str:
    """The checkpoint file an agent named ``name`` is shipped as.

    Example:
        >>> checkpoint_file_name("shipped"), checkpoint_file_name("control")
        ('impala_maze_s1.pt', 'impala_maze_control.pt')
    """
    return DEFAULT_CHECKPOINT_NAME if name == SHIPPED else f"impala_maze_{name}.pt"


def available_agents() -> dict[str, Path]:
    """Every agent shipped in the package: ``{name: checkpoint path}``, the default one first.

    An agent counts when its card and the checkpoint the card names are both present.

    Example:
        >>> agents = available_agents()
        >>> list(agents)[0], agents["shipped"].name
        ('shipped', 'impala_maze_s1.pt')
    """
    found: dict[str, Path] = {}
    for card in sorted(weights_dir().glob("*" + CARD_SUFFIX)):
        data = json.loads(card.read_text())
        checkpoint = card.with_name(data["name"])
        if checkpoint.is_file():
            found[data.get("agent", SHIPPED)] = checkpoint
    first = {SHIPPED: found.pop(SHIPPED)} if SHIPPED in found else {}
    return {**first, **found}


def model_card(name: str) -> dict[str, Any]:
    """The model card of the shipped agent ``name`` (recipe, seed, samples, time, evaluation).

    Raises:
        ConfigError: no agent of that name is shipped.

    Example:
        >>> model_card("shipped")["training"]["seed"]
        0
    """
    return json.loads(card_path(_shipped_path(name)).read_text())


def shipped_name(checkpoint: str | os.PathLike[str]) -> str | None:
    """The name ``checkpoint`` is shipped under, or None for a checkpoint of your own.

    Example:
        >>> shipped_name(available_agents()["shipped"]), shipped_name("my_run/policy.pt")
        ('shipped', None)
    """
    target = Path(checkpoint).resolve()
    return next((n for n, p in available_agents().items() if p.resolve() == target), None)


def resolve_checkpoint(item: str) -> str:
    """A checkpoint path for ``item``: an existing file, or anything written as a path (a folder
    part or a suffix, left for the loader to report when missing), as given; else a shipped
    agent's name.

    Raises:
        ConfigError: ``item`` is a bare name that is neither a file nor a shipped agent.

    Example:
        >>> Path(resolve_checkpoint("shipped")).name
        'impala_maze_s1.pt'
    """
    path = Path(item)
    if path.exists() or path.suffix or len(path.parts) > 1:
        return item
    return str(_shipped_path(item))


def _shipped_path(name: str) -> Path:
    """The checkpoint of the shipped agent ``name``, or a ConfigError listing the names."""
    agents = available_agents()
    if name not in agents:
        raise ConfigError(
            f"{name!r} is neither a checkpoint file nor a shipped agent; shipped agents: "
            f"{', '.join(agents) or 'none'}"
        )
    return agents[name]
