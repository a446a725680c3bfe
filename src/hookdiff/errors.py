"""The few exception types hookdiff raises.

Each message names what was wrong, where, and what was expected, so a user can fix the call
without reading our source. All derive from :class:`HookdiffError`, and each also derives from the
builtin a caller would naturally catch (``KeyError`` for a bad name, ``ValueError`` for bad data).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence


def closest_names(name: str, valid: Sequence[str], n: int = 5) -> list[str]:
    """Up to ``n`` names of ``valid`` closest to ``name`` (never ``name`` itself).

    Falls back to names sharing the last dotted component (``...resadd_out``) when none is close.

    Example:
        >>> closest_names("embedder.fc_ot", ["embedder.fc_out", "fc_policy_out"])
        ['embedder.fc_out']
    """
    others = [v for v in valid if v != name]
    close = difflib.get_close_matches(name, others, n=n, cutoff=0.5)
    if not close:
        tail = name.rsplit(".", 1)[-1]
        close = [v for v in others if v.rsplit(".", 1)[-1] == tail][:n]
    return close


def unknown_name_message(what: str, name: object, valid: Sequence[str]) -> str:
    """``"unknown <what>: 'x'. Closest: [...]."``: the one wording of an unknown-name error."""
    close = closest_names(str(name), valid)
    shown = list(valid)[:8]
    more = f" ({len(valid)} in all)" if len(valid) > len(shown) else ""
    hint = f" Closest: {close}." if close else f" Closest: none; valid: {shown}{more}."
    return f"unknown {what}: {name!r}.{hint}"


class HookdiffError(Exception):
    """Base class of every error hookdiff raises on purpose."""


class UnknownHookError(HookdiffError, KeyError):
    """A hook name that the model does not have; the message lists the closest names."""

    def __str__(self) -> str:  # KeyError would repr() the message, quoting it
        return str(self.args[0]) if self.args else ""


class ShapeMismatchError(HookdiffError, ValueError):
    """A vector, mask or coefficient array whose shape does not fit the activation."""


class MazeStateError(HookdiffError, ValueError):
    """Procgen maze state bytes that do not parse: names the field, its byte offset, what was expected."""

    def __init__(self, message: str, *, field: str | None = None, offset: int | None = None):
        super().__init__(message)
        self.field = field
        self.offset = offset


class MazeEditError(HookdiffError, ValueError):
    """An edit that would break the maze's invariants (mouse on a wall, two cheeses, off the grid)."""


class CheckpointError(HookdiffError, ValueError):
    """A file that is not an IMPALA checkpoint of the original format, or of another architecture."""


class NoHookChainError(HookdiffError, TypeError):
    """A model that declares no ordered chain of hook points, so segments cannot be run."""


class NotPiecewiseLinearError(HookdiffError, TypeError):
    """Exact breakpoints were asked of a segment with an op that is not piecewise linear."""


class SegmentError(HookdiffError, ValueError):
    """A segment of a hook chain that cannot be run: ``stop`` not after ``start``, or an activation
    produced before ``start`` (e.g. a residual block's input) missing from ``context``."""


class InterventionError(HookdiffError, ValueError):
    """An intervention that cannot be made: an unknown variant, a cut upstream of the steering hook
    or inside a residual branch, a layer that cannot be frozen; the message lists the valid ones."""
