"""The maze agent: the IMPALA policy as a hooked model, its checkpoints, and its I/O helpers.

``ImpalaPolicy`` is a TransformerLens ``HookedRootModule`` with a hook point after every op and an
explicit op graph (``policy.ops``, ``policy.hook_names``, ``policy.run_segment``) that
``hookdiff.downstream`` and the analysis walk. Checkpoints use the original
``{"model_state_dict": ...}`` format at any scale. ``obs_to_tensor`` turns procgen frames into
model input. :func:`available_agents` lists the shipped family (``shipped``, ``control``,
``replicate``), each with its model card (:func:`model_card`). The policy declares its readout
``"directions"`` (the 5 direction probabilities of :mod:`hookdiff.maze.actions`, re-exported
here) so the analysis reports behaviour per direction.
"""

from hookdiff.agent.checkpoint import (
    checkpoint_sha256,
    default_checkpoint_path,
    load_checkpoint,
    load_default,
    random_init_policy,
    save_checkpoint,
    write_random_checkpoint,
)
from hookdiff.agent.family import available_agents, model_card, resolve_checkpoint, shipped_name
from hookdiff.agent.impala import INPUT, ImpalaPolicy, Op
from hookdiff.agent.obs import obs_to_tensor
from hookdiff.maze.actions import (
    ACTION_DIRECTIONS,
    DIRECTION_NAMES,
    direction_log_probs,
    direction_probs,
)

#: The name earlier releases exported: an alias of :func:`direction_probs`.
directions = direction_probs

__all__ = [
    "ACTION_DIRECTIONS",
    "DIRECTION_NAMES",
    "INPUT",
    "ImpalaPolicy",
    "Op",
    "available_agents",
    "checkpoint_sha256",
    "default_checkpoint_path",
    "direction_log_probs",
    "direction_probs",
    "directions",
    "load_checkpoint",
    "load_default",
    "model_card",
    "obs_to_tensor",
    "random_init_policy",
    "resolve_checkpoint",
    "save_checkpoint",
    "shipped_name",
    "write_random_checkpoint",
]
