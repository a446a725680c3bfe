"""The few exception types hookdiff raises.

Each message names what was wrong, where, and what was expected, so a user can fix the call
without reading our source. All derive from :class:`HookdiffError`, and each also derives from the
builtin a caller would naturally catch (``KeyError`` for a bad name, ``ValueError`` for bad data).
The warnings derive from :class:`HookdiffWarning` (a ``UserWarning``): a call that silently did
nothing or measured something else than asked, with what to do instead.
:func:`unknown_name_message` (with :func:`closest`) writes the one "did you mean" message every
unknown-name error uses.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

__all__ = [
    "CheckpointError",
    "ConfigError",
    "HookTypeError",
    "HookdiffError",
    "InterventionError",
    "HookdiffWarning",
    "MissingExtraError",
    "MazeEditError",
    "MazeStateError",
    "NoHookChainError",
    "NotCapturedError",
    "NotEnteredWarning",
    "NotPiecewiseLinearError",
    "SegmentError",
    "ShapeMismatchError",
    "TrainingModeError",
    "TrainingModeWarning",
    "UnknownHookError",
    "UnknownMazeSpecError",
    "UnknownNameError",
    "closest",
    "unknown_name_message",
]


def closest(name: str, valid: Iterable[str], n: int = 5, cutoff: float = 0.5) -> list[str]:
    """Up to ``n`` names of ``valid`` nearest to ``name``, best first; never ``name`` itself.

    Names similar as strings (difflib ratio >= ``cutoff``) come first; when there are none, the
    names sharing ``name``'s last dotted component (``"x.resadd_out"`` -> every ``*.resadd_out``).

    Example:
        >>> closest("block2.res1.resad_out", ["block2.res1.resadd_out", "block3.res1.resadd_out"])
        ['block2.res1.resadd_out', 'block3.res1.resadd_out']
    """
    pool = [v for v in dict.fromkeys(str(v) for v in valid) if v != name]
    near = difflib.get_close_matches(name, pool, n=n, cutoff=cutoff)
    if near:
        return near
    tail = name.rsplit(".", 1)[-1]
    return [v for v in pool if v.rsplit(".", 1)[-1] == tail][:n]


def unknown_name_message(what: str, name: str, valid: Sequence[str], *, n: int = 5) -> str:
    """One line saying ``name`` is not a ``what`` and naming the closest valid names.

    Without close names, the valid names themselves are listed (the first ``2 * n`` of them).

    Example:
        >>> unknown_name_message("maze spec", "vanila-hard", ["vanilla-hard", "vanilla-easy"])
        "'vanila-hard' is not a maze spec; closest: 'vanilla-hard', 'vanilla-easy'"
    """
    valid = list(dict.fromkeys(str(v) for v in valid))
    near = closest(name, valid, n)
    if near:
        return f"{name!r} is not a {what}; closest: {_quoted(near)}"
    if not valid:
        return f"{name!r} is not a {what}; there are none"
    shown = valid[: 2 * n]
    more = f", ... ({len(valid)} in all)" if len(valid) > len(shown) else ""
    return f"{name!r} is not a {what}; valid: {_quoted(shown)}{more}"


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(v) for v in names)


class HookdiffError(Exception):
    """Base class of every error hookdiff raises on purpose."""


class MissingExtraError(HookdiffError, ImportError):
    """A feature whose optional dependencies are not installed; the message names the extra to add."""


class UnknownNameError(HookdiffError, KeyError):
    """A name that is not among the valid ones; the message lists the closest valid names."""

    def __str__(self) -> str:  # KeyError would repr() the message, quoting it
        return str(self.args[0]) if self.args else ""


class UnknownHookError(UnknownNameError):
    """A hook name that the model does not have; the message lists the closest names."""


class UnknownMazeSpecError(UnknownNameError):
    """A maze spec name with no ``envs/<name>.json``; the message lists the closest spec names."""


class ConfigError(HookdiffError, ValueError):
    """A configuration value (or command-line option) that is out of range, of the wrong type, or
    names something unknown; the message names the field, its value and what was expected."""


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


class HookTypeError(HookdiffError, TypeError):
    """A hook name, or an activation reaching a hook, of the wrong type (a list where one hook name
    is expected, a tuple output where a tensor is steered)."""


class NotCapturedError(HookdiffError, KeyError):
    """A captured activation read before any forward inside ``capture()`` reached its hook."""

    def __str__(self) -> str:  # KeyError would repr() the message, quoting it
        return str(self.args[0]) if self.args else ""


class TrainingModeError(HookdiffError, ValueError):
    """A module whose output for one row depends on the other rows of the batch (BatchNorm in
    training mode, or without running statistics) where each row must be a function of itself."""


class HookdiffWarning(UserWarning):
    """Base class of the warnings hookdiff gives: the call ran, but probably not as meant."""


class NotEnteredWarning(HookdiffWarning):
    """A hook context manager (``steer``, ``capture``, ``attach``) created but never entered with
    ``with``, so it attached nothing."""


class TrainingModeWarning(HookdiffWarning):
    """A model in training mode with modules that couple or randomise the rows of a batch
    (BatchNorm, dropout), run where rows must be independent (one batched ``sweep``)."""
