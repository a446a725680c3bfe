"""Your own model as a list of ops: the contract derived, every op a hook point.

Declaring a model's ops (:class:`~hookdiff.contract.Op`: name, kind, inputs, module) is all the
analysis needs to know; :class:`OpGraph` derives the rest of the contract from that list
(``hook_names``, ``segment_ops``, ``run_segment``, ``forward``) and puts a TransformerLens
``HookPoint`` on every op's output under the op's own name, so ``steer(net, "relu1", ...)`` and
``capture(net, ["relu1"])`` take exactly the names the analysis reports.

Example:
    >>> class Net(OpGraph):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc, self.head = nn.Linear(3, 4), nn.Linear(4, 2)
    ...         self.set_ops([op("fc", self.fc), op("relu", "relu", "fc"),
    ...                       op("head", self.head, "relu")])
    >>> net = Net()
    >>> net.hook_names, net(torch.zeros(1, 3)).shape
    (('fc', 'relu', 'head'), torch.Size([1, 2]))
    >>> import hookdiff
    >>> with hookdiff.capture(net, ["relu"]) as acts:
    ...     _ = net(torch.zeros(1, 3))
    >>> acts["relu"].shape
    torch.Size([1, 4])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from hookdiff.contract import INPUT, OP_KINDS, Op, Readout
from hookdiff.errors import ConfigError
from hookdiff.ops import apply_op

__all__ = ["OpGraph", "op"]


def op(name: str, module_or_kind: nn.Module | str, *inputs: str) -> Op:
    """An :class:`~hookdiff.contract.Op` whose kind is read off its module (``nn.Conv2d``:
    ``"conv"``, ``nn.Linear``: ``"linear"``, ``nn.ReLU``: ``"relu"``, ...) or given as a kind
    (``"relu"``, ``"add"``, ``"flatten"``); no inputs: the previous op's output (the model's
    input for the first op, :meth:`OpGraph.set_ops` fills it in).

    Example:
        >>> op("h", nn.Linear(2, 2), "x").kind, op("y", "add", "a", "b").inputs
        ('linear', ('a', 'b'))
    """
    if isinstance(module_or_kind, str):
        if module_or_kind not in OP_KINDS:
            raise ConfigError(f"op {name!r}: kind {module_or_kind!r} is not one of {OP_KINDS}")
        return Op(name, module_or_kind, tuple(inputs))
    from hookdiff.segments import _module_kind

    return Op(name, _module_kind(module_or_kind), tuple(inputs), module_or_kind)


class OpGraph(HookedRootModule):
    """Base class of a model declared as ops: subclass it, build the modules, call
    :meth:`set_ops`. It then implements :class:`~hookdiff.contract.OpGraphModel` and
    :class:`~hookdiff.contract.DeclaresReadouts`, and each op's name is a hook point.

    Example:
        >>> class Tiny(OpGraph):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.set_ops([op("fc", nn.Linear(2, 2)), op("relu", "relu")])
        >>> Tiny().hook_names, "relu" in Tiny().hook_dict
        (('fc', 'relu'), True)
    """

    def set_ops(
        self,
        ops: Sequence[Op],
        *,
        output: str | None = None,
        output_dims: tuple[str, ...] | None = None,
        readouts: Sequence[Readout] = (),
    ) -> None:
        """Declare the ops in forward order (an op with no inputs reads the previous one);
        ``output``: the op the analysis follows as the output (default: the last)."""
        filled, previous = [], INPUT
        for o in ops:
            filled.append(o if o.inputs else Op(o.name, o.kind, (previous,), o.module))
            previous = o.name
        names = [o.name for o in filled]
        known = {INPUT}
        for o in filled:
            missing = [n for n in o.inputs if n not in known]
            if missing:
                raise ConfigError(f"op {o.name!r} reads {missing}, not an earlier op or the input")
            known.add(o.name)
        if len(set(names)) != len(names):
            raise ConfigError(f"op names must be unique; got {names}")
        self.ops = tuple(filled)
        self.hook_names = tuple(names)
        self.output_hook = output or names[-1]
        self.output_dims = output_dims
        self.readouts = tuple(readouts)
        self._points = nn.ModuleDict({f"op{i}": HookPoint() for i in range(len(names))})
        self.setup()
        self.hook_dict = {n: p for n, p in zip(names, self._points.values())}
        for n, p in self.hook_dict.items():
            p.name = n

    def segment_ops(self, start: str, stop: str) -> tuple[tuple[Op, ...], tuple[str, ...]]:
        """The ops ``stop`` needs after ``start``, and the earlier activations they read."""
        names = (INPUT, *self.hook_names)
        wanted, picked = {stop}, []
        for o in reversed(self.ops[names.index(start) : names.index(stop)]):
            if o.name in wanted:
                picked.append(o)
                wanted = (wanted - {o.name}) | set(o.inputs)
        return tuple(reversed(picked)), tuple(sorted(wanted - {start}, key=names.index))

    def run_segment(
        self, x: Tensor, start: str, stop: str, context: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        """The activation at ``stop`` from ``x`` at ``start``; every op's hook point fires."""
        ops, needed = self.segment_ops(start, stop)
        env = {start: x, **{n: (context or {})[n] for n in needed}}
        for o in ops:
            env[o.name] = self.hook_dict[o.name](apply_op(o, [env[n] for n in o.inputs]))
        return env[stop]

    def forward(self, x: Tensor) -> Tensor:
        """The model's output (:attr:`output_hook`) from its input."""
        return self.run_segment(x, INPUT, self.output_hook)
