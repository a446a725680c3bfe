"""The study's configuration: one frozen dataclass, its defaults, the quick profile, JSON I/O.

Every knob of ``hookdiff study`` is a field of :class:`StudyConfig`, declared once with its
default and help text (:func:`hookdiff._config.option`), so the CLI options and the metadata
written into every output come from one place. Seeds are derived from the one ``seed`` field
(:meth:`StudyConfig.seeds`) and recorded with the results. :class:`PlotConfig` is
``hookdiff plot``'s.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from hookdiff import _config
from hookdiff._config import option
from hookdiff._device import DEVICE_HELP, check_device_name
from hookdiff.errors import ConfigError, UnknownMazeSpecError, unknown_name_message

if TYPE_CHECKING:
    from hookdiff.study.targets import VectorSpec

__all__ = [
    "BACKENDS",
    "PUBLISHED_TS",
    "VECTOR_SOURCES",
    "PlotConfig",
    "closest_to_one",
    "StudyConfig",
    "default_config",
    "full_config",
    "quick_config",
]

#: The coefficients of the original batch runs (maze-facts.md).
PUBLISHED_TS: tuple[float, ...] = (-3.0, -2.0, -1.5, -1.0, -0.5, 0.5, 1.0, 1.5, 2.0, 3.0)

_STEERING_HOOK = "embedder.block2.res1.resadd_out"

#: Procgen level seeds lie in [0, _MAX_LEVEL).
_MAX_LEVEL = 2**31 - 1

#: Values of :attr:`StudyConfig.vectors_from`.
VECTOR_SOURCES: tuple[str, ...] = ("same_maze", "pairs")
#: Values of :attr:`StudyConfig.backend`.
BACKENDS: tuple[str, ...] = ("local", "ray")


def closest_to_one(ts: Iterable[float]) -> float:
    """The t of ``ts`` closest to 1 (the published |t|), the lower of two equally close.

    The one rule for "the localisation's t closest to 1": the cut rollouts' t and every reader of
    the localisation's ``t_loc`` (sorted ascending) must agree, whatever order ``ts`` come in.

    Example:
        >>> closest_to_one((1.5, 0.5, 2.0))
        0.5
    """
    return float(min(sorted(float(t) for t in ts), key=lambda t: abs(t - 1.0)))


#: The positive half of the default dense sweep: dense near 1 (the paired state), out to 4.
_SWEEP_POSITIVE = (0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0)


@dataclass(frozen=True)
class StudyConfig:
    """Everything ``hookdiff study`` runs with (written into the dataset's attrs and run.json)."""

    out_dir: str = option(
        "runs/study",
        "Run folder: dataset, run.json, figures/, report.md and report.html go here.",
        flag="--out",
    )
    resume: bool = option(
        False,
        "Continue the stopped study in the run folder: reuse the per-maze blocks it finished "
        "(kept in OUT/blocks/ until a study completes) and compute only the rest; refused when "
        "they came from other settings, checkpoints or package versions.",
    )
    seed: int = option(
        0,
        "Master seed: maze sets, vector mazes, rollouts and a random-init policy derive from it.",
    )
    checkpoint: str | None = option(
        None,
        "Policy checkpoint (original {'model_state_dict': ...} format) or a shipped agent's name "
        "(hookdiff.agent.available_agents(): shipped, control, replicate); none: the shipped "
        "agent, or, when none is shipped, a seeded random-init policy (the report warns loudly). "
        "Several agents side by side: comma-separated paths or names (shipped,control,replicate), "
        "or a folder (its *.pt files); the dataset then gains an 'agent' dimension and the "
        "report compares them.",
    )
    random_init_scale: int = option(
        1,
        "Scale of the random-init fallback policy (channels 16·scale, 32·scale, 32·scale).",
        min=1,
    )
    hook: str = option(
        _STEERING_HOOK, "The steering layer: where t·v is added (the published one by default)."
    )
    later_candidates: tuple[str, ...] = option(
        (
            "embedder.block2.res1.resadd_out",
            "embedder.block2.res2.resadd_out",
            "embedder.block3.maxpool_out",
            "embedder.block3.res1.resadd_out",
            "embedder.block3.res2.resadd_out",
            "embedder.fc_out",
        ),
        "Hook points from block2 onward whose vectors' steering effects are compared.",
    )
    later_tolerance: float = option(
        0.1,
        "The later layer is the latest candidate whose effect is within this fraction of the best.",
    )
    vectors_from: str = option(
        "same_maze",
        "Where each vector's maze pair comes from. 'same_maze' (the published batch protocol): "
        "every studied maze is steered by its own cheese / top-right vector (one pair, mouse at "
        "the start); 'pairs': one vector, the mean over vector_pairs seeded pairs of "
        "vector_spec, steers every maze (transfer across mazes).",
        choices=VECTOR_SOURCES,
    )
    vector_spec: str = option(
        "vanilla-hard", "Maze spec (envs/) the vector pairs are drawn from (vectors_from=pairs)."
    )
    vector_pairs: int = option(
        1, "Maze pairs averaged into each vector (vectors_from=pairs).", min=1
    )
    vectors: tuple[str, ...] = option(
        ("cheese", "top_right"),
        "The steering vectors studied (the dataset's 'vector' coordinate, in the built-in order): "
        "'cheese' and 'top_right' (the published two), 'cheese_location' (act(cheese at its own "
        "cell) - act(cheese moved to the reachable cell farthest from it); not published), or "
        "'all' for every built-in vector.",
        check=lambda names: _check_vectors(names),
    )
    maze_spec: str = option(
        "eval-decision-square", "Maze spec of the study's mazes (they must have a decision square)."
    )
    n_mazes: int = option(
        104,
        "Mazes the nonlinearity and the decision-square probabilities are measured on (the "
        "published batch runs used 104).",
        min=1,
    )
    levels: str | None = option(
        None,
        "Study these procgen levels instead of maze_spec's: hard-mode level seeds, comma-separated "
        "('40500,40501') or '@FILE' with one seed per line. Levels without a decision square (or, "
        "with vectors_from='same_maze', without the cheese off the start and room for the "
        "top-right corridor) are reported and skipped; all others are studied (n_mazes does not "
        "apply).",
    )
    ts: tuple[float, ...] = option(
        (
            -3.0,
            -2.0,
            -1.5,
            -1.0,
            -0.75,
            -0.5,
            -0.25,
            -0.1,
            0.0,
            0.1,
            0.25,
            0.5,
            0.75,
            1.0,
            1.5,
            2.0,
            3.0,
        ),
        "Coefficients t (symmetric, dense near 0, including the published ones and 0).",
    )
    threshold: float = option(
        0.1, "Relative residual above which diff(t) counts as nonlinear (the linear radius)."
    )
    breakpoints: bool = option(
        True, "Also walk the line for the exact breakpoints (piecewise-linear agents only)."
    )
    max_rows: int = option(
        512, "At most this many rows (coefficients × samples) per forward of the analysis.", min=1
    )
    breakpoint_mazes: int = option(
        8,
        "Mazes (the first of the study's) whose lines are walked for the exact breakpoints and "
        "the kink attribution of the asymmetry (--full: 104, every maze). On a trained agent a "
        "line has thousands of pieces and the walks dominate the run time (each walked maze "
        "costs about 10 s of one core on the shipped agent, 50 s at scale 4); the rest of the "
        "analysis covers all n_mazes.",
        min=1,
    )
    max_pieces: int = option(
        512,
        "Linear pieces the exact line walk carries together (its memory budget; it runs in "
        "float64, where rounding cannot hide or invent breakpoints).",
        min=1,
    )
    rollout_mazes: int = option(
        32,
        "Mazes (the first of the study's, at most n_mazes) rolled out at every rollout "
        "coefficient and vector (--full: 104).",
        min=0,
    )
    rollout_ts: tuple[float, ...] = option(
        (-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0),
        "Coefficients of the steered rollouts (a subset of ts; 0 is the unsteered baseline).",
    )
    rollout_max_steps: int = option(
        120, "Step limit of each rollout (an episode not ending by then is a timeout).", min=1
    )
    episodes_per_maze: int = option(
        4,
        "Episodes rolled out per maze in every rollout condition (exact and network cut), each "
        "(maze, episode) with its own sampling seed, the same in every condition (t = −t, 0, +t, "
        "every vector and cut: common random numbers), so reach rates are paired per maze. The "
        "rollouts' cost grows in proportion (8 would take the default profile to about 10 min "
        "on 2 cores).",
        min=1,
    )
    field_mazes: int = option(
        2,
        "Example mazes drawn as vector fields (the first of the study's, at most n_mazes).",
        min=0,
    )
    field_ts: tuple[float, ...] = option(
        (-1.0, 0.0, 1.0), "Coefficients of the vector-field figures."
    )
    localise_ts: tuple[float, ...] = option(
        (0.5, 1.0, 2.0),
        "Positive coefficients t of the localisation scan: the even part r(t) + r(-t) - 2 r(0) of "
        "the target readout under cuts, frozen layers and controls, from the lines at ±t and 0.",
    )
    sweep_ts: tuple[float, ...] = option(
        tuple(sorted({k * x for k in (-1, 1) for x in _SWEEP_POSITIVE} | {0.0})),
        "Coefficients of the dense sweeps of the target log-odds along each maze's line (its own "
        "and the leave-one-out vector): where does the response stop, against the paired state?",
    )
    localise_rollout_mazes: int = option(
        16,
        "Mazes (the first of the rollout mazes) rolled out at ±t (t: the localise_ts closest to 1) "
        "with the network cut at the cuts that matter: where the scan says the asymmetry is "
        "created, the cut before it, and the logits (--full: 104).",
        min=0,
    )
    localise_rollout_variants: tuple[str, ...] = option(
        ("symmetrize",),
        "Interventions of those rollouts at each chosen cut: 'symmetrize' and/or 'linearize'.",
    )
    equivalence_margin: float = option(
        0.2,
        "Equivalence margin of the cut scan, as a fraction of the exact network's |E| at the "
        "same readout and t: a cut's E is 'equivalent to 0' where the two one-sided tests reject "
        "|E| >= margin (Holm-adjusted over the vector's cuts x variants x readouts x t, p < 0.05). "
        "The creation cut is the first cut from which on every cut's E is equivalent to 0.",
        min=0.0,
    )
    later_max_t: float = option(
        8.0,
        "Largest |t| searched for each later candidate's matched coefficient (the t whose mean "
        "|effect| equals the steering layer's at the published t); beyond it the layer no longer "
        "steers.",
        min=0.0,
    )
    later_match_steps: int = option(
        10, "Bisection steps of the matched coefficient (precision later_max_t / 2**steps).", min=1
    )
    random_matched_draws: int = option(
        4,
        "Random directions (seeded draws, the vector's norm per position) of the control matched "
        "in effect: per maze, t is bisected so that |odd part| of the target log-odds equals the "
        "vector's at the localisation's t closest to 1; 0: no such control.",
        min=0,
    )
    random_matched_max_t: float = option(
        16.0,
        "Largest |t| searched for the matched random direction (beyond it: not reached, NaN).",
        min=0.0,
    )
    random_matched_steps: int = option(
        12,
        "Bisection steps of the random direction's matched t (precision "
        "random_matched_max_t / 16 / 2**steps).",
        min=1,
    )
    threads: int | None = option(
        None,
        "torch threads (none: torch's default; 1 per task on the Ray backend). torch's float "
        "results depend on it: give the same value to compare backends bit for bit.",
        min=1,
    )
    device: str = option("auto", DEVICE_HELP, check=check_device_name)
    maze_block: int = option(
        32,
        "Mazes per block: the per-maze steps run block by block, one task each on the Ray "
        "backend (the same blocks on every backend, so the results are identical). Other block "
        "sizes change the rollouts past the first block (each block draws its own seeded "
        "stream) and the rest by float rounding only. On a cluster, smaller blocks spread the "
        "work wider.",
        min=1,
    )
    backend: str = option(
        "local",
        "Where the per-maze blocks run: 'local' (this process) or 'ray' (tasks on a Ray cluster; "
        "pip install 'hookdiff[ray]').",
        choices=BACKENDS,
    )
    ray_address: str | None = option(
        None,
        "Ray cluster to join ('auto': the one `ray start --head` runs on this machine, or "
        "'ray://HOST:10001'); none: start a Ray instance on this machine for the run.",
    )
    ray_workers: int | None = option(
        None,
        "Ray tasks running at once (none: as many as the cluster's CPUs allow); also the CPUs a "
        "Ray instance started for the run gets.",
        min=1,
    )
    confirm: str | None = option(
        None,
        "A discovery run's RUN/hypotheses.json: rerun its analysis, every choice fixed by it, on "
        "other mazes (--levels, --seed, --maze-spec, --n-mazes; none may be the discovery's) and "
        "test each hypothesis (run.json['confirmation']). Only where and how to compute may "
        "be set besides.",
    )

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
            "localise": s + 4,
            "untrained": s + 5,
            "random_matched": s + 6,
        }

    def vector_specs(self) -> tuple[VectorSpec, ...]:
        """The specs of the studied vectors (:attr:`vectors`), in the built-in order."""
        from hookdiff.study.targets import selected_specs

        return selected_specs(self.vectors)

    def checkpoints(self) -> tuple[str, ...]:
        """The checkpoint paths of :attr:`checkpoint` (a folder: its ``*.pt`` files, sorted; a
        shipped agent's name: its checkpoint); empty when none is given (the shipped agent).

        Raises:
            ConfigError: a folder holds no ``*.pt`` file; a bare name is no shipped agent's.
        """
        from hookdiff.agent.family import resolve_checkpoint

        if self.checkpoint is None:
            return ()
        paths: list[str] = []
        for item in (x.strip() for x in self.checkpoint.split(",") if x.strip()):
            if Path(item).is_dir():
                found = sorted(str(p) for p in Path(item).glob("*.pt"))
                if not found:
                    self._fail("checkpoint", f"the folder {item} holds no *.pt checkpoint")
                paths.extend(found)
            else:
                try:
                    paths.append(resolve_checkpoint(item))
                except ConfigError as err:
                    self._fail("checkpoint", str(err))
        return tuple(dict.fromkeys(paths))

    def validate(self) -> StudyConfig:
        """Check values, hook names and maze specs; return ``self``.

        Raises:
            ConfigError: a value is out of range or names an unknown hook point or maze spec; the
                message names the field and what is expected (a ``ValueError``).
        """
        _config.check(self)
        checks: list[tuple[bool, str, str]] = [
            (len(self.ts) >= 2, "ts", "at least two coefficients"),
            (len(set(self.ts)) == len(self.ts), "ts", "distinct coefficients"),
            (len(self.localise_ts) >= 1, "localise_ts", "at least one coefficient"),
            (0.0 in self.sweep_ts and len(self.sweep_ts) >= 3, "sweep_ts", "0 and two more t"),
            (min(self.localise_ts, default=1) > 0, "localise_ts", "coefficients t > 0"),
            (len(set(self.localise_ts)) == len(self.localise_ts), "localise_ts", "distinct t"),
            (set(self.rollout_ts) <= set(self.ts), "rollout_ts", f"a subset of ts={self.ts}"),
            (set(self.field_ts) <= set(self.ts), "field_ts", f"a subset of ts={self.ts}"),
            (0 < self.threshold, "threshold", "a float > 0"),
            (0 <= self.later_tolerance < 1, "later_tolerance", "a fraction in [0, 1)"),
            (len(self.later_candidates) >= 1, "later_candidates", "at least one hook name"),
            (
                set(self.localise_rollout_variants) <= {"linearize", "symmetrize"},
                "localise_rollout_variants",
                "interventions among 'linearize', 'symmetrize'",
            ),
        ]
        for ok, name, expected in checks:
            if not ok:
                self._fail(name, f"expected {expected}")
        self._check_names()
        if self.levels is not None:
            self.level_seeds()
        return self

    def level_seeds(self) -> tuple[int, ...] | None:
        """The level seeds of :attr:`levels` (read from its file for ``@FILE``), or None.

        Raises:
            ConfigError: the file cannot be read, an entry is not an integer in procgen's range
                [0, 2**31 - 1), or no seed is given.
        """
        if self.levels is None:
            return None
        text = self.levels.strip()
        if text.startswith("@"):
            try:
                text = Path(text[1:]).read_text()
            except OSError as e:
                self._fail("levels", f"cannot read the level file: {e.strerror}")
        items = [x.strip() for x in text.replace("\n", ",").split(",") if x.strip()]
        seeds = []
        for item in items:
            if not (item.isascii() and item.isdigit()) or int(item) >= _MAX_LEVEL:
                self._fail("levels", f"{item!r} is not a level seed (an integer in [0, 2**31 - 1))")
            seeds.append(int(item))
        if not seeds:
            self._fail("levels", "expected at least one level seed")
        return tuple(seeds)

    def _check_names(self) -> None:
        """Every hook is a hook point of the agent; the maze specs exist, the study's has decision
        squares."""
        from hookdiff.maze.sets import load_spec

        valid = _agent_hook_names()
        for name in ("hook", "later_candidates"):
            value = getattr(self, name)
            for hook in value if isinstance(value, tuple) else (value,):
                if hook not in valid:
                    self._fail(name, unknown_name_message("hook point of the agent", hook, valid))
        specs = {}
        for name in ("maze_spec", "vector_spec"):
            try:
                specs[name] = load_spec(getattr(self, name))
            except (UnknownMazeSpecError, ValueError) as e:
                self._fail(name, str(e))
        if not specs["maze_spec"].require_decision_square:
            expected = "a spec with require_decision_square (e.g. 'eval-decision-square')"
            self._fail("maze_spec", f"expected {expected}: the study steers at decision squares")

    def _fail(self, name: str, problem: str) -> NoReturn:
        f = next(f for f in dataclasses.fields(self) if f.name == name)
        value = getattr(self, name)
        raise ConfigError(f"StudyConfig.{name} = {value!r} ({_config.flag(f)}): {problem}")

    # ------------------------------------------------------------------ (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values of every field (tuples become lists)."""
        return _config.to_dict(self)

    def to_json(self) -> str:
        """The config as a JSON object (sorted keys; written into every output)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any], base: StudyConfig | None = None) -> StudyConfig:
        """A config from a (partial) dict of field values over ``base`` (default: the defaults).

        Raises:
            ConfigError: unknown keys (with the closest field names) or bad values.
        """
        return _config.from_dict(cls, d, base).validate()

    @classmethod
    def from_json(
        cls, path: str | os.PathLike[str], base: StudyConfig | None = None
    ) -> StudyConfig:
        """A config from a JSON file holding some or all fields (the rest from ``base``).

        Raises:
            ConfigError: the file is not a JSON object, or holds unknown keys or bad values.
        """
        return cls.from_dict(read_json_object(path), base)


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON object in the file at ``path`` (a config's fields).

    Raises:
        ConfigError: the file is missing, is not valid JSON, or holds no JSON object.
    """
    try:
        d = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"config file {str(path)!r} is not valid JSON: {e}") from None
    if not isinstance(d, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a JSON object of field values")
    return d


def _check_vectors(names: tuple[str, ...]) -> None:
    """Every name is a built-in vector or ``all``, and there is at least one.

    Raises:
        ConfigError: an unknown name (the message names the known vectors) or no name.
    """
    from hookdiff.study.targets import ALL_VECTORS

    if not names:
        raise ConfigError(f"expected at least one vector of {', '.join(ALL_VECTORS)} (or 'all')")
    for name in names:
        if name != "all" and name not in ALL_VECTORS:
            raise ConfigError(unknown_name_message("built-in vector", name, [*ALL_VECTORS, "all"]))


@functools.cache
def _agent_hook_names() -> tuple[str, ...]:
    """The hook points of the IMPALA agent (the same at every scale)."""
    from hookdiff.agent import ImpalaPolicy

    return ImpalaPolicy(scale=1).hook_names


#: What ``--quick`` changes.
_QUICK: dict[str, Any] = dict(
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
    localise_ts=(0.5, 1.0),
    localise_rollout_mazes=2,
    later_match_steps=8,
    random_matched_draws=2,
    random_matched_steps=8,
)


#: What ``--full`` changes: publication scale, every studied maze walked and rolled out.
_FULL: dict[str, Any] = dict(
    n_mazes=104, breakpoint_mazes=104, rollout_mazes=104, localise_rollout_mazes=104
)


def default_config() -> StudyConfig:
    """The defaults (the dataclass's), checked.

    Example:
        >>> default_config().hook
        'embedder.block2.res1.resadd_out'
    """
    return StudyConfig().validate()


def quick_config(base: StudyConfig | None = None) -> StudyConfig:
    """The ``--quick`` profile over ``base``: few mazes, few t, short rollouts (under a minute).

    Example:
        >>> quick_config().n_mazes
        4
    """
    return dataclasses.replace(base or StudyConfig(), **_QUICK).validate()


def full_config(base: StudyConfig | None = None) -> StudyConfig:
    """The ``--full`` profile over ``base``: 104 mazes, each walked and rolled out (publication
    scale; with more mazes, raise ``breakpoint_mazes`` and ``rollout_mazes`` to match).

    Example:
        >>> full_config().breakpoint_mazes
        104
    """
    return dataclasses.replace(base or StudyConfig(), **_FULL).validate()


@dataclass(frozen=True)
class PlotConfig:
    """What ``hookdiff plot`` redraws."""

    run_dir: str = option(help="A study run folder (holds study.nc, written by hookdiff study).")
