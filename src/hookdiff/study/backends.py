"""Where the study's per-maze work runs: one map over maze blocks, in this process or on Ray.

The per-maze steps of the study run block by block (:func:`maze_blocks`): each block is the
same step on mazes ``start:stop`` (:func:`block_config` narrows the config's "first K mazes"
limits to the block) and returns a partial Dataset; the driver joins the blocks along ``maze``.
An executor runs the list of block tasks: :class:`LocalExecutor` one after another in this
process, :class:`RayExecutor` as Ray tasks (the policy, mazes and vectors put into the object
store once, a task retried by Ray when its worker dies). Both run the same blocks with the same
seeds, so both give identical results — with the same torch thread count (``config.threads``;
Ray tasks default to 1), since torch's float rounding depends on it, and on the same kind of
device. Ray tasks receive the shared values on the host and move them to the device
``config.device`` names on their worker; when it names a GPU on the driver, each task asks Ray
for ``1 / ray_workers`` of one, so ``ray_workers`` tasks share a GPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import torch

from hookdiff._device import ieee_float32, resolve_device
from hookdiff.errors import MissingExtraError

if TYPE_CHECKING:
    from hookdiff.study.config import StudyConfig

__all__ = [
    "FIRST_MAZES",
    "Executor",
    "LocalExecutor",
    "Movable",
    "RayExecutor",
    "block_config",
    "executor",
    "import_ray",
    "maze_blocks",
]

#: Times Ray reruns a task whose worker died.
MAX_RETRIES = 3


def maze_blocks(n: int, size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive blocks of at most ``size`` of ``n`` mazes.

    Example:
        >>> maze_blocks(5, 2)
        [(0, 2), (2, 4), (4, 5)]
    """
    return [(lo, min(n, lo + size)) for lo in range(0, n, size)]


#: Config fields that cover the study's first K mazes: a block gets its share of them.
FIRST_MAZES = ("breakpoint_mazes", "rollout_mazes", "field_mazes", "localise_rollout_mazes")


def block_config(config: StudyConfig, start: int, stop: int) -> StudyConfig:
    """``config`` for mazes ``start:stop``: each limit of :data:`FIRST_MAZES` (the first K mazes
    walked, rolled out, rolled out at the cuts, drawn as fields) narrowed to this block's share
    of those mazes; a block with none of the walked mazes walks nothing.

    Example:
        >>> from hookdiff.study import quick_config  # 1 maze walked, 2 rolled out, 1 field
        >>> c = block_config(quick_config(), 1, 3)
        >>> c.n_mazes, c.breakpoints, c.rollout_mazes, c.field_mazes, c.localise_rollout_mazes
        (2, False, 1, 0, 1)
    """
    share = {f: max(0, min(getattr(config, f), stop) - start) for f in FIRST_MAZES}
    walked = share["breakpoint_mazes"]
    share["breakpoint_mazes"] = max(walked, 1)  # the field's minimum; the walk is off below
    return dataclasses.replace(
        config, n_mazes=stop - start, breakpoints=config.breakpoints and walked > 0, **share
    )


class Movable(Protocol):
    """A value a task receives: it can put its tensors on a device."""

    def to(self, device: str) -> Movable:
        """A copy with the tensors on ``device``."""


class Executor(Protocol):
    """Runs a list of tasks ``fn(*args)``; returns their results in the order given."""

    def share(self, value: Movable) -> Any:
        """``value`` as tasks should receive it (put into Ray's object store once)."""

    def map(
        self,
        fn: Callable[..., Any],
        tasks: Sequence[tuple[Any, ...]],
        done: Callable[[int, Any], None],
    ) -> list[Any]:
        """``[fn(*args) for args in tasks]``; ``done(i, result)`` as task i finishes (to show
        progress and keep the result)."""


class LocalExecutor:
    """Runs every task in this process, one after another."""

    def share(self, value: Movable) -> Any:
        """``value`` itself."""
        return value

    def map(
        self,
        fn: Callable[..., Any],
        tasks: Sequence[tuple[Any, ...]],
        done: Callable[[int, Any], None],
    ) -> list[Any]:
        """``[fn(*args) for args in tasks]`` in order."""
        out = []
        for i, args in enumerate(tasks):
            out.append(fn(*args))
            done(i, out[-1])
        return out


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        MissingExtraError: Ray is not installed (the message names the extra).
    """
    try:
        import ray
    except ImportError as e:
        raise MissingExtraError(
            "the Ray backend needs Ray, which is not installed: pip install 'hookdiff[ray]'"
        ) from e
    return ray


def _ray_task(threads: int, fn: Callable[..., Any], *args: Any) -> Any:
    """One task on a Ray worker: torch limited to ``threads``, then ``fn(*args)``."""
    torch.set_num_threads(threads)
    with ieee_float32():  # as on the driver: a GPU's float32 in full precision
        return fn(*args)


class RayExecutor:
    """Runs tasks on Ray: at most ``workers`` at once, each on ``threads`` CPUs and ``gpus``
    GPUs (a fraction shares one), retried when the worker dies; results fetched as they finish
    (:func:`ray.wait`)."""

    def __init__(self, workers: int | None = None, threads: int = 1, gpus: float = 0.0):
        self.ray = import_ray()
        self.workers = workers
        self.threads = threads
        remote = self.ray.remote(_ray_task)
        self.remote = remote.options(num_cpus=threads, num_gpus=gpus, max_retries=MAX_RETRIES)

    def share(self, value: Movable) -> Any:
        """``value`` with its tensors on the host, put into the object store (tasks receive the
        object, fetched once a node, and move it to their own device)."""
        return self.ray.put(value.to("cpu"))

    def map(
        self,
        fn: Callable[..., Any],
        tasks: Sequence[tuple[Any, ...]],
        done: Callable[[int, Any], None],
    ) -> list[Any]:
        """The tasks' results in order; unfinished tasks are cancelled when the driver stops."""
        limit = self.workers or len(tasks)
        todo = list(enumerate(tasks))[::-1]
        pending: dict[Any, int] = {}
        out: list[Any] = [None] * len(tasks)
        try:
            while todo or pending:
                while todo and len(pending) < limit:
                    i, args = todo.pop()
                    pending[self.remote.remote(self.threads, fn, *args)] = i
                finished, _ = self.ray.wait(list(pending), num_returns=1)
                for ref in finished:
                    i = pending.pop(ref)
                    out[i] = self.ray.get(ref)
                    done(i, out[i])
        finally:
            for ref in pending:
                self.ray.cancel(ref, force=True)
        return out


@contextlib.contextmanager
def executor(config: StudyConfig) -> Iterator[Executor]:
    """The executor of ``config.backend``; a Ray instance it starts is shut down at the end.

    Ray: joins ``config.ray_address`` (or the instance already initialised in this process), else
    starts one on this machine with ``config.ray_workers`` CPUs.
    """
    if config.backend == "local":
        yield LocalExecutor()
        return
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        cpus = config.ray_workers if config.ray_address is None else None
        ray.init(
            address=config.ray_address,
            num_cpus=cpus,
            include_dashboard=False,
            log_to_driver=False,
        )
    on_gpu = resolve_device(config.device).type == "cuda"
    gpus = 1.0 / (config.ray_workers or 1) if on_gpu else 0.0
    try:
        yield RayExecutor(config.ray_workers, config.threads or 1, gpus)
    finally:
        if started:
            ray.shutdown()
