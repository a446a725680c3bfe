"""The IMPALA maze policy as a TransformerLens ``HookedRootModule`` with a hook after every op.

The network is the one of Langosco et al., "Goal Misgeneralization in Deep RL" (studied by Turner
et al.): three conv blocks (conv, maxpool, two residual blocks), relu, flatten, a 256-unit fc
layer, relu, and a policy head (15 logits) and a value head. Parameter names equal the original
checkpoint keys (``embedder.block2.res1.conv1.weight`` ...), and every op's output passes through
a ``HookPoint`` named by the original module path plus ``_out`` (``embedder.block2.res1.resadd_out``
is the published steering layer), so ``run_with_hooks``, ``run_with_cache`` and ``hooks()`` work
unchanged.

The network is written as an explicit graph: ``policy.ops`` lists one :class:`Op` per hook point in
forward order, and the forward pass walks it. The same walk runs any segment of the chain
(:meth:`ImpalaPolicy.run_segment`), which is what ``hookdiff.downstream`` and the analysis
(breakpoints, JVPs) build on: they read the graph instead of re-deriving the architecture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from hookdiff.contract import INPUT, Op, Readout
from hookdiff.errors import SegmentError, ShapeMismatchError, UnknownHookError, unknown_name_message
from hookdiff.maze.actions import DIRECTION_NAMES, direction_probs
from hookdiff.ops import apply_op

__all__ = ["INPUT", "ImpalaPolicy", "Op"]

#: The readout the policy declares: the 5 direction probabilities from the 15 action logits.
DIRECTIONS_READOUT = Readout(
    name="directions",
    source="fc_policy_out",
    fn=direction_probs,
    dim="direction",
    labels=DIRECTION_NAMES,
)


class _ResidualBlock(nn.Module):
    """Parameters and hook points of one residual block (relu, conv1, relu, conv2, + input)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.relu1_out = HookPoint()
        self.conv1_out = HookPoint()
        self.relu2_out = HookPoint()
        self.conv2_out = HookPoint()
        self.resadd_out = HookPoint()


