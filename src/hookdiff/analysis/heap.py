"""The CPU line walk's heap tuning (glibc ``mallopt``): explicit, process-wide, and switchable.

The line walk (:func:`hookdiff.analysis.walk.walk_line`) allocates and frees tensors of hundreds
of MB per layer. glibc serves each with a fresh ``mmap`` and returns it on ``free``, so the kernel
page-faults and zeroes every one again (about a third of the walk's time on the CPU). Inside
:func:`tune_heap`, glibc keeps freed memory in its heap instead (mmap off, trimming raised), and
its defaults are put back on exit; glibc then keeps a fixed mmap threshold for the rest of the
process. This changes the C library's settings for the whole process while it is on, so it is
never a side effect of importing anything: the walk enters :func:`tune_heap` while it runs on the
CPU (``walk_line(..., heap_tuning=True)``, the default, which is how the study and the CLI's
walks get it), and nothing else does.

The switch: set the environment variable ``HOOKDIFF_NO_HEAP_TUNING=1`` (any value but ``""`` or
``"0"``) to turn the tuning off everywhere, e.g. in a process that embeds hookdiff and tunes its
own allocator; or pass ``heap_tuning=False`` to one walk. Off a CPU, or with a C library other
than glibc (macOS, musl), :func:`tune_heap` does nothing. The results are the same either way;
only the walk's speed differs (about 1.4× on the CPU).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["NO_HEAP_TUNING_VARIABLE", "heap_tuning_enabled", "tune_heap"]

#: The environment variable that turns the heap tuning off (any value but ``""`` or ``"0"``).
NO_HEAP_TUNING_VARIABLE = "HOOKDIFF_NO_HEAP_TUNING"

#: glibc's mallopt parameters (malloc.h) and their defaults: :func:`tune_heap` keeps freed
#: blocks in the heap, then puts the defaults back.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_TRIM_DEFAULT, _MMAP_MAX_DEFAULT = 128 * 1024, 65536

_lock = threading.Lock()
_depth = 0  # nested tune_heap blocks now open: the outermost one sets and restores


def heap_tuning_enabled() -> bool:
    """Whether :func:`tune_heap` may tune the heap: ``False`` where ``HOOKDIFF_NO_HEAP_TUNING``
    is set (to anything but ``""`` or ``"0"``).

    Example:
        >>> import os
        >>> heap_tuning_enabled() == (os.environ.get("HOOKDIFF_NO_HEAP_TUNING", "") in ("", "0"))
        True
    """
    return os.environ.get(NO_HEAP_TUNING_VARIABLE, "") in ("", "0")


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc with ``mallopt`` (Linux), else ``None``."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - glibc only
        return libc if hasattr(libc, "mallopt") else None
    except (OSError, AttributeError):
        return None


@contextmanager
def tune_heap(device: torch.device | str = "cpu") -> Iterator[bool]:
    """On a CPU with glibc, keep freed memory in the heap inside the block (see module doc).

    Yields whether the heap is tuned: ``False`` off a CPU, with another C library, or where
    :data:`NO_HEAP_TUNING_VARIABLE` is set. Blocks may nest (the outermost one sets glibc's
    parameters and puts the defaults back on exit, also on an exception).

    Example:
        >>> with tune_heap("cpu") as tuned:
        ...     x = torch.zeros(1000).sum()
        >>> with tune_heap("meta") as tuned:
        ...     tuned
        False
    """
    global _depth
    libc = _glibc() if torch.device(device).type == "cpu" and heap_tuning_enabled() else None
    if libc is None:
        yield False
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            libc.mallopt(_M_MMAP_MAX, 0)
            libc.mallopt(_M_TRIM_THRESHOLD, 2**30)
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(_M_MMAP_MAX, _MMAP_MAX_DEFAULT)
                libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_DEFAULT)
