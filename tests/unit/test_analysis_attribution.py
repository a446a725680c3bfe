"""Where a kink is: the (channel, row, col) of the unit that turns, on hand-built lines.

A ReLU after an identity: unit u turns where a_u + t·v_u = 0. With one unit moving (v = 0
elsewhere) the only kink is that unit's, so its recorded position must be the one set up.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hookdiff.analysis import kink_attribution
from hookdiff.analysis.attribution import _unravel


def test_unravel_gives_channel_row_col_and_minus_one_past_the_layers_axes():
    shape = (4, 3, 5)
    unit = np.ravel_multi_index((2, 1, 3), shape)
    channel, row, col = _unravel(np.array([unit, 7]), [shape, (10,)])
    assert (channel.tolist(), row.tolist(), col.tolist()) == ([2, 7], [1, -1], [3, -1])


def test_a_conv_kink_is_recorded_at_its_channel_row_and_column():
    net = nn.Sequential(nn.Identity(), nn.ReLU())
    a = torch.ones((1, 2, 3, 4), dtype=torch.float64)
    v = torch.zeros((2, 3, 4), dtype=torch.float64)
    v[1, 2, 0] = -2.0  # unit (channel 1, row 2, col 0) turns off at t = 0.5
    kinks = kink_attribution(net, a, "0", v, 1.0, weights=torch.ones(24, dtype=torch.float64))
    assert kinks.sizes["breakpoint"] == 1
    got = {k: int(kinks[k].values[0]) for k in ("channel", "row", "col")}
    assert got == {"channel": 1, "row": 2, "col": 0}
    assert float(kinks["t"].values[0]) == 0.5
    # slope of the summed output along +t jumps from −2 (unit on) to 0 (off): Δ = +2
    assert float(kinks["delta"].values[0]) == 2.0
