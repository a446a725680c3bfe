"""The few exception types hookdiff raises.

Each message names what was wrong, where, and what was expected, so a user can fix the call
without reading our source. All derive from :class:`HookdiffError`, and each also derives from the
builtin a caller would naturally catch (``KeyError`` for a bad name, ``ValueError`` for bad data).
"""

from __future__ import annotations


class HookdiffError(Exception):
    """Base class of every error hookdiff raises on purpose."""


class MissingExtraError(HookdiffError, ImportError):
    """A feature whose optional dependencies are not installed; the message names the extra to add."""


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
