"""Hook engine benchmark: ratios measured side by side in one run (not a test).

1. ``sweep`` of K=21 coefficients x B=64 inputs in one batched forward vs a Python loop of one
   hooked forward per coefficient (target >= 15x where per-call overhead matters);
2. a steered batched forward vs a plain forward of the same batch (target <= 1.15x);
3. ``downstream`` (segment only) vs a full forward with capture, beside their FLOP ratio.

Run: ``.venv/bin/python benchmarks/bench_hooks.py``. Timings interleave the variants and report
medians, since these machines are noisy.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable

import torch

import hookdiff
from hookdiff.testing import make_tiny_convnet, make_tiny_transformer

warnings.filterwarnings("ignore", message=".*torch.jit.script.*")
torch.set_num_threads(1)  # tiny tensors: a second thread only adds sync cost
K, B, REPEATS = 21, 64, 7


def interleaved(fns: dict[str, Callable[[], object]], repeats: int = REPEATS) -> dict[str, float]:
    """Median seconds of each function, measured round-robin so drift hits all alike."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_model(
    label: str, model: torch.nn.Module, inputs: torch.Tensor, hook: str, out_hook: str
) -> None:
    with hookdiff.capture(model, [hook]) as acts:
        model(inputs[:1])
    vec = torch.randn(acts[hook].shape[1:])
    coeffs = torch.linspace(-3, 3, K)

    def batched():
        hookdiff.sweep(model, inputs, hook, vec, coeffs, capture=["output"])

    def loop():
        with torch.no_grad():
            for t in coeffs.tolist():
                with hookdiff.steer(model, hook, vec, t):
                    model(inputs)

    big = inputs.repeat((K,) + (1,) * (inputs.ndim - 1))

    def plain():
        with torch.no_grad():
            model(big)

    def steered():
        with torch.no_grad(), hookdiff.steer(model, hook, vec, coeffs):
            model(big)

    t = interleaved({"batched": batched, "loop": loop, "plain": plain, "steered": steered})
    print(f"\n[{label}] K={K} coefficients x B={B} inputs")
    print(f"  sweep, one batched forward : {t['batched'] * 1e3:8.2f} ms")
    print(f"  per-coefficient hooked loop: {t['loop'] * 1e3:8.2f} ms")
    print(f"  speed-up batched vs loop   : {t['loop'] / t['batched']:8.1f}x  (target >= 15x)")
    print(
        f"  steered vs plain forward ({K * B} rows): {t['steered'] / t['plain']:.3f}x  (target <= 1.15x)"
    )


def bench_downstream() -> None:
    """Segment from layer 1's input vs full forward with capture, on a deeper tiny transformer."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = HookedTransformerConfig(
            n_layers=6,
            d_model=64,
            n_ctx=16,
            d_head=16,
            n_heads=4,
            d_mlp=256,
            d_vocab=50,
            act_fn="gelu",
            seed=0,
            device="cpu",
        )
        model = HookedTransformer(cfg).eval()
    tokens = torch.randint(0, 50, (B * 4, 16))
    hook = "blocks.3.hook_resid_pre"
    with torch.no_grad(), hookdiff.capture(model, [hook]) as acts:
        model(tokens)
    f = hookdiff.downstream(model, hook, 4)  # blocks 3, 4, 5 and the unembedding

    def segment():
        with torch.no_grad():
            f(acts[hook])

    def full():
        with torch.no_grad(), hookdiff.capture(model, [hook]):
            model(tokens)

    t = interleaved({"segment": segment, "full": full})
    # FLOPs per token: each block ~ 2*(4*d^2 + 2*d*d_mlp) + attention; unembed 2*d*vocab
    d, m, v, n = 64, 256, 50, 16
    block = 2 * (4 * d * d + 2 * d * m) + 2 * 2 * n * d
    flop_ratio = (3 * block + 2 * d * v) / (6 * block + 2 * d * v)
    print("\n[downstream] 6-layer tiny transformer, segment = blocks 3..5 + unembed")
    print(
        f"  segment / full-with-capture time: {t['segment'] / t['full']:.3f}  (FLOP ratio {flop_ratio:.3f})"
    )


if __name__ == "__main__":
    bench_model(
        "tiny HookedTransformer (2 layers, d_model 16)",
        make_tiny_transformer(),
        torch.randint(0, 23, (B, 6)),
        "blocks.0.hook_resid_post",
        "blocks.1.hook_resid_post",
    )
    bench_model(
        "tiny conv net (Sequential)", make_tiny_convnet(), torch.randn(B, 3, 8, 8), "0", "4"
    )
    mlp = torch.nn.Sequential(
        *[torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU()) for _ in range(6)]
    )
    bench_model(
        "6-layer MLP, width 8 (per-call overhead dominates)", mlp, torch.randn(B, 8), "0", "3"
    )
    bench_downstream()
