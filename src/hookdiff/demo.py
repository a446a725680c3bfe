"""``hookdiff demo``: the hook engine on a tiny random HookedTransformer, in a few seconds.

One batched sweep steers the residual stream before block 0 with t·v (v from a contrast pair of
inputs, as steering vectors are made) for 13 coefficients t, captures every later hook point, and
saves the sweep as netCDF; :func:`diff_table` prints ‖diff(t)‖ = ‖f(a + t·v) − f(a)‖ per
downstream depth, with a header saying what the numbers measure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from hookdiff._config import option

__all__ = ["DemoConfig", "HOOK", "diff_table", "run_demo"]

#: Where the demo steers.
HOOK = "blocks.0.hook_resid_pre"


@dataclass(frozen=True)
class DemoConfig:
    """What ``hookdiff demo`` writes where."""

    out_dir: str = option("runs/demo", "Output folder (the sweep as sweep.nc).", flag="--out")
    seed: int = option(0, "Seed of the model, the inputs and the vector.")


def run_demo(config: DemoConfig) -> tuple[xr.Dataset, Path]:
    """Run the demo sweep and write it; return the Dataset and the file it was written to.

    Example:
        >>> import tempfile
        >>> ds, path = run_demo(DemoConfig(out_dir=tempfile.mkdtemp()))
        >>> path.name, ds["coeff"].size
        ('sweep.nc', 13)
    """
    import torch

    import hookdiff
    from hookdiff._io import atomic_write
    from hookdiff.tiny import make_tiny_transformer

    torch.manual_seed(config.seed)
    model = make_tiny_transformer(seed=config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    tokens = torch.randint(0, model.cfg.d_vocab, (8, 6), generator=gen)
    with hookdiff.capture(model, [HOOK]) as acts:
        model(tokens[:2])
    vector = (acts[HOOK][0] - acts[HOOK][1]).detach()  # a contrast pair, as steering vectors are
    coeffs = torch.linspace(-3, 3, 13)
    depths = [n for n in hookdiff.hook_chain(model) if n not in (HOOK, "logits")]
    ds = hookdiff.sweep(model, tokens, HOOK, vector, coeffs, capture=[*depths, "output"])
    ds.attrs.update(seed=config.seed, model="tiny HookedTransformer (2 layers, d_model 16)")
    path = Path(config.out_dir) / "sweep.nc"
    with atomic_write(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")
    return ds, path


def diff_table(ds: xr.Dataset) -> str:
    """‖diff(t)‖ per coefficient and captured depth, as text that says what it measures.

    diff(t) = f(a + t·v) − f(a) is how far adding t·v at the steered hook moves a later
    activation f; each number is its Euclidean norm over all inputs, positions and features.
    The last row gives ‖f(a)‖, the unsteered activation's norm, for scale.
    """
    names = [n for n in ds.data_vars if not str(n).endswith("_baseline")]
    width = max(12, *(len(str(n)) for n in names))
    lines = [
        f"‖diff(t)‖ = ‖f(a + t·v) − f(a)‖: how far adding t·v at {ds.attrs['hook']} "
        f"(‖v‖ = {ds.attrs['vector_norm']:.3g})",
        'moves the activation f at each later depth ("output": the logits), as the Euclidean norm',
        "over all inputs, positions and features. 0 at t = 0; a linear response grows as |t|.",
        f"{'t':>8} " + " ".join(f"{n:>{width}}" for n in names),
    ]
    for k, t in enumerate(ds["coeff"].values.tolist()):
        norms = [_norm(ds[name].values[k] - ds[f"{name}_baseline"].values) for name in names]
        lines.append(f"{t:8.2f} " + " ".join(f"{x:{width}.4f}" for x in norms))
    base = [_norm(ds[f"{name}_baseline"].values) for name in names]
    lines.append(f"{'‖f(a)‖':>8} " + " ".join(f"{x:{width}.4f}" for x in base))
    return "\n".join(lines)


def _norm(x: object) -> float:
    return float((np.asarray(x, dtype=np.float64) ** 2).sum() ** 0.5)
