"""Benchmark: cost of the hook points and of running a segment, as ratios measured side by side.

1. Forward throughput of ``ImpalaPolicy`` (a HookPoint after every op, graph walk) against a plain
   ``nn.Module`` with the same weights and no hook points, at batch 256 on 2 threads, in NCHW and
   channels_last. Target: hooked time <= 1.10x plain time.
2. ``run_segment`` from the steering layer (``embedder.block2.res1.resadd_out``) to the logits
   against a full forward: the time ratio next to the FLOP ratio (convs and linears counted
   analytically; relu, maxpool and adds are not FLOP-counted but do cost memory traffic).
3. The hooked forward (NCHW, no gradient) with its max pools through the CPU's channels-last
   kernel, as ``apply_op`` runs them, against the module's own NCHW kernel: the same logits bit
   for bit, and the time ratio.

Repeats are interleaved (A, B, A, B, ...) so drifts in machine load hit both sides alike; the
median time is reported. Run: ``.venv/bin/python benchmarks/bench_agent.py [--scale 1] [--reps 7]
[--threads 2]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

import hookdiff.ops
from hookdiff.agent import ImpalaPolicy

STEER = "embedder.block2.res1.resadd_out"


class _PlainRes(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class _PlainBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.res1 = _PlainRes(cout)
        self.res2 = _PlainRes(cout)

    def forward(self, x):
        return self.res2(self.res1(self.maxpool(self.conv(x))))


class _PlainEmbedder(nn.Module):
    def __init__(self, s: int):
        super().__init__()
        self.block1 = _PlainBlock(3, 16 * s)
        self.block2 = _PlainBlock(16 * s, 32 * s)
        self.block3 = _PlainBlock(32 * s, 32 * s)
        self.fc = nn.Linear(32 * s * 64, 256)

    def forward(self, x):
        x = F.relu(self.block3(self.block2(self.block1(x))))
        return F.relu(self.fc(torch.flatten(x, 1)))


class PlainImpala(nn.Module):
    """The same network as a conventional nn.Module: no hook points, no graph walk."""

    def __init__(self, scale: int):
        super().__init__()
        self.embedder = _PlainEmbedder(scale)
        self.fc_policy = nn.Linear(256, 15)
        self.fc_value = nn.Linear(256, 1)

    def forward(self, x):
        h = self.embedder(x)
        self.fc_value(h)  # the hooked policy computes the value head too
        return self.fc_policy(h)


def op_flops(policy: ImpalaPolicy, ops) -> int:
    """Multiply-add FLOPs (2 per MAC) per observation of the convs and linears among ``ops``."""
    shapes: dict[str, tuple[int, ...]] = {}
    with torch.no_grad():
        _, cache = policy.run_with_cache(torch.zeros(1, 3, 64, 64))
    for name, t in cache.items():
        shapes[name] = tuple(t.shape[1:])
    total = 0
    for op in ops:
        out = shapes[op.name]
        if op.kind == "conv":
            m = op.module
            kh, kw = m.kernel_size
            total += 2 * m.in_channels * kh * kw * out[0] * out[1] * out[2]
        elif op.kind == "linear":
            total += 2 * op.module.in_features * op.module.out_features
    return total


def interleaved(fns: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
    """Median seconds per call of each fn, repeats interleaved."""
    for fn in fns.values():  # warm up
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    hooked = ImpalaPolicy(scale=args.scale).eval()
    plain = PlainImpala(args.scale).eval()
    plain.load_state_dict(hooked.state_dict(), strict=True)
    obs = torch.rand(args.batch, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(hooked(obs), plain(obs))
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, scale {args.scale}, "
        f"batch {args.batch}, median of {args.reps} interleaved repeats"
    )

    print("\n1. hooked ImpalaPolicy vs plain nn.Module, same weights")
    for label, fmt in (("NCHW", torch.contiguous_format), ("channels_last", torch.channels_last)):
        h = hooked.to(memory_format=fmt)
        p = plain.to(memory_format=fmt)
        x = obs.contiguous(memory_format=fmt)
        with torch.no_grad():
            t = interleaved(
                {"hooked": lambda h=h, x=x: h(x), "plain": lambda p=p, x=x: p(x)}, args.reps
            )
        print(
            f"  {label:13s}  hooked {args.batch / t['hooked']:8.0f} obs/s   plain "
            f"{args.batch / t['plain']:8.0f} obs/s   time ratio hooked/plain "
            f"{t['hooked'] / t['plain']:.3f}  (target <= 1.10)"
        )

    print(f"\n2. run_segment {STEER} -> fc_policy_out vs full forward")
    full_flops = op_flops(hooked, hooked.ops)
    seg_ops, _ = hooked.segment_ops(STEER, "fc_policy_out")
    seg_flops = op_flops(hooked, seg_ops)
    for label, fmt in (("NCHW", torch.contiguous_format), ("channels_last", torch.channels_last)):
        h = hooked.to(memory_format=fmt)
        x = obs.contiguous(memory_format=fmt)
        with torch.no_grad():
            _, cache = h.run_with_cache(x, names_filter=[STEER])
            a = cache[STEER]
            t = interleaved(
                {
                    "segment": lambda h=h, a=a: h.run_segment(a, STEER, "fc_policy_out"),
                    "full": lambda h=h, x=x: h(x),
                },
                args.reps,
            )
        print(
            f"  {label:13s}  segment {t['segment'] * 1e3:7.1f} ms   full {t['full'] * 1e3:7.1f} ms"
            f"   time ratio {t['segment'] / t['full']:.3f}   FLOP ratio "
            f"{seg_flops / full_flops:.3f}  ({seg_flops / 1e6:.1f} / {full_flops / 1e6:.1f} MFLOP per obs)"
        )

    print("\n3. max pools through the channels-last kernel vs the module's NCHW kernel (NCHW)")
    hooked = hooked.to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        runs = {"channels_last": _pools(hooked, obs, True), "nchw": _pools(hooked, obs, False)}
        same = torch.equal(runs["channels_last"](), runs["nchw"]())
        t = interleaved(runs, args.reps)
    print(
        f"  channels-last pools {t['channels_last'] * 1e3:7.1f} ms   NCHW pools "
        f"{t['nchw'] * 1e3:7.1f} ms   speed-up {t['nchw'] / t['channels_last']:.2f}x   "
        f"identical logits: {same}"
    )


def _pools(policy: nn.Module, obs: torch.Tensor, channels_last: bool) -> Callable[[], object]:
    """A forward of ``policy`` whose max pools take the channels-last path or the module's own."""
    fast = hookdiff.ops._channels_last_pays

    def run() -> object:
        if not channels_last:
            hookdiff.ops._channels_last_pays = lambda module, x: False
        try:
            return policy(obs)
        finally:
            hookdiff.ops._channels_last_pays = fast

    return run


if __name__ == "__main__":
    main()
