"""hookdiff.analysis: how diff(t) = f_n(a + t·v) − f_n(a) departs from linear, depth by depth.

One call, :func:`nonlinearity`, returns everything as a labelled ``xarray.Dataset`` (the
variables are documented in :mod:`hookdiff.analysis.nonlinearity`). Its parts are usable alone:
:func:`linear_response` (diff, its JVP prediction, residual, linear radius, asymmetry, pattern
flips — any model hookdiff can segment), :func:`pattern_flips`, and :func:`line_breakpoints`
(the exact breakpoints along a + t·v of a piecewise-linear segment, SyReNN's line walk), with
:func:`breakpoints_at` to read one sample's breakpoints at one depth. :func:`line_response` is the
causal verb: the response along the line with the network cut and linearised or symmetrised at a
hook point, or with chosen nonlinear ops frozen at their t = 0 state; :func:`even_odd` splits any
response into the add/subtract asymmetry E(t) and the odd effect O(t); :func:`kink_attribution`
and :func:`even_from_kinks` split E(t) exactly over the breakpoints (layer, channel, position);
:func:`readout_onset` measures where nonlinearity begins by slope drift and in the readout's
directions rather than by whole-layer norms.
"""

from hookdiff.analysis.attribution import even_from_kinks, kink_attribution
from hookdiff.analysis.breakpoints import breakpoints_at, line_breakpoints
from hookdiff.analysis.decompose import even_odd
from hookdiff.analysis.drift import readout_onset
from hookdiff.analysis.interventions import (
    VARIANTS,
    cut_scan,
    freezable,
    line_response,
    valid_cuts,
)
from hookdiff.analysis.linear import linear_radius, linear_response
from hookdiff.analysis.nonlinearity import nonlinearity
from hookdiff.analysis.patterns import pattern_flips

__all__ = [
    "VARIANTS",
    "cut_scan",
    "even_from_kinks",
    "even_odd",
    "kink_attribution",
    "freezable",
    "line_response",
    "valid_cuts",
    "breakpoints_at",
    "line_breakpoints",
    "linear_radius",
    "linear_response",
    "nonlinearity",
    "pattern_flips",
    "readout_onset",
]
