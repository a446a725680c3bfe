"""The even and odd parts of a response along t: where adding and subtracting a vector differ.

For any readout r(t) of the steered model (a logit, P(toward target), its log-odds), the even part
E(t) = r(t) + r(−t) − 2·r(0) is the add/subtract asymmetry (0 for anything linear in t) and the
odd part O(t) = r(t) − r(−t) the effect that flips sign with t.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from hookdiff.errors import ShapeMismatchError

__all__ = ["even_odd"]


def even_odd(response: xr.DataArray, dim: str = "t") -> xr.Dataset:
    """E(t) and O(t) for every t > 0 of ``response`` whose mirror −t is there too (and t = 0).

    Args:
        response: Any labelled response with a coordinate ``dim`` of coefficients.
        dim: The name of the coefficient dimension.

    Returns:
        A Dataset with ``even`` and ``odd`` over ``t_pos`` (the positive t), the other dims kept.

    Example:
        >>> r = xr.DataArray([4.0, 1.0, 0.0, 3.0, 4.0], dims="t", coords={"t": [-2, -1, 0, 1, 2]})
        >>> parts = even_odd(r)
        >>> parts["even"].values.tolist(), parts["odd"].values.tolist()
        ([4.0, 8.0], [2.0, 0.0])
    """
    t = np.asarray(response[dim].values, dtype=np.float64)
    if not (t == 0).any():
        raise ShapeMismatchError(f"even_odd needs t = 0 among the {dim!r} values; got {t.tolist()}")
    pos = [x for x in t if x > 0 and (t == -x).any()]
    if not pos:
        raise ShapeMismatchError(f"no t > 0 whose mirror −t is among {t.tolist()}")
    plus = response.sel({dim: pos}).rename({dim: "t_pos"})
    minus = response.sel({dim: [-x for x in pos]}).rename({dim: "t_pos"})
    minus = minus.assign_coords(t_pos=pos)
    zero = response.sel({dim: 0.0}, drop=True)
    even = (plus + minus - 2 * zero).assign_attrs(
        long_name="even part r(t) + r(-t) - 2 r(0)", description="add/subtract asymmetry"
    )
    odd = (plus - minus).assign_attrs(long_name="odd part r(t) - r(-t)")
    return xr.Dataset({"even": even, "odd": odd})
