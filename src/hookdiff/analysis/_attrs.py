"""What every variable of the analysis Datasets means, as CF-style ``long_name`` / ``description``
(and ``units`` where they apply) attrs, so ``ds.residual.attrs`` explains itself.

One table for :func:`hookdiff.linear_response`, :func:`hookdiff.nonlinearity`,
:func:`hookdiff.line_breakpoints` and :func:`hookdiff.analysis.pattern_flips`; the module docstring
of :mod:`hookdiff.analysis.nonlinearity` is the longer form. Only attrs are added: names, dims and
values stay as they are.
"""

from __future__ import annotations

import xarray as xr

__all__ = ["ATTRS", "describe", "describe_variable"]

_DIFF = "diff_n(t) = f_n(a + t·v) − f_n(a)"

#: Per variable or coordinate name: ``long_name``, ``description`` and optionally ``units``.
ATTRS: dict[str, dict[str, str]] = {
    "diff_norm": {"long_name": "‖diff(t)‖", "description": f"Euclidean norm of {_DIFF}"},
    "linear_norm": {
        "long_name": "‖t·J·v‖",
        "description": "norm of the linear prediction L_n(t) = t·J_{f_n}(a)·v (one JVP)",
    },
    "residual_norm": {"long_name": "‖diff − L‖", "description": "norm of diff_n(t) − L_n(t)"},
    "residual": {
        "long_name": "relative residual",
        "description": "‖diff − L‖ / max(‖diff‖, ‖L‖), in [0, 2]: 0 where f_n is linear along v; "
        "NaN at t = 0 and where both norms are float noise",
        "units": "1",
    },
    "base_norm": {"long_name": "‖f_n(a)‖", "description": "norm of the unsteered activation"},
    "linear_radius_pos": {
        "long_name": "linear radius, t > 0",
        "description": "smallest t > 0 of the grid whose residual exceeds the threshold (attr); "
        "NaN if none",
    },
    "linear_radius_neg": {
        "long_name": "linear radius, t < 0",
        "description": "smallest |t| (t < 0) of the grid whose residual exceeds the threshold "
        "(attr), as a positive number; NaN if none",
    },
    "asymmetry": {
        "long_name": "add/subtract asymmetry",
        "description": "‖diff(t) + diff(−t)‖ / (‖diff(t)‖ + ‖diff(−t)‖), in [0, 1]: 0 for a map "
        "linear along v, 1 when adding and subtracting v move f_n the same way",
        "units": "1",
    },
    "flip_fraction": {
        "long_name": "pattern flips",
        "description": "fraction of units of the layer (relu sign, maxpool argmax) whose state "
        "differs between a and a + t·v",
        "units": "1",
    },
    "breakpoint_t": {
        "long_name": "breakpoint t",
        "description": "a t where a relu / maxpool of the segment changes state (exact line walk)",
    },
    "breakpoint_sample": {"long_name": "breakpoint sample", "description": "its sample index"},
    "breakpoint_layer": {"long_name": "breakpoint layer", "description": "the layer that changes"},
    "breakpoint_kink": {
        "long_name": "kink of the deepest depth",
        "description": "whether the slope of the deepest depth (attr kink_depth) changes there "
        "(False: the pattern change is masked downstream)",
    },
    "n_pieces": {
        "long_name": "linear pieces",
        "description": "number of linear pieces of f_n on [t_min, t_max] (breakpoints + 1); NaN "
        "for samples not walked",
    },
    "first_break_pos": {
        "long_name": "first breakpoint, t > 0",
        "description": "distance from 0 to the nearest breakpoint with t > 0; NaN if none",
    },
    "first_break_neg": {
        "long_name": "first breakpoint, t < 0",
        "description": "distance from 0 to the nearest breakpoint with t < 0; NaN if none",
    },
    "breakpoint_density": {
        "long_name": "breakpoint density",
        "description": "breakpoints of f_n per unit t in each t bin",
        "units": "per unit t",
    },
    "depends_on": {
        "long_name": "depends on layer",
        "description": "whether depth n is downstream of the relu / maxpool layer",
    },
    "sample": {"long_name": "sample", "description": "index of the input row of the activations"},
    "t": {"long_name": "steering coefficient t", "description": "the t of a + t·v"},
    "t_pos": {
        "long_name": "t > 0 with −t in the grid",
        "description": "the positive coefficients whose mirror −t is also in the grid",
    },
    "depth": {
        "long_name": "depth",
        "description": "f_n: a hook point after the intervention point, or a declared readout",
    },
    "layer": {"long_name": "relu / maxpool layer", "description": "a pattern layer of the segment"},
    "layer_kind": {"long_name": "layer kind", "description": "relu or maxpool"},
    "dep_layer": {"long_name": "relu / maxpool layer", "description": "a layer of the line walk"},
    "sign": {"long_name": "sign of t", "description": "+t or −t"},
    "direction": {"long_name": "direction", "description": "the direction of a step"},
    "t_bin": {"long_name": "t bin centre", "description": "centre of an equal-width bin of t"},
    "t_bin_lo": {"long_name": "t bin start", "description": "lower edge of the t bin"},
    "t_bin_hi": {"long_name": "t bin end", "description": "upper edge of the t bin"},
}

_BEHAVIOUR = {
    "diff_": ("diff of {x}", "raw diff(t) = {x}(a + t·v) − {x}(a) of the behaviour depth {x}"),
    "base_": ("{x} at t = 0", "the unsteered {x}, f(a)"),
    "signed_": ("{x} diff at +t and −t", "diff(t) of {x} at +t and at −t side by side (sign)"),
}


def describe_variable(name: str) -> dict[str, str]:
    """The attrs of one analysis variable or coordinate (empty for a name the table lacks).

    Example:
        >>> describe_variable("diff_logits")["long_name"]
        'diff of logits'
    """
    if name in ATTRS:
        return dict(ATTRS[name])
    for prefix, (long_name, description) in _BEHAVIOUR.items():
        if name.startswith(prefix):
            x = name[len(prefix) :]
            return {"long_name": long_name.format(x=x), "description": description.format(x=x)}
    return {}


def describe(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with the attrs of :data:`ATTRS` set on every variable and coordinate it has.

    Attrs already present (set by the caller) win.
    """
    for name, var in ds.variables.items():
        attrs = describe_variable(str(name))
        var.attrs.update({k: v for k, v in attrs.items() if k not in var.attrs})
    return ds
