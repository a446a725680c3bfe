"""The whole suite runs on the CPU unless a test names a GPU: ``--device auto`` (every config's
default) reads ``HOOKDIFF_DEVICE``. Run ``HOOKDIFF_DEVICE=cuda pytest`` to run it on a GPU."""

from __future__ import annotations

import os

os.environ.setdefault("HOOKDIFF_DEVICE", "cpu")
