"""hookdiff: how steering vectors act inside a network.

The hook engine (``steer``, ``capture``, ``sweep``, ``downstream``) works on any existing model;
``hookdiff.agent`` holds the IMPALA maze policy, ``hookdiff.maze`` procgen's maze, and
``hookdiff.analysis`` the nonlinearity of diff(t) = f_n(a + t·v) − f_n(a).
"""

from hookdiff import errors
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
]
__version__ = "0.1.0"
