"""Where the networks run: the one resolver of ``--device`` values, and a model's own device.

Every command and config takes a device as a string: ``"auto"`` (CUDA when torch sees a GPU,
else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. :func:`resolve_device` turns it into a
``torch.device`` in one place, so a device that is misspelled or not present fails the same way
everywhere: a :class:`~hookdiff.errors.ConfigError` that names what this machine has. The
environment variable ``HOOKDIFF_DEVICE`` says what ``"auto"`` means where it is set (e.g. ``cpu``
to keep a whole test suite or script on the CPU of a machine with a GPU).
:func:`model_device` is where a model's parameters live; library functions taking a model move
their inputs there, so results do not depend on where the caller built them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from hookdiff.errors import ConfigError, unknown_name_message

if TYPE_CHECKING:  # torch is imported on use: configs check device names without it
    import torch
    from torch import nn

__all__ = [
    "DEVICE_HELP",
    "DEVICE_VARIABLE",
    "available_devices",
    "check_device_name",
    "model_device",
    "resolve_device",
]

#: The help text of every config's ``device`` field.
DEVICE_HELP = (
    "Where the networks run: 'auto' (cuda when torch sees a GPU, else cpu; the environment "
    "variable HOOKDIFF_DEVICE overrides it), 'cpu', 'cuda' or 'cuda:N'. Results in float64 are "
    "the same on either."
)

#: The environment variable that says what ``"auto"`` resolves to, where it is set.
DEVICE_VARIABLE = "HOOKDIFF_DEVICE"

_KINDS = ("auto", "cpu", "cuda")


def available_devices() -> list[str]:
    """The devices this machine offers, as ``--device`` values (``cpu`` first, then each GPU).

    Example:
        >>> available_devices()[0]
        'cpu'
    """
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["cpu", *(["cuda"] if n else []), *(f"cuda:{i}" for i in range(n))]


def check_device_name(name: str) -> str:
    """``name`` if it is spelled as a device (``auto``, ``cpu``, ``cuda``, ``cuda:N``); whether
    this machine has it is :func:`resolve_device`'s question.

    Raises:
        ConfigError: any other string, with the closest valid names.
    """
    kind, _, index = str(name).partition(":")
    if kind in _KINDS and (not index or (kind == "cuda" and index.isdigit())):
        return name
    near = unknown_name_message("device", str(name), [*_KINDS, "cuda:0"])
    raise ConfigError(f"{near}; expected 'auto', 'cpu', 'cuda' or 'cuda:N' (N a GPU's index)")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The ``torch.device`` of a ``--device`` value; ``"auto"`` is cuda when present, else cpu
    (or ``$HOOKDIFF_DEVICE`` where that is set).

    Raises:
        ConfigError: the name is not a device, or names one this machine does not have (a GPU on
            a machine where torch sees none); the message lists the available devices.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    import torch

    name = str(device)
    check_device_name(name)
    if name == "auto":
        forced = os.environ.get(DEVICE_VARIABLE, "auto").strip() or "auto"
        if forced != "auto":
            try:
                return resolve_device(forced)
            except ConfigError as e:
                raise ConfigError(
                    f"--device auto reads {DEVICE_VARIABLE}={forced!r}: {e}"
                ) from None
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(name)
    if resolved.type == "cuda":
        have = available_devices()
        if not torch.cuda.is_available() or (
            resolved.index is not None and resolved.index >= torch.cuda.device_count()
        ):
            why = "torch sees no CUDA GPU" if len(have) == 1 else "no such GPU"
            cuda = torch.version.cuda or "none (a CPU-only build)"
            raise ConfigError(
                f"device {name!r} is not available: {why} (torch {torch.__version__}, CUDA "
                f"{cuda}); available: {', '.join(repr(d) for d in have)}. Use --device auto or cpu"
            )
    return resolved


def model_device(model: nn.Module) -> torch.device:
    """Where ``model``'s first parameter (or buffer) lives; cpu for a model that has neither.

    Example:
        >>> model_device(torch.nn.Linear(2, 2))
        device(type='cpu')
    """
    import torch

    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def ieee_float32() -> Iterator[None]:
    """float32 convolutions and matmuls in full IEEE precision on a GPU for the block, then the
    previous setting back.

    PyTorch runs float32 convolutions on NVIDIA GPUs in TF32 by default (10-bit mantissa, about
    1e-3 relative error); under this block a GPU's float32 results agree with the CPU's to float32
    rounding. No effect on the CPU or on float64.
    """
    import torch

    flags = [torch.backends.cudnn.conv, torch.backends.cuda.matmul]
    before = [f.fp32_precision for f in flags]
    try:
        for f in flags:
            f.fp32_precision = "ieee"
        yield
    finally:
        for f, value in zip(flags, before):
            f.fp32_precision = value
