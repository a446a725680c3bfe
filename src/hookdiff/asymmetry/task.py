"""What the asymmetry question needs from a user: a model, a hook, contrast pairs, inputs, a readout.

A :class:`SteeringTask` holds them; :func:`steering_vector` makes the ActAdd vector from the
pairs (the mean activation difference at the hook), and :func:`check_task` refuses a task the
answer could not be computed for, with a message naming what was wrong and what was expected.
Nothing here knows about mazes: the maze study is one task among many.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hookdiff.errors import ConfigError, ShapeMismatchError
from hookdiff.hooks import capture
from hookdiff.segments import as_segmented, output_of

__all__ = ["SteeringTask", "check_task", "output_depth", "steering_vector"]


@dataclass(frozen=True)
class SteeringTask:
    """One asymmetry question: does adding t·v act differently from subtracting it?

    Attributes:
        model: a HookedTransformer, a TransformerBridge, an ``nn.Sequential``, or any model
            implementing :class:`hookdiff.contract.SegmentedModel`.
        hook: where the vector is added (any name the model lists for the point).
        positives: the contrast pairs' first inputs, batched ``(P, ...)``.
        negatives: their second inputs ``(P, ...)``; the vector is the mean over the pairs of
            act(positive) − act(negative) at ``hook`` (ActAdd).
        inputs: the base inputs ``(N, ...)`` the vector is added to; every interval is over them.
        readout: the model's output ``(rows, ...)`` → one number per row ``(rows,)``, e.g. a
            logit difference of two tokens at the last position.
        t: the coefficient: E = r(t) + r(−t) − 2 r(0) and O = r(t) − r(−t) are read at ±t.
        name: the vector's name in the answer.
        readout_name: the readout's name in the answer.
        vector: a vector to use instead of the pairs' (the activation's shape without the batch).
    """

    model: nn.Module
    hook: str
    positives: Tensor | None
    negatives: Tensor | None
    inputs: Tensor
    readout: Callable[[Tensor], Tensor]
    t: float = 1.0
    name: str = "vector"
    readout_name: str = "readout"
    vector: Tensor | None = None


def output_depth(model: nn.Module) -> str:
    """The depth the readout reads: the model's output (its chain's declared output)."""
    return output_of(as_segmented(model))[0]


@torch.no_grad()
def activations(model: nn.Module, hook: str, inputs: Tensor) -> Tensor:
    """The activation at ``hook`` for ``inputs`` (one forward, detached)."""
    with capture(model, [hook]) as acts:
        model(inputs)
    return acts[hook]


def steering_vector(task: SteeringTask) -> Tensor:
    """The task's vector: ``task.vector``, or the pairs' mean activation difference at the hook.

    Example:
        >>> net = nn.Sequential(nn.Identity(), nn.ReLU())
        >>> pos, neg = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
        >>> task = SteeringTask(net, "0", pos, neg, torch.zeros(2, 2), lambda y: y[:, 0])
        >>> steering_vector(task).tolist()
        [1.0, -1.0]
    """
    if task.vector is not None:
        return task.vector.detach()
    first = activations(task.model, task.hook, task.positives)
    second = activations(task.model, task.hook, task.negatives)
    return (first.double() - second.double()).mean(dim=0).to(first.dtype)


def check_task(task: SteeringTask) -> None:
    """Refuse a task the answer cannot be computed for (a clear message, before any work).

    Raises:
        ConfigError: no pairs and no vector, pairs of different sizes, fewer than 2 inputs, or
            t not positive.
        ShapeMismatchError: the readout does not give one number per row.
    """
    if task.vector is None and (task.positives is None or task.negatives is None):
        raise ConfigError("give contrast pairs (positives and negatives) or a vector; got neither")
    if task.vector is None and len(task.positives) != len(task.negatives):
        raise ConfigError(
            f"positives and negatives pair up one to one; got {len(task.positives)} positives "
            f"and {len(task.negatives)} negatives"
        )
    if len(task.inputs) < 2:
        raise ConfigError(
            f"the answer's intervals are over inputs: expected at least 2; got {len(task.inputs)}"
        )
    if not task.t > 0:
        raise ConfigError(f"t is the size of the push (±t): expected t > 0; got {task.t}")
    with torch.no_grad():
        out = task.readout(task.model(task.inputs[:2]))
    if tuple(out.shape) != (2,):
        raise ShapeMismatchError(
            f"the readout maps the model's output (rows, ...) to one number per row; for 2 rows "
            f"it gave shape {tuple(out.shape)}, expected (2,)"
        )
