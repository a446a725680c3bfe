"""Procgen frames to model input: the one place the image layout changes.

Procgen returns observations as uint8 ``(N, 64, 64, 3)`` (batch, height, width, channel); the
policy takes float ``(N, 3, 64, 64)`` in [0, 1]. Doing the conversion here, checked, keeps every
caller (rollouts, vectors, training) from transposing by hand.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from hookdiff.errors import ShapeMismatchError

__all__ = ["obs_to_tensor"]


def obs_to_tensor(
    rgb: np.ndarray | Tensor,
    device: torch.device | str | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> Float[Tensor, "batch channel height width"]:
    """Procgen uint8 frames ``(N, 64, 64, 3)`` to float model input ``(N, 3, 64, 64)`` in [0, 1].

    Args:
        rgb: uint8 frames, numpy or torch, ``(N, 64, 64, 3)`` (``obs["rgb"]`` of a procgen env).
        device: Where to put the result (default: where ``rgb`` is; numpy goes to the CPU).
        memory_format: ``torch.contiguous_format`` (NCHW) or ``torch.channels_last`` (match a
            policy moved with ``policy.to(memory_format=torch.channels_last)``).

    Returns:
        float32 tensor ``(N, 3, 64, 64)``, values ``rgb / 255``.

    Raises:
        ShapeMismatchError: ``rgb`` is not ``(N, 64, 64, 3)``.
        TypeError: ``rgb`` is not uint8.

    Example:
        >>> obs_to_tensor(np.zeros((2, 64, 64, 3), dtype=np.uint8)).shape
        torch.Size([2, 3, 64, 64])
    """
    x = torch.from_numpy(np.asarray(rgb)) if not isinstance(rgb, Tensor) else rgb
    if x.dim() != 4 or tuple(x.shape[1:]) != (64, 64, 3):
        raise ShapeMismatchError(
            f"expected procgen frames shaped (N, 64, 64, 3) (batch, height, width, channel); got "
            f"{tuple(x.shape)}. A single frame needs a batch axis: rgb[None]."
        )
    if x.dtype != torch.uint8:
        raise TypeError(
            f"expected uint8 frames (0..255) from procgen; got dtype {x.dtype}. Float frames "
            f"already in [0, 1] only need the transpose: x.permute(0, 3, 1, 2)."
        )
    if device is not None:
        x = x.to(device)
    x = x.permute(0, 3, 1, 2).float() / 255.0  # "bhwc" -> "bchw"
    return x.contiguous(memory_format=memory_format)
