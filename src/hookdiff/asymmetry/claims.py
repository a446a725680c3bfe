"""The answer's claims, read off the measured dataset (:mod:`hookdiff.asymmetry.measure`).

Each claim is a :class:`~hookdiff.claim.Claim`: an estimate with its 95 % bootstrap
interval over inputs, n, the median and sign counts, and a verdict from the fields. The kinds:

- ``asymmetry``: the mean E at ±t, O beside it (is there an asymmetry, and which sign acts more);
- ``random_matched``: the vector's E minus that of random directions matched to its |O| per
  input (paired): is the asymmetry the vector's, or what any push of that effect does;
- ``created``: the earliest cut after which the asymmetry made is equivalent to 0 within the
  margin (TOST, Holm over the cuts), i.e. the asymmetry is made before it;
- ``made``: the span between consecutive cuts that makes most of E (its contribution, paired);
- ``knockout``: the one held state whose knock-out removes most of E, Holm over every state,
  with the share of O it keeps beside it (a knock-out that kills the steering does not locate
  the asymmetry).

The asymmetry, matched-control and knock-out claims form one multiplicity family (Holm,
:func:`~hookdiff.claim.adjust_family`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from hookdiff.claim import Claim, adjust_family, tolerance
from hookdiff.stats import bootstrap_mean, holm, paired_difference, tost_p

__all__ = ["EQUIVALENCE_MARGIN", "PRIMARY_VARIANT", "claims_of"]

#: The equivalence margin, as a share of the vector's |mean E|.
EQUIVALENCE_MARGIN = 0.2
#: The cut variant the location claims read (symmetrised: the response at the cut made odd).
PRIMARY_VARIANT = "symmetrize"


def _common(ds: xr.Dataset) -> dict:
    return {"readout": ds.attrs["readout"], "t": ds.attrs["t"]}


def asymmetry(ds: xr.Dataset, seed: int) -> Claim:
    """The mean E over inputs, O beside it."""
    e = ds["even"].values
    return Claim.of(
        "asymmetry",
        ds.attrs["vector"],
        bootstrap_mean(e, seed=seed),
        odd=float(np.nanmean(ds["odd"].values)),
        tolerance=tolerance(ds["even"].values),
        **_common(ds),
    )


def random_matched(ds: xr.Dataset, seed: int) -> Claim:
    """Vector E − matched random E per input (the draws' mean where any matched)."""
    rand = ds["rm_even"].values
    ok = np.isfinite(rand).any(axis=0)
    per = np.where(ok, np.nansum(rand, axis=0) / np.maximum(np.isfinite(rand).sum(0), 1), np.nan)
    detail = {
        "random_e": bootstrap_mean(per, seed=seed),
        "vector_e": bootstrap_mean(np.where(ok, ds["even"].values, np.nan), seed=seed),
        "matched": int(ok.sum()),
        "draws": int(ds.sizes["draw"]),
    }
    diff = paired_difference(ds["even"].values, per, seed=seed)
    return Claim.of(
        "random_matched", ds.attrs["vector"], diff, where="random_matched_effect",
        detail=detail, **_common(ds),
    )  # fmt: skip


def _after(ds: xr.Dataset) -> tuple[list[str], np.ndarray]:
    """The cuts in forward order and E made after each (the hook first: the exact E)."""
    cuts = [str(c) for c in ds["cut"].values]
    after = ds["cut_even"].sel(variant=PRIMARY_VARIANT).values  # (cut, input)
    return [ds.attrs["hook"], *cuts], np.concatenate([ds["even"].values[None], after])


def created(ds: xr.Dataset, seed: int) -> Claim:
    """The earliest cut after which the asymmetry made is within the margin of 0 (TOST, Holm
    over the cuts tested); NaN where none is.

    A cut after which the asymmetry is 0 within numerical tolerance (nothing after it bends the
    line: an affine tail, a linear readout of a symmetrised output) says so by construction, so
    it is not tested; ``detail["by_construction"]`` names those cuts.
    """
    names, after = _after(ds)
    margin = EQUIVALENCE_MARGIN * abs(float(np.nanmean(ds["even"].values)))
    tol = tolerance(ds["even"].values)
    trivial = [bool(np.nanmax(np.abs(x)) <= tol) for x in after[1:]]
    tested = [k for k, t in enumerate(trivial) if not t]
    p = np.full(len(trivial), np.nan)
    p[tested] = holm(np.array([tost_p(after[1 + k], margin, seed=seed) for k in tested]))
    detail = {
        "cuts": {n: {"after": bootstrap_mean(x, seed=seed), "p_equivalent": float(q)}
                 for n, x, q in zip(names[1:], after[1:], p)},
        "by_construction": [n for n, t in zip(names[1:], trivial) if t],
        "variant": PRIMARY_VARIANT,
    }  # fmt: skip
    hit = np.flatnonzero(p < 0.05)
    if not hit.size:
        iv = bootstrap_mean(np.full(after.shape[1], np.nan), seed=seed)
        return Claim.of("created", ds.attrs["vector"], iv, margin=margin, detail=detail)
    k = int(hit[0]) + 1
    return Claim.of(
        "created", ds.attrs["vector"], bootstrap_mean(after[k], seed=seed), where=names[k],
        margin=margin, p_equivalent=float(p[k - 1]), detail=detail, **_common(ds),
    )  # fmt: skip


def made(ds: xr.Dataset, seed: int) -> Claim:
    """The span between consecutive cuts whose contribution to E is largest in E's direction."""
    names, after = _after(ds)
    parts = after[:-1] - after[1:]  # made between cut k and cut k+1
    spans = [f"{a} → {b}" for a, b in zip(names[:-1], names[1:])]
    sign = np.sign(np.nanmean(ds["even"].values)) or 1.0
    k = int(np.nanargmax(sign * np.nanmean(parts, axis=1)))
    detail = {"spans": {s: bootstrap_mean(x, seed=seed) for s, x in zip(spans, parts)},
              "total": bootstrap_mean(ds["even"].values, seed=seed)}  # fmt: skip
    return Claim.of(
        "made", ds.attrs["vector"], bootstrap_mean(parts[k], seed=seed), where=spans[k],
        detail=detail, **_common(ds),
    )  # fmt: skip


def knockout(ds: xr.Dataset, seed: int) -> Claim | None:
    """The held state removing most of E (drop = E − E held, paired), Holm over the states."""
    if ds.sizes.get("frozen", 0) == 0:
        return None
    e = ds["even"].values
    drops = [paired_difference(e, x, seed=seed) for x in ds["ko_even"].values]
    p = holm(np.array([d.p_zero for d in drops]))
    sign = np.sign(np.nanmean(e)) or 1.0
    k = int(np.nanargmax([sign * d.estimate for d in drops]))
    names = [str(n) for n in ds["frozen"].values]
    kept = [float(np.nanmean(o) / np.nanmean(ds["odd"].values)) for o in ds["ko_odd"].values]
    detail = {
        "states": {n: {"drop": d, "p_zero": float(q), "odd_kept": k_}
                   for n, d, q, k_ in zip(names, drops, p, kept)},
        "odd_kept": kept[k],
    }  # fmt: skip
    return Claim.of(
        "knockout", ds.attrs["vector"], drops[k], where=names[k], p_zero=float(p[k]),
        detail=detail, **_common(ds),
    )  # fmt: skip


def claims_of(ds: xr.Dataset, seed: int | None = None) -> list[Claim]:
    """Every claim of the answer, the family Holm-adjusted (see the module docstring)."""
    seed = int(ds.attrs["seed"] if seed is None else seed)
    found = [asymmetry(ds, seed), random_matched(ds, seed), created(ds, seed), made(ds, seed)]
    found += [c for c in [knockout(ds, seed)] if c is not None]
    return adjust_family({ds.attrs["vector"]: found})[ds.attrs["vector"]]
