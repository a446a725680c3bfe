"""Hypotheses fixed by one run and tested on fresh mazes by another: the confirmatory run.

A discovery run's answer names cuts, spans, layers and signs that the data chose. Read on the
same mazes they cannot fail; read on fresh mazes, with every choice fixed in advance, they can.
:func:`hypotheses_of` turns a run's directional (and equivalence) claims into
:class:`Hypothesis` records: what is predicted (a sign, or "equivalent to 0 within a margin"),
of which per-maze quantity, at which fixed place (cut, span, layer, vector source, control),
readout and t. ``hookdiff study`` writes them to ``hypotheses.json`` beside the config that
fixes every other analysis choice; ``hookdiff study --confirm RUN/hypotheses.json --levels ...``
runs the same analysis on other mazes and :func:`confirm` gives each hypothesis a verdict:

- ``confirmed``: its one-sided test (a predicted sign) or its equivalence test (TOST within the
  margin) rejects at :data:`~hookdiff.claim.ALPHA` after Holm's adjustment over the whole
  family of hypotheses;
- ``refuted``: the 95 % interval lies wholly on the other side of 0 (a predicted sign), or wholly
  outside ±margin (a predicted equivalence);
- ``inconclusive``: neither.

:data:`QUANTITIES` is the one registry: per claim kind, the per-maze values a hypothesis of
that kind is about, read from a study dataset at the hypothesis's fixed place.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from hookdiff._io import jsonable
from hookdiff.claim import ALPHA, Claim
from hookdiff.errors import ConfigError
from hookdiff.stats import bootstrap_mean, bootstrap_se, holm, tost_p
from hookdiff.study.claims_controls import matched_draws, per_maze_mean
from hookdiff.study.schema import PRIMARY, VECTOR_SOURCES
from hookdiff.study.select import (
    bootstrap_seed,
    equivalence_margin,
    even_of_target,
    loc_values,
    published_t,
    target_readout,
)

__all__ = [
    "CONFIRM_MAY_SET",
    "HYPOTHESES_NAME",
    "QUANTITIES",
    "VERDICTS",
    "Hypothesis",
    "check_fresh",
    "confirm",
    "confirm_config",
    "hypotheses_of",
    "read_hypotheses",
    "write_hypotheses",
]

#: File name of a run's hypotheses inside its run folder.
HYPOTHESES_NAME = "hypotheses.json"
#: The verdicts of a confirmatory test.
VERDICTS = ("confirmed", "refuted", "inconclusive")
#: The predictions a hypothesis can make.
PREDICTIONS = ("positive", "negative", "equivalent")


@dataclass(frozen=True)
class Hypothesis:
    """One prediction about fresh mazes, with everything that decides it fixed.

    Attributes:
        id: a unique name (``"cheese/made/margin"``).
        kind: the claim kind it comes from (a key of :data:`QUANTITIES`).
        vector: the ``vector`` coordinate value.
        prediction: ``"positive"`` or ``"negative"`` (the sign of the mean over mazes), or
            ``"equivalent"`` (|mean| below ``margin_fraction`` × |the vector's exact E|).
        readout: the readout (None where the quantity has none).
        t: the coefficient (|t| of an even part).
        where: the fixed place: a cut, ``"a → b"`` span, frozen layer, vector source or control.
        scale: a factor the per-maze values are multiplied by (−1 turns a change of E into a
            drop toward 0 where the exact E is negative; 1 otherwise).
        margin_fraction: the equivalence margin as a fraction of the exact |E| (equivalent only).
        discovery: the discovery run's estimate, ci95 and n of the same quantity.
    """

    id: str
    kind: str
    vector: str
    prediction: str
    readout: str | None
    t: float | None
    where: str | None = None
    scale: float = 1.0
    margin_fraction: float | None = None
    discovery: Mapping[str, Any] | None = None

    def values(self, ds: xr.Dataset) -> np.ndarray:
        """The per-maze values the hypothesis is about, read from ``ds``."""
        return self.scale * np.asarray(QUANTITIES[self.kind](ds, self), dtype=np.float64)


Reader = Callable[[xr.Dataset, Hypothesis], np.ndarray]


def _asymmetry(ds: xr.Dataset, h: Hypothesis) -> np.ndarray:
    return even_of_target(target_readout(ds, h.vector, h.readout or PRIMARY), h.t)


def _published(ds: xr.Dataset, h: Hypothesis) -> np.ndarray:
    # published − mirrored change, each from r(0): s·[r(t) − r(0)] + s·[r(−t) − r(0)] = s·E(t)
    t = published_t(ds)[h.vector]
    r = target_readout(ds, h.vector, h.readout or PRIMARY)
    return math.copysign(1.0, t) * even_of_target(r, abs(t))


def _scan_e(ds: xr.Dataset, h: Hypothesis, cut: str) -> np.ndarray:
    """E of the readout with the network symmetrised at ``cut`` (the exact E at the steering
    hook's name)."""
    if cut == ds.attrs.get("steering_hook"):
        return loc_values(ds, "loc_even", h.vector, h.t, control="vector", readout=h.readout)
    sel = dict(variant="symmetrize", cut=cut, readout=h.readout)
    return loc_values(ds, "loc_even_cut", h.vector, h.t, **sel)


def _made(ds: xr.Dataset, h: Hypothesis) -> np.ndarray:
    first, second = (s.strip() for s in str(h.where).split("→"))
    return _scan_e(ds, h, first) - _scan_e(ds, h, second)


def _created(ds: xr.Dataset, h: Hypothesis) -> np.ndarray:
    return _scan_e(ds, h, str(h.where))


def _frozen(name: str) -> Reader:
    def read(ds: xr.Dataset, h: Hypothesis) -> np.ndarray:
        e = loc_values(ds, name, h.vector, h.t, frozen_layer=h.where, readout=h.readout)
        exact = loc_values(ds, "loc_even", h.vector, h.t, control="vector", readout=h.readout)
        return e - exact if name == "loc_even_knockout" else e

    return read


def _line(ds: xr.Dataset, h: Hypothesis) -> np.ndarray:
    """E of a control line (a control, or a vector source's swapped base)."""
    line = VECTOR_SOURCES[h.where][1] if h.kind == "base_swap" else h.where
    return loc_values(ds, "loc_even", h.vector, h.t, control=line, readout=h.readout)


def _distance(ds: xr.Dataset, h: Hypothesis) -> np.ndarray:
    d = ds["base_swap_distance"].sel(source=h.where, vector=h.vector)
    return (d.sel(sign="+t") - d.sel(sign="-t")).values


def _prediction(ds: xr.Dataset, h: Hypothesis) -> np.ndarray:
    from hookdiff.study.claims_predict import predictions

    return predictions(ds, h.vector, str(h.where))["interpolation"] - 0.5


def _saturation(ds: xr.Dataset, h: Hypothesis) -> np.ndarray:
    from hookdiff.study.claims_predict import continuations

    return continuations(ds, h.vector, str(h.where))[1]


def _random_matched(ds: xr.Dataset, h: Hypothesis) -> np.ndarray:
    own = loc_values(ds, "loc_even", h.vector, h.t, control="vector", readout=h.readout)
    return own - per_maze_mean(matched_draws(ds, "rme_even", h.vector, readout=h.readout))


# fmt: skip (below): one row per claim kind reads as a table
#: Per claim kind, the per-maze quantity its hypotheses are about (the one registry).
QUANTITIES: dict[str, Reader] = {
    "asymmetry": _asymmetry,
    "published": _published,
    "created": _created,
    "made": _made,
    "knockout": _frozen("loc_even_knockout"),
    "knockin": _frozen("loc_even_knockin"),
    "base_swap": _line,
    "distance": _distance,
    "controls": _line,
    "random_matched": _random_matched,
    "prediction": _prediction,
    "saturation": _saturation,
}  # fmt: skip


def _prediction(c: Claim) -> str | None:
    """What a claim predicts for fresh mazes (None: nothing: its verdict was inconclusive)."""
    if c.verdict in ("positive", "negative"):
        return c.verdict
    if c.verdict == "equivalent" and c.kind in ("created", "controls", "saturation", "prediction"):
        return "equivalent"
    return None


def _scale(c: Claim) -> float:
    """The knock-out claim reports the drop of E toward 0: −sign(exact E) × (E frozen − E)."""
    if c.kind != "knockout":
        return 1.0
    return -1.0 if c.detail["exact"].estimate >= 0 else 1.0


def hypotheses_of(per_vector: Mapping[str, Sequence[Claim]], fraction: float) -> list[Hypothesis]:
    """The hypotheses a run's claims make (:func:`~hookdiff.study.answer.claims`): one per claim
    of a kind in :data:`QUANTITIES` with a directional or equivalence verdict, its place,
    readout and t fixed; ``fraction``: the equivalence margin's fraction of the exact |E|. A
    claim whose numbers are 0 within its numerical tolerance (e.g. E with the network cut after
    the last nonlinearity) is 0 by construction: no data could refute it, so it is left out."""
    out = []
    for vector, claims in per_vector.items():
        for c in claims:
            prediction = _prediction(c)
            if c.kind not in QUANTITIES or prediction is None or c.within_tolerance:
                continue  # nothing to predict, or 0 by construction: no data could refute it
            if c.kind == "created" and c.detail.get("variant") != "symmetrize":
                continue  # the linearised scan names its own cut: one creation cut per vector
            key = "/".join(str(x) for x in (vector, c.kind, c.readout, c.where) if x is not None)
            found = {"estimate": c.estimate, "ci95": list(c.ci95), "n": c.n}
            out.append(
                Hypothesis(
                    key,
                    c.kind,
                    vector,
                    prediction,
                    c.readout,
                    c.t,
                    c.where,
                    _scale(c),
                    fraction if prediction == "equivalent" else None,
                    jsonable(found),
                )
            )
    return out


def _one_sided_p(x: np.ndarray, sign: float, seed: int) -> float:
    """P-value of H0 sign·mean ≤ 0 against sign·mean > 0 (bootstrap standard error, normal
    tail, as :func:`~hookdiff.stats.zero_p` reads it)."""
    mean, se, n = bootstrap_se(x, seed=seed)
    if n < 2:
        return float("nan")
    if se == 0:
        return 0.0 if sign * mean > 0 else 1.0
    return 0.5 * math.erfc(sign * mean / se / math.sqrt(2.0))


def _margin(ds: xr.Dataset, h: Hypothesis) -> float:
    """The equivalence margin on ``ds``: the fixed fraction of the vector's exact |E| there
    (of 1 for the saturation's continuation, a ratio already)."""
    if h.kind == "saturation":
        return float(h.margin_fraction or 0.0)
    if h.kind == "prediction":
        from hookdiff.study.claims_predict import CHANCE_MARGIN

        return CHANCE_MARGIN * float(h.margin_fraction or 0.0)
    readout = h.readout or PRIMARY
    exact = loc_values(ds, "loc_even", h.vector, h.t, control="vector", readout=readout)
    return float(h.margin_fraction or 0.0) * abs(float(np.nanmean(exact)))


def confirm(ds: xr.Dataset, hypotheses: Sequence[Hypothesis]) -> list[dict[str, Any]]:
    """Each hypothesis tested on ``ds`` (fresh mazes): ``{"id", "kind", "vector", "prediction",
    "where", "readout", "t", "discovery", "estimate", "ci95", "n", "median", "n_positive",
    "n_negative", "margin", "p", "p_adjusted", "verdict"}``, Holm-adjusted over the family."""
    seed = bootstrap_seed(ds)
    rows, ps = [], []
    for h in hypotheses:
        x = h.values(ds)
        x = x[np.isfinite(x)]
        iv = bootstrap_mean(x, seed=seed)
        margin = _margin(ds, h) if h.prediction == "equivalent" else None
        if margin is not None:
            p = tost_p(x, margin, seed=seed)
        else:
            p = _one_sided_p(x, 1.0 if h.prediction == "positive" else -1.0, seed)
        ps.append(p)
        spread = {"median": iv.median, "n_positive": iv.n_positive, "n_negative": iv.n_negative}
        found = {"estimate": iv.estimate, "ci95": [iv.lo, iv.hi], "n": iv.n, **spread}
        rows.append({**asdict(h), **found, "margin": margin, "p": p})
    adjusted = holm(np.array(ps, dtype=np.float64))
    for row, p in zip(rows, adjusted):
        row["p_adjusted"] = float(p)
        row["verdict"] = _verdict(row)
        row["family"] = f"Holm over the {int(np.isfinite(adjusted).sum())} hypotheses"
    return jsonable(rows)


def _verdict(row: Mapping[str, Any]) -> str:
    """confirmed / refuted / inconclusive (see the module docstring)."""
    lo, hi = row["ci95"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "inconclusive"
    if math.isfinite(row["p_adjusted"]) and row["p_adjusted"] < ALPHA:
        return "confirmed"
    m = row["margin"]
    refuted = {
        "positive": hi < 0,
        "negative": lo > 0,
        "equivalent": m is not None and (lo > m or hi < -m),
    }[row["prediction"]]
    return "refuted" if refuted else "inconclusive"


def write_hypotheses(
    path: str | Path, hypotheses: Sequence[Hypothesis], ds: xr.Dataset
) -> dict[str, Any]:
    """Write ``hypotheses.json``: the hypotheses, the config fixing every analysis choice, the
    discovery mazes' level seeds (a confirmation must not reuse them), alpha and correction."""
    from hookdiff._io import write_json

    record = {
        "hypotheses": [asdict(h) for h in hypotheses],
        "config": json.loads(ds.attrs["config"]),
        "level_seeds": [int(s) for s in ds["level_seed"].values],
        "alpha": ALPHA,
        "correction": "holm",
        "fraction": equivalence_margin(ds),
    }
    write_json(jsonable(record), Path(path))
    return record


def read_hypotheses(path: str | Path) -> tuple[list[Hypothesis], dict[str, Any]]:
    """The hypotheses of a ``hypotheses.json`` and the whole record.

    Raises:
        ConfigError: the file is missing, not JSON, or not a hypotheses file.
    """
    try:
        record = json.loads(Path(path).read_text())
        hyps = [Hypothesis(**h) for h in record["hypotheses"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(
            f"--confirm {path}: not a hypotheses file written by hookdiff study "
            f"(expected RUN/{HYPOTHESES_NAME}): {e}"
        ) from None
    unknown = sorted({h.kind for h in hyps} - set(QUANTITIES))
    if unknown:
        raise ConfigError(f"--confirm {path}: unknown hypothesis kinds {unknown}")
    return hyps, record


#: The config fields a confirmatory run may set: which mazes (they must be fresh), where the
#: run folder goes, and how the work is computed. Every analysis choice is the discovery's.
CONFIRM_MAY_SET = (
    "out_dir",
    "resume",
    "seed",
    "maze_spec",
    "n_mazes",
    "levels",
    "threads",
    "device",
    "maze_block",
    "backend",
    "ray_address",
    "ray_workers",
    "confirm",
)


def confirm_config(path: str | Path, given: Mapping[str, Any]) -> Any:
    """The StudyConfig of a confirmatory run: the discovery's (from ``path``), with ``given``
    (options set on the command line or in --config) only among :data:`CONFIRM_MAY_SET`; the run
    folder defaults to the discovery's with ``-confirm`` appended.

    Raises:
        ConfigError: an analysis option is set, or the file is not a hypotheses file.
    """
    from hookdiff.study.config import StudyConfig

    _, record = read_hypotheses(path)
    fixed = sorted(set(given) - set(CONFIRM_MAY_SET))
    if fixed:
        raise ConfigError(
            f"--confirm {path}: {', '.join(fixed)} fixed by the hypotheses (the discovery's "
            f"analysis); a confirmatory run may set only {', '.join(CONFIRM_MAY_SET)}"
        )
    where = Path(path).resolve()
    values = {**record["config"], "resume": False, "out_dir": str(where.parent) + "-confirm"}
    return StudyConfig.from_dict({**values, **given, "confirm": str(where)})


def check_fresh(level_seeds: Sequence[int], record: Mapping[str, Any], path: str) -> None:
    """Refuse a confirmatory run on any of the discovery's mazes.

    Raises:
        ConfigError: some of ``level_seeds`` were studied by the discovery run.
    """
    reused = sorted(set(int(s) for s in level_seeds) & set(record["level_seeds"]))
    if reused:
        shown = ", ".join(map(str, reused[:10])) + (" ..." if len(reused) > 10 else "")
        raise ConfigError(
            f"--confirm {path}: {len(reused)} of the {len(level_seeds)} mazes were studied by "
            f"the discovery run (levels {shown}); give fresh mazes (--levels, --seed)"
        )
