"""hookdiff: how steering vectors act inside a network.

The hook engine (``steer``, ``capture``, ``sweep``, ``downstream``) works on any existing model;
``hookdiff.agent`` holds the IMPALA maze policy, ``hookdiff.maze`` procgen's maze, and
``hookdiff.analysis`` the nonlinearity of diff(t) = f_n(a + t·v) − f_n(a) and the causal verbs
(``line_response``: the response with the network cut and linearised / symmetrised, or with
nonlinear ops frozen). A model meets them through the protocols of ``hookdiff.contract``.

Names are imported on first use (PEP 562), so ``import hookdiff.errors`` or loading the pytest
plugin :mod:`hookdiff.testing` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hookdiff import errors

#: Every public name, and the module it lives in.
_HOMES = {
    **dict.fromkeys(
        [
            "Captured",
            "Segment",
            "attach",
            "capture",
            "downstream",
            "hook_chain",
            "hook_names",
            "resolve_hook",
            "steer",
            "steering_hook",
            "tile_coeffs",
        ],
        "hookdiff.hooks",
    ),
    "sweep": "hookdiff.sweeps",
    **dict.fromkeys(
        [
            "breakpoints_at",
            "cut_scan",
            "even_from_kinks",
            "even_odd",
            "freezable",
            "kink_attribution",
            "line_breakpoints",
            "line_response",
            "linear_response",
            "nonlinearity",
            "readout_onset",
            "valid_cuts",
        ],
        "hookdiff.analysis",
    ),
    **dict.fromkeys(
        ["DeclaresReadouts", "Op", "OpGraphModel", "Readout", "SegmentedModel"],
        "hookdiff.contract",
    ),
    "resolve_device": "hookdiff._device",
    **dict.fromkeys(["OpGraph", "op"], "hookdiff.opgraph"),
}

if TYPE_CHECKING:
    from hookdiff._device import resolve_device
    from hookdiff.analysis import (
        breakpoints_at,
        cut_scan,
        even_from_kinks,
        even_odd,
        freezable,
        kink_attribution,
        line_breakpoints,
        line_response,
        linear_response,
        nonlinearity,
        readout_onset,
        valid_cuts,
    )
    from hookdiff.contract import DeclaresReadouts, Op, OpGraphModel, Readout, SegmentedModel
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
        tile_coeffs,
    )
    from hookdiff.opgraph import OpGraph, op
    from hookdiff.sweeps import sweep

__all__ = [
    "Captured",
    "DeclaresReadouts",
    "Op",
    "OpGraph",
    "OpGraphModel",
    "Readout",
    "Segment",
    "SegmentedModel",
    "attach",
    "breakpoints_at",
    "capture",
    "cut_scan",
    "downstream",
    "errors",
    "even_from_kinks",
    "even_odd",
    "freezable",
    "hook_chain",
    "hook_names",
    "kink_attribution",
    "line_breakpoints",
    "line_response",
    "linear_response",
    "nonlinearity",
    "op",
    "readout_onset",
    "resolve_device",
    "resolve_hook",
    "steer",
    "steering_hook",
    "sweep",
    "tile_coeffs",
    "valid_cuts",
]  # every name of _HOMES, and errors
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """A public name or a subpackage (``hookdiff.agent``), imported on first use."""
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
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
