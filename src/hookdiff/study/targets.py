"""The steering vectors as data: one :class:`VectorSpec` per vector, read by every step.

A vector of the study is a contrast between two maze states (the ActAdd recipe: the mean
activation difference of a pair) plus what the study reads off it: the cell it steers toward,
the coefficient it was published to steer with, and the dataset variables that hold its target
readout and its rollout outcome. Every step loops over :data:`VECTOR_SPECS` instead of naming
the vectors, so a new vector is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["VECTORS", "VECTOR_SPECS", "VectorSpec", "vector_spec"]


@dataclass(frozen=True)
class VectorSpec:
    """One steering vector of the study and how its effect is read.

    Attributes:
        name: the ``vector`` coordinate value (``"cheese"``).
        label: the vector's name in a sentence (``"top-right"`` as in "the top-right vector").
        target: what it steers toward, in a sentence (``"the top-right cell"``).
        published_t: the coefficient it was published to steer with (its sign is the direction
            that works: −1 for the cheese vector, +1 for the top-right vector).
        target_var: the dataset variable of P(step toward the target) at the decision square.
        reach_var: the rollout outcome variable (reached the target).
        swapped_base: the base of the base swap, in a sentence (the pair's other state).
    """

    name: str
    label: str
    target: str
    published_t: float
    target_var: str
    reach_var: str
    swapped_base: str

    @property
    def loc_reach_var(self) -> str:
        """The cut rollouts' outcome variable (``loc_roll_`` + :attr:`reach_var`)."""
        return f"loc_roll_{self.reach_var}"


#: The built-in vectors, in the order of the ``vector`` coordinate.
VECTOR_SPECS: dict[str, VectorSpec] = {
    "cheese": VectorSpec(
        name="cheese",
        label="cheese",
        target="cheese",
        published_t=-1.0,
        target_var="p_toward_cheese",
        reach_var="reached_cheese",
        swapped_base="the maze without cheese",
    ),
    "top_right": VectorSpec(
        name="top_right",
        label="top-right",
        target="the top-right cell",
        published_t=1.0,
        target_var="p_toward_top_right",
        reach_var="reached_top_right",
        swapped_base="the maze with the corridor",
    ),
}
#: The built-in vectors' names, in the order of the ``vector`` coordinate.
VECTORS = tuple(VECTOR_SPECS)


def vector_spec(name: str) -> VectorSpec:
    """The spec of the built-in vector ``name`` (an error naming the known ones otherwise)."""
    from hookdiff.errors import UnknownNameError, unknown_name_message

    if name not in VECTOR_SPECS:
        raise UnknownNameError(unknown_name_message("vector", name, VECTORS))
    return VECTOR_SPECS[name]
