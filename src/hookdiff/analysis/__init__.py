"""hookdiff.analysis: how diff(t) = f_n(a + t·v) − f_n(a) departs from linear, depth by depth.

One call, :func:`nonlinearity`, returns everything as a labelled ``xarray.Dataset`` (the
variables are documented in :mod:`hookdiff.analysis.nonlinearity`). Its parts are usable alone:
:func:`linear_response` (diff, its JVP prediction, residual, linear radius, asymmetry, pattern
flips — any model hookdiff can segment), :func:`pattern_flips`, and :func:`line_breakpoints`
(the exact breakpoints along a + t·v of a piecewise-linear segment, SyReNN's line walk), with
:func:`breakpoints_at` to read one sample's breakpoints at one depth.
"""

from hookdiff.analysis.breakpoints import breakpoints_at, line_breakpoints
from hookdiff.analysis.linear import linear_radius, linear_response
from hookdiff.analysis.nonlinearity import nonlinearity
from hookdiff.analysis.patterns import pattern_flips

__all__ = [
    "breakpoints_at",
    "line_breakpoints",
    "linear_radius",
    "linear_response",
    "nonlinearity",
    "pattern_flips",
]