class _ConvBlock(nn.Module):
    """Parameters and hook points of one IMPALA block (conv, maxpool, res1, res2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.conv_out = HookPoint()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.maxpool_out = HookPoint()
        self.res1 = _ResidualBlock(out_channels)
        self.res2 = _ResidualBlock(out_channels)


class _Embedder(nn.Module):
    """The three blocks, then relu, flatten, fc, relu (each with its hook point)."""

    def __init__(self, scale: int, in_channels: int = 3):
        super().__init__()
        channels = (16 * scale, 32 * scale, 32 * scale)
        self.block1 = _ConvBlock(in_channels, channels[0])
        self.block2 = _ConvBlock(channels[0], channels[1])
        self.block3 = _ConvBlock(channels[1], channels[2])
        self.relu3_out = HookPoint()
        self.flatten_out = HookPoint()
        self.fc = nn.Linear(channels[2] * 8 * 8, 256)
        self.fc_out = HookPoint()
        self.relufc_out = HookPoint()


class ImpalaPolicy(HookedRootModule):
    """The IMPALA maze policy, with a ``HookPoint`` after every op.

    ``policy(obs)`` returns the action logits; :meth:`forward_with_value` also returns the value.
    ``policy.hook_names`` lists the hook points in forward order (the two heads last, policy
    before value), ``policy.ops`` the graph, and :meth:`run_segment` runs any part of the chain.

    Args:
        scale: Channel multiplier: blocks have 16·scale, 32·scale, 32·scale channels (the
            published maze agents use 4; hookdiff's shipped agent 1).
        num_actions: Size of the policy head (procgen: 15).

    Example:
        >>> policy = ImpalaPolicy(scale=1)
        >>> policy(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 15])
        >>> logits, cache = policy.run_with_cache(torch.rand(2, 3, 64, 64))
        >>> cache["embedder.block2.res1.resadd_out"].shape
        torch.Size([2, 32, 16, 16])
    """

    def __init__(self, scale: int = 1, num_actions: int = 15):
        super().__init__()
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
            raise ValueError(f"scale must be a positive int (channels 16·scale), got {scale!r}")
        if not isinstance(num_actions, int) or num_actions < 1:
            raise ValueError(f"num_actions must be a positive int, got {num_actions!r}")
        self.scale = scale
        self.num_actions = num_actions
        self.embedder = _Embedder(scale)
        self.fc_policy = nn.Linear(256, num_actions)
        self.fc_policy_out = HookPoint()
        self.fc_value = nn.Linear(256, 1)
        self.fc_value_out = HookPoint()
        self.output_hook = "fc_policy_out"
        self.output_dims = ("action",)
        self.readouts = (DIRECTIONS_READOUT,)
        self.ops: tuple[Op, ...] = self._build_ops()
        self.hook_names: tuple[str, ...] = tuple(op.name for op in self.ops)
        self._position = {name: i for i, name in enumerate(self.hook_names)}
        self._position[INPUT] = -1
        # For the full forward: after op i, drop activations no later op reads (peak memory).
        last_use: dict[str, int] = {}
        for i, op in enumerate(self.ops):
            for name in op.inputs:
                last_use[name] = i
        self._free_after: tuple[tuple[str, ...], ...] = tuple(
            tuple(n for n, j in last_use.items() if j == i) for i in range(len(self.ops))
        )
        self.setup()

    def _build_ops(self) -> tuple[Op, ...]:
        """The graph in forward order; each op's name is the hook point of its output."""
        ops: list[Op] = []
        prev = INPUT
        for b in (1, 2, 3):
            block = getattr(self.embedder, f"block{b}")
            p = f"embedder.block{b}"
            ops.append(Op(f"{p}.conv_out", "conv", (prev,), block.conv))
            ops.append(Op(f"{p}.maxpool_out", "maxpool", (f"{p}.conv_out",), block.maxpool))
            prev = f"{p}.maxpool_out"
            for r in (1, 2):
                res = getattr(block, f"res{r}")
                q = f"{p}.res{r}"
                ops.append(Op(f"{q}.relu1_out", "relu", (prev,)))
                ops.append(Op(f"{q}.conv1_out", "conv", (f"{q}.relu1_out",), res.conv1))
                ops.append(Op(f"{q}.relu2_out", "relu", (f"{q}.conv1_out",)))
                ops.append(Op(f"{q}.conv2_out", "conv", (f"{q}.relu2_out",), res.conv2))
                ops.append(Op(f"{q}.resadd_out", "add", (f"{q}.conv2_out", prev)))
                prev = f"{q}.resadd_out"
        ops.append(Op("embedder.relu3_out", "relu", (prev,)))
        ops.append(Op("embedder.flatten_out", "flatten", ("embedder.relu3_out",)))
        ops.append(Op("embedder.fc_out", "linear", ("embedder.flatten_out",), self.embedder.fc))
        ops.append(Op("embedder.relufc_out", "relu", ("embedder.fc_out",)))
        ops.append(Op("fc_policy_out", "linear", ("embedder.relufc_out",), self.fc_policy))
        ops.append(Op("fc_value_out", "linear", ("embedder.relufc_out",), self.fc_value))
        return tuple(ops)

    # ---------------------------------------------------------------- running the graph

    def _run_op(self, op: Op, args: Sequence[Tensor]) -> Tensor:
        """Run one op on its inputs and pass the result through the op's hook point.

        Flatten reads the logical NCHW view, so the order is (channel, height, width) whatever
        the memory format (channels_last included): the fc weights line up.
        """
        return self.hook_dict[op.name](apply_op(op, args))

    def _forward_all(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        if obs.dim() != 4 or obs.shape[1:] != (3, 64, 64):
            raise ShapeMismatchError(
                f"ImpalaPolicy expects float observations shaped (N, 3, 64, 64) in [0, 1]; got "
                f"shape {tuple(obs.shape)}. For procgen's uint8 (N, 64, 64, 3) frames use "
                f"hookdiff.agent.obs_to_tensor(rgb)."
            )
        env: dict[str, Tensor] = {INPUT: obs}
        for op, free in zip(self.ops, self._free_after):
            env[op.name] = self._run_op(op, [env[n] for n in op.inputs])
            for n in free:
                del env[n]
        return env["fc_policy_out"], env["fc_value_out"]

    def forward(
        self, obs: Float[Tensor, "batch channel height width"]
    ) -> Float[Tensor, "batch action"]:
        """Action logits for float observations ``(N, 3, 64, 64)`` in [0, 1].

        The value head runs too (so its hook point fires); use :meth:`forward_with_value` to
        get it.
        """
        return self._forward_all(obs)[0]

    def forward_with_value(
        self, obs: Float[Tensor, "batch channel height width"]
    ) -> tuple[Float[Tensor, "batch action"], Float[Tensor, " batch"]]:
        """Action logits ``(N, num_actions)`` and values ``(N,)`` in one pass.

        Example:
            >>> logits, value = ImpalaPolicy().forward_with_value(torch.rand(1, 3, 64, 64))
            >>> value.shape
            torch.Size([1])
        """
        logits, value = self._forward_all(obs)
        return logits, value.squeeze(-1)

    # ---------------------------------------------------------------- segments

    def _check_name(self, name: str, what: str, allow_input: bool) -> int:
        if name == INPUT and allow_input:
            return -1
        if name not in self._position or name == INPUT:
            raise UnknownHookError(
                unknown_name_message(f"{what} hook point of ImpalaPolicy", name, self.hook_names)
                + ". All names are in policy.hook_names"
                + (f" (or {INPUT!r} for the observation)." if allow_input else ".")
            )
        return self._position[name]

    def segment_ops(self, start: str, stop: str) -> tuple[tuple[Op, ...], tuple[str, ...]]:
        """The ops :meth:`run_segment` runs from ``start`` to ``stop``, and what they read from before.

        Only ops after ``start`` up to ``stop`` that ``stop`` depends on are kept (a policy-head
        stop skips the value head and vice versa).

        Args:
            start: A hook name, or ``"input"``.
            stop: A hook name after ``start`` in :attr:`hook_names`.

        Returns:
            ``(ops, needed)``: the ops in forward order, and the names of activations produced
            before ``start`` that they read (to be given as ``context``), in forward order.

        Example:
            >>> ops, needed = ImpalaPolicy().segment_ops(
            ...     "embedder.block2.res1.conv1_out", "embedder.block2.res1.resadd_out")
            >>> [op.kind for op in ops], needed
            (['relu', 'conv', 'add'], ('embedder.block2.maxpool_out',))
        """
        i = self._check_name(start, "start", allow_input=True)
        j = self._check_name(stop, "stop", allow_input=False)
        if j <= i:
            raise SegmentError(
                f"stop {stop!r} (position {j}) must come after start {start!r} (position {i}) "
                f"in policy.hook_names."
            )
        wanted = {stop}
        picked: list[Op] = []
        for op in reversed(self.ops[i + 1 : j + 1]):
            if op.name in wanted:
                picked.append(op)
                wanted.discard(op.name)
                wanted.update(op.inputs)
        wanted.discard(start)
        needed = tuple(sorted(wanted, key=self._position.__getitem__))
        return tuple(reversed(picked)), needed

    def run_segment(
        self,
        x: Tensor,
        start: str,
        stop: str,
        context: Mapping[str, Tensor] | None = None,
    ) -> Tensor:
        """The activation at hook ``stop`` computed from the activation ``x`` at hook ``start``.

        Runs only the ops after ``start`` through ``stop`` (nothing upstream is recomputed); the
        hook points inside the segment fire, so hooks and steering work within it, and it is
        differentiable (``torch.func.jvp`` works through it). The hook at ``start`` does not fire:
        ``x`` is its output.

        Args:
            x: Activation at ``start``, batched: ``(R, ...)``.
            start: A hook name, or ``"input"`` for the observation.
            stop: A hook name after ``start`` in :attr:`hook_names`.
            context: Activations produced before ``start`` that the segment reads (a residual
                block's input when ``start`` is inside its branch), e.g. the cache of a
                ``run_with_cache`` on the same inputs. A context tensor with B rows while ``x``
                has K·B rows (a coefficient-major batch) is repeated K times along the batch.

        Returns:
            The activation at ``stop``, ``(R, ...)``.

        Raises:
            UnknownHookError: ``start`` or ``stop`` is not a hook name (lists the closest ones).
            SegmentError: ``stop`` is not after ``start``, or a needed activation is missing
                from ``context``.
            ShapeMismatchError: a context tensor's batch does not divide ``x``'s.

        Example:
            >>> policy = ImpalaPolicy()
            >>> _, cache = policy.run_with_cache(torch.rand(2, 3, 64, 64))
            >>> h = "embedder.block2.res1.resadd_out"
            >>> logits = policy.run_segment(cache[h], h, "fc_policy_out")
            >>> torch.allclose(logits, cache["fc_policy_out"])
            True
        """
        ops, needed = self.segment_ops(start, stop)
        env: dict[str, Tensor] = {start: x}
        for name in needed:
            env[name] = self._context_tensor(name, x, start, stop, context)
        for op in ops:
            env[op.name] = self._run_op(op, [env[n] for n in op.inputs])
        return env[stop]

    @staticmethod
    def _context_tensor(
        name: str, x: Tensor, start: str, stop: str, context: Mapping[str, Tensor] | None
    ) -> Tensor:
        t = None
        if context is not None:
            try:
                t = context[name]
            except KeyError:
                t = None
        if t is None:
            raise SegmentError(
                f"the segment {start!r} -> {stop!r} needs the activation {name!r}, produced before "
                f"{start!r} (a residual block's input, added back after the branch). Pass "
                f"context=cache with the cache of a run_with_cache on the same inputs "
                f"(it must hold {name!r})."
            )
        rows, ctx_rows = x.shape[0], t.shape[0]
        if ctx_rows != rows:
            if ctx_rows == 0 or rows % ctx_rows != 0:
                raise ShapeMismatchError(
                    f"context[{name!r}] has {ctx_rows} rows but the activation at {start!r} has "
                    f"{rows}; expected the same number or a divisor of it (K·B rows laid out "
                    f"coefficient-major, with B rows in the context)."
                )
            t = t.repeat(rows // ctx_rows, *([1] * (t.dim() - 1)))
        return t.to(device=x.device, dtype=x.dtype)
