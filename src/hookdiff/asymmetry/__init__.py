"""The asymmetry question for any model: does adding a steering vector act differently from
subtracting it, is that the vector's own, and where is it made?

One entry point, :func:`answer`, takes a :class:`SteeringTask` (a model, a hook, contrast pairs,
base inputs, a readout) and returns an :class:`Answer`: the measured dataset (E and O per input,
random directions matched in effect, the cut scan, knock-outs), the claims with intervals and
verdicts, and a report. ``hookdiff answer TASK.py`` runs it from the command line, where
``TASK.py`` defines ``task()`` returning the :class:`SteeringTask`.

Example:
    >>> import torch
    >>> from hookdiff.tiny import make_tiny_transformer
    >>> model = make_tiny_transformer()
    >>> tokens = torch.randint(0, 23, (6, 5), generator=torch.Generator().manual_seed(0))
    >>> task = SteeringTask(model, "blocks.0.hook_resid_post", tokens[:3], tokens[3:], tokens,
    ...                     readout=lambda logits: logits[:, -1, 1] - logits[:, -1, 2])
    >>> result = answer(task, random_draws=1, progress=False)
    >>> [c.kind for c in result.claims][:2]
    ['asymmetry', 'random_matched']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from hookdiff._config import option
from hookdiff._io import atomic_write, jsonable, write_json
from hookdiff.asymmetry.claims import claims_of
from hookdiff.asymmetry.measure import measure
from hookdiff.asymmetry.report import report_markdown, sentence
from hookdiff.asymmetry.task import SteeringTask, check_task, steering_vector
from hookdiff.claim import Claim
from hookdiff.errors import ConfigError

__all__ = ["Answer", "AnswerConfig", "SteeringTask", "answer", "load_task", "steering_vector"]


@dataclass(frozen=True)
class AnswerConfig:
    """What ``hookdiff answer`` runs: a task file, where the answer goes, the matching's size."""

    task: str = option(help="A Python file defining task() that returns a SteeringTask.")
    out: str = option("answer", "Folder for answer.nc, answer.json and report.md.")
    seed: int = option(0, "Seeds the random directions and every bootstrap.")
    random_draws: int = option(4, "Random directions per input matched to |O|.", min=1)


def load_task(path: str | Path) -> SteeringTask:
    """The :class:`SteeringTask` that ``task()`` in the Python file ``path`` returns.

    Raises:
        ConfigError: no such file, no ``task`` function in it, or it returns something else.
    """
    import importlib.util

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"task file not found: {path} (expected a .py file defining task())")
    spec = importlib.util.spec_from_file_location(f"hookdiff_task_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    make = getattr(module, "task", None)
    if not callable(make):
        raise ConfigError(
            f"{path} defines no task() function; expected one returning a SteeringTask"
        )
    task = make()
    if not isinstance(task, SteeringTask):
        raise ConfigError(
            f"{path}: task() returned a {type(task).__name__}; expected a SteeringTask"
        )
    return task


@dataclass(frozen=True)
class Answer:
    """The answer for one task: the measurements, the claims and the report.

    Attributes:
        dataset: every measurement over ``input`` (:mod:`hookdiff.asymmetry.measure`).
        claims: the claims with intervals and verdicts (:mod:`hookdiff.asymmetry.claims`).
    """

    dataset: xr.Dataset
    claims: tuple[Claim, ...]

    def report(self) -> str:
        """The report as Markdown: the verdict table, then a sentence per claim."""
        return report_markdown(self.claims, self.dataset)

    def to_dict(self) -> dict:
        """The claims as JSON-able data, each with its sentence."""
        claims = [c.to_dict(sentence(c, self.dataset)) for c in self.claims]
        return {"answer": claims, "attrs": jsonable(self.dataset.attrs)}

    def save(self, out_dir: str | Path) -> Path:
        """Write ``answer.nc``, ``answer.json`` and ``report.md`` into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_write(out / "answer.nc") as tmp:
            self.dataset.to_netcdf(tmp)
        write_json(self.to_dict(), out / "answer.json")
        with atomic_write(out / "report.md") as tmp:
            tmp.write_text(self.report(), encoding="utf-8")
        return out


def answer(
    task: SteeringTask,
    *,
    seed: int = 0,
    random_draws: int = 4,
    random_max_t: float = 16.0,
    random_steps: int = 12,
    progress: bool = True,
) -> Answer:
    """The asymmetry answer for ``task`` (see the module docstring).

    Args:
        task: the model, hook, contrast pairs, inputs and readout.
        seed: seeds the random directions and every bootstrap.
        random_draws: random directions per input matched to the vector's |O|.
        random_max_t: the largest coefficient a random direction may be scaled to.
        random_steps: bisection steps of the matching.
        progress: show a progress bar.

    Raises:
        ConfigError: the task lacks pairs and a vector, its pairs do not pair up, or it has fewer
            than 2 inputs.
        ShapeMismatchError: the readout does not give one number per row.
    """
    check_task(task)
    ds = measure(
        task,
        seed=seed,
        random_draws=random_draws,
        random_max_t=random_max_t,
        random_steps=random_steps,
        progress=progress,
    )
    return Answer(ds, tuple(claims_of(ds, seed)))
