"""hookdiff: how steering vectors act inside a network.

The hook engine (``steer``, ``capture``, ``sweep``, ``downstream``) works on any existing model;
``hookdiff.agent`` holds the IMPALA maze policy, ``hookdiff.maze`` procgen's maze, and
``hookdiff.analysis`` the nonlinearity of diff(t) = f_n(a + t·v) − f_n(a).

Names are imported on first use (PEP 562), so ``import hookdiff.errors`` or loading the pytest
plugin :mod:`hookdiff.testing` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hookdiff import errors

if TYPE_CHECKING:
    from hookdiff.analysis import (
        breakpoints_at,
        line_breakpoints,
        linear_response,
        nonlinearity,
    )
    from hookdiff.hooks import (
        Captured,
        Segment,
        attach,
        capture,
        downstream,
        hook_chain,
        hook_names,
        resolve_hook,
        steer,
        steering_hook,
        sweep,
        tile_coeffs,
    )

__all__ = [
    "Captured",
    "breakpoints_at",
    "line_breakpoints",
    "linear_response",
    "nonlinearity",
    "Segment",
    "attach",
    "capture",
    "downstream",
    "errors",
    "hook_chain",
    "hook_names",
    "resolve_hook",
    "steer",
    "steering_hook",
    "sweep",
    "tile_coeffs",
]
__version__ = "0.1.0"

#: The modules the public names of ``__all__`` live in.
_HOMES = ("hookdiff.hooks", "hookdiff.analysis")


def __getattr__(name: str) -> Any:
    """A public name or a subpackage (``hookdiff.agent``), imported on first use."""
    if name in __all__:
        homes = (importlib.import_module(m) for m in _HOMES)
        value = getattr(next(h for h in homes if hasattr(h, name)), name)
    else:
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
