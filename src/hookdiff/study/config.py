"""The study's configuration: one frozen dataclass, its defaults, the quick profile, JSON I/O.

Every knob of ``hookdiff study`` is a field of :class:`StudyConfig` with a docstring, so the CLI
options, the JSON defaults file (``hookdiff/study/default.json``) and the metadata written into
every output are generated from one place. Seeds are derived from the one ``seed`` field
(:meth:`StudyConfig.seeds`) and recorded with the results.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "PUBLISHED_TS",
    "VECTOR_SOURCES",
    "StudyConfig",
    "default_config",
    "quick_config",
]

#: The coefficients of the original batch runs (maze-facts.md).
PUBLISHED_TS: tuple[float, ...] = (-3.0, -2.0, -1.5, -1.0, -0.5, 0.5, 1.0, 1.5, 2.0, 3.0)

_STEERING_HOOK = "embedder.block2.res1.resadd_out"

#: Values of :attr:`StudyConfig.vectors_from`.
VECTOR_SOURCES: tuple[str, ...] = ("same_maze", "pairs")

#: Name of the JSON defaults file inside the ``hookdiff.study`` package.
DEFAULTS_FILE = "default.json"


@dataclass(frozen=True)
class StudyConfig:
    """Everything ``hookdiff study`` runs with (written into the dataset's attrs and run.json)."""

    out_dir: str = "runs/study"
    """Run folder: dataset, run.json, figures/, report.md and report.html go here."""
    seed: int = 0
    """Master seed: maze sets, vector mazes, rollouts and a random-init policy derive from it."""
    checkpoint: str | None = None
    """Policy checkpoint (original ``{"model_state_dict": ...}`` format); None: the shipped agent,
    or, when none is shipped, a seeded random-init policy (the report warns loudly)."""
    random_init_scale: int = 1
    """Scale of the random-init fallback policy (channels 16·scale, 32·scale, 32·scale)."""
    hook: str = _STEERING_HOOK
    """The steering layer: where t·v is added (the published one by default)."""
    later_candidates: tuple[str, ...] = (
        "embedder.block2.res1.resadd_out",
        "embedder.block2.res2.resadd_out",
        "embedder.block3.maxpool_out",
        "embedder.block3.res1.resadd_out",
        "embedder.block3.res2.resadd_out",
        "embedder.fc_out",
    )
    """Hook points from block2 onward whose vectors' steering effects are compared."""
    later_tolerance: float = 0.1
    """The later layer is the latest candidate whose effect is within this fraction of the best."""
    vectors_from: str = "same_maze"
    """Where each vector's maze pair comes from. ``"same_maze"`` (the published batch protocol):
    every studied maze is steered by its own cheese / top-right vector (one pair, mouse at the
    start); ``"pairs"``: one vector, the mean over ``vector_pairs`` seeded pairs of
    ``vector_spec``, steers every maze (transfer across mazes)."""
    vector_spec: str = "vanilla-hard"
    """Maze spec (``envs/``) the vector pairs are drawn from (``vectors_from="pairs"``)."""
    vector_pairs: int = 1
    """Maze pairs averaged into each vector (``vectors_from="pairs"``)."""
    maze_spec: str = "eval-decision-square"
    """Maze spec of the study's mazes (they must have a decision square)."""
    n_mazes: int = 32
    """Mazes the nonlinearity and the decision-square probabilities are measured on."""
    ts: tuple[float, ...] = (
        -3.0, -2.0, -1.5, -1.0, -0.75, -0.5, -0.25, -0.1,
        0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0,
    )  # fmt: skip
    """Coefficients t (symmetric, dense near 0, including the published ones and 0)."""
    threshold: float = 0.1
    """Relative residual above which diff(t) counts as nonlinear (the linear radius)."""
    breakpoints: bool = True
    """Also walk the line for the exact breakpoints (piecewise-linear agents only)."""
    max_rows: int = 512
    """At most this many rows (coefficients × samples) per forward of the analysis."""
    breakpoint_mazes: int = 8
    """Mazes (the first of the study's) whose lines are walked for the exact breakpoints. On a
    trained agent a line has thousands of pieces and the walk dominates the run time; the rest of
    the analysis covers all ``n_mazes``."""
    max_pieces: int = 512
    """Linear pieces the exact line walk carries together (its memory budget; it runs in
    float64, where rounding cannot hide or invent breakpoints)."""
    rollout_mazes: int = 12
    """Mazes (the first of the study's, at most ``n_mazes``) rolled out at every rollout coefficient
    and vector."""
    rollout_ts: tuple[float, ...] = (-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0)
    """Coefficients of the steered rollouts (a subset of ``ts``; 0 is the unsteered baseline)."""
    rollout_max_steps: int = 120
    """Step limit of each rollout (an episode not ending by then is a timeout)."""
    field_mazes: int = 2
    """Example mazes drawn as vector fields (the first of the study's, at most ``n_mazes``)."""
    field_ts: tuple[float, ...] = (-1.0, 0.0, 1.0)
    """Coefficients of the vector-field figures."""
    behaviour_gap: float = 0.05
    """|ΔP(+t)| and |ΔP(−t)| differing by more than this counts as +t and −t diverging."""
    threads: int | None = None
    """torch threads (None: torch's default)."""

    # ------------------------------------------------------------------ derived

    def seeds(self) -> dict[str, int]:
        """The seeds of every random part, derived from :attr:`seed` (recorded with results)."""
        s = int(self.seed)
        return {
            "mazes": s,
            "vector_mazes": s + 1_000_000,
            "rollout": s + 2,
            "policy_init": s + 3,
            "analysis": s,
        }

    def validate(self) -> StudyConfig:
        """Check values; return ``self``.

        Raises:
            ValueError: a value is out of range; the message names the field and what is expected.
        """
        checks: list[tuple[bool, str, str]] = [
            (self.n_mazes >= 1, "n_mazes", "an int >= 1"),
            (self.vectors_from in VECTOR_SOURCES, "vectors_from", f"one of {VECTOR_SOURCES}"),
            (self.vector_pairs >= 1, "vector_pairs", "an int >= 1"),
            (self.rollout_mazes >= 0, "rollout_mazes", "an int >= 0"),
            (self.field_mazes >= 0, "field_mazes", "an int >= 0"),
            (self.rollout_max_steps >= 1, "rollout_max_steps", "an int >= 1"),
            (len(self.ts) >= 2, "ts", "at least two coefficients"),
            (len(set(self.ts)) == len(self.ts), "ts", "distinct coefficients"),
            (set(self.rollout_ts) <= set(self.ts), "rollout_ts", f"a subset of ts={self.ts}"),
            (set(self.field_ts) <= set(self.ts), "field_ts", f"a subset of ts={self.ts}"),
            (0 < self.threshold, "threshold", "a float > 0"),
            (0 <= self.later_tolerance < 1, "later_tolerance", "a fraction in [0, 1)"),
            (len(self.later_candidates) >= 1, "later_candidates", "at least one hook name"),
            (self.max_rows >= 1, "max_rows", "an int >= 1"),
            (self.max_pieces >= 1, "max_pieces", "an int >= 1"),
            (self.breakpoint_mazes >= 1, "breakpoint_mazes", "an int >= 1"),
            (self.random_init_scale >= 1, "random_init_scale", "an int >= 1"),
            (self.threads is None or self.threads >= 1, "threads", "None or an int >= 1"),
        ]
        for ok, name, expected in checks:
            if not ok:
                raise ValueError(
                    f"study config: {name} = {getattr(self, name)!r}, expected {expected}"
                )
        return self

    # ------------------------------------------------------------------ (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values of every field (tuples become lists)."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    def to_json(self) -> str:
        """The config as a JSON object (sorted keys; written into every output)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any], base: StudyConfig | None = None) -> StudyConfig:
        """A config from a (partial) dict of field values over ``base`` (default: the defaults).

        Raises:
            ValueError: unknown keys (the message lists the known ones) or bad values.
        """
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"study config has unknown keys {unknown}; known: {sorted(known)}")
        hints = typing.get_type_hints(cls)
        values = {k: _coerce(k, v, hints[k]) for k, v in d.items()}
        return dataclasses.replace(base or cls(), **values).validate()

    @classmethod
    def from_json(
        cls, path: str | os.PathLike[str], base: StudyConfig | None = None
    ) -> StudyConfig:
        """A config from a JSON file holding some or all fields (the rest from ``base``).

        Raises:
            ValueError: the file is not a JSON object, or holds unknown keys or bad values.
        """
        text = Path(path).read_text()
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"study config {path} is not valid JSON: {e}") from e
        if not isinstance(d, dict):
            raise ValueError(f"study config {path} must hold a JSON object of field values")
        return cls.from_dict(d, base)


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """A JSON value as the field's type (lists to tuples, ints to floats), or a clear error."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    try:
        if origin is tuple:
            if isinstance(value, str):
                value = [v for v in value.split(",") if v.strip()]
            return tuple(args[0](v.strip() if isinstance(v, str) else v) for v in value)
        if hint is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return value.lower() in ("true", "1")
            raise ValueError("not a boolean")
        if hint is int and isinstance(value, float) and not value.is_integer():
            raise ValueError("not an integer")
        return hint(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"study config: {name} = {value!r} is not a valid {hint}") from e


def default_config() -> StudyConfig:
    """The defaults: the dataclass's, overridden by ``hookdiff/study/default.json`` if present.

    Example:
        >>> default_config().hook
        'embedder.block2.res1.resadd_out'
    """
    res = resources.files("hookdiff.study") / DEFAULTS_FILE
    if res.is_file():
        d = json.loads(res.read_text())
        return StudyConfig.from_dict(d)
    return StudyConfig().validate()


def quick_config(base: StudyConfig | None = None) -> StudyConfig:
    """The ``--quick`` profile over ``base``: few mazes, few t, short rollouts (under a minute).

    Example:
        >>> quick_config().n_mazes
        4
    """
    base = base or default_config()
    return dataclasses.replace(
        base,
        n_mazes=4,
        ts=(-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0),
        later_candidates=(_STEERING_HOOK, "embedder.block3.res2.resadd_out"),
        rollout_mazes=2,
        rollout_ts=(-1.0, 0.0, 1.0),
        rollout_max_steps=12,
        field_mazes=1,
        field_ts=(-1.0, 0.0, 1.0),
        max_rows=256,
        breakpoint_mazes=1,
    ).validate()
