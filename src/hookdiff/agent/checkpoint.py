"""Load and save IMPALA checkpoints in the original format, and find the shipped agent.

The original maze agents are stored as ``torch.save({"model_state_dict": state_dict, ...})`` with
keys ``embedder.block{1,2,3}.conv.*``, ``embedder.block{b}.res{1,2}.conv{1,2}.*``,
``embedder.fc.*``, ``fc_policy.*``, ``fc_value.*``. The scale (channels 16·scale, ...) follows from
the weights, so any scale loads without global state. Files are read with ``weights_only=True``
and validated key by key and shape by shape, so a wrong file fails with a message that names what
differs; files are written atomically in the same format (loadable by the original tooling).
:func:`write_random_checkpoint` writes a seeded random-init policy of any scale in that format: a
stand-in for the published scale-4 agents' weights, to measure what a study of that size costs.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from hookdiff._io import atomic_write
from hookdiff.agent.impala import ImpalaPolicy
from hookdiff.errors import CheckpointError

__all__ = [
    "DEFAULT_CHECKPOINT_NAME",
    "checkpoint_sha256",
    "default_checkpoint_path",
    "load_checkpoint",
    "load_default",
    "random_init_policy",
    "save_checkpoint",
    "write_random_checkpoint",
]

#: File name of the shipped agent inside ``hookdiff/agent/weights/``.
DEFAULT_CHECKPOINT_NAME = "impala_maze_s1.pt"

_WRAPPER_KEY = "model_state_dict"
_SCALE_KEY = "embedder.block1.conv.weight"


def _expected_shapes(scale: int, num_actions: int) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of an ImpalaPolicy, computed without allocating its weights."""
    with torch.device("meta"):
        model = ImpalaPolicy(scale=scale, num_actions=num_actions)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _validate(state: Mapping[str, Any], path: Path) -> tuple[int, int]:
    """Check keys, types and shapes of a state dict; return (scale, num_actions)."""
    expected_keys = set(_expected_shapes(1, 15))
    keys = set(state)
    missing, unexpected = sorted(expected_keys - keys), sorted(keys - expected_keys)
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: model_state_dict does not hold the IMPALA policy's keys. "
            f"Missing: {missing or 'none'}. Unexpected: {unexpected or 'none'}. Expected exactly "
            f"the {len(expected_keys)} keys embedder.block{{1,2,3}}.conv.*, "
            f"embedder.block{{b}}.res{{1,2}}.conv{{1,2}}.*, embedder.fc.*, fc_policy.*, fc_value.*."
        )
    not_tensors = sorted(k for k, v in state.items() if not isinstance(v, Tensor))
    if not_tensors:
        raise CheckpointError(
            f"{path}: model_state_dict values must be tensors; {not_tensors} are not."
        )
    first = state[_SCALE_KEY]
    if first.dim() != 4 or first.shape[0] % 16 != 0 or first.shape[0] == 0:
        raise CheckpointError(
            f"{path}: {_SCALE_KEY} has shape {tuple(first.shape)}; expected (16·scale, 3, 3, 3) "
            f"for a positive integer scale."
        )
    scale = first.shape[0] // 16
    num_actions = state["fc_policy.bias"].shape[0] if state["fc_policy.bias"].dim() == 1 else 15
    expected = _expected_shapes(scale, num_actions)
    wrong = [
        f"{k}: found {tuple(state[k].shape)}, expected {shape}"
        for k, shape in expected.items()
        if tuple(state[k].shape) != shape
    ]
    if wrong:
        raise CheckpointError(
            f"{path}: parameter shapes differ from the IMPALA policy at scale {scale} (inferred "
            f"from {_SCALE_KEY}, {tuple(first.shape)}): " + "; ".join(wrong) + ". A different "
            "architecture, or a corrupted file."
        )
    return scale, num_actions


def _unreadable(path: Path, error: Exception) -> str:
    """Why ``torch.load`` could not read ``path``, in our words: torch's own message advises
    loading with ``weights_only=False``, which would run whatever code the file holds."""
    with open(path, "rb") as f:
        zip_header = f.read(4) == b"PK\x03\x04"
    if zip_header and not zipfile.is_zipfile(path):
        return f"a damaged torch checkpoint (truncated or corrupted: {type(error).__name__})."
    if not zip_header:
        return (
            "not a torch checkpoint (torch.save writes a zip archive; this file is not one). "
            "Expected a .pt file written by hookdiff train or torch.save."
        )
    if isinstance(error, pickle.UnpicklingError):
        return (
            "holds Python objects other than tensors, which hookdiff does not unpickle (that "
            "could run code from the file). Save {'model_state_dict': policy.state_dict()} "
            "with torch.save and load that."
        )
    return f"a damaged torch checkpoint (truncated or corrupted: {type(error).__name__})."


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> ImpalaPolicy:
    """Load an IMPALA policy from an original-format checkpoint, at whatever scale it has.

    Args:
        path: A file written as ``torch.save({"model_state_dict": state_dict, ...})``.
        map_location: Passed to ``torch.load``.

    Returns:
        An :class:`ImpalaPolicy` in eval mode holding the checkpoint's weights.

    Raises:
        CheckpointError: the file is missing, unreadable or truncated, not wrapped in
            ``{"model_state_dict": ...}``, or its keys or shapes are not the policy's (the
            message lists the missing/unexpected keys or the shapes that differ).

    Example:
        >>> policy = load_checkpoint(default_checkpoint_path())
        >>> policy.scale
        1
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path} (expected a torch .pt file).")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # not a torch file, a damaged one, unsafe pickle: all unreadable
        raise CheckpointError(f"{path}: {_unreadable(path, e)}") from e
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{path}: holds a {type(obj).__name__}; expected a dict {{'model_state_dict': ...}}."
        )
    if _WRAPPER_KEY not in obj:
        if obj and all(isinstance(v, Tensor) for v in obj.values()):
            raise CheckpointError(
                f"{path}: found a bare state dict; expected {{'model_state_dict': ...}}. Wrap it: "
                f"torch.save({{'model_state_dict': state_dict}}, path), or use save_checkpoint."
            )
        raise CheckpointError(
            f"{path}: no 'model_state_dict' key; found keys {sorted(map(str, obj))[:20]}. "
            f"Expected {{'model_state_dict': ...}}."
        )
    state = obj[_WRAPPER_KEY]
    if not isinstance(state, Mapping):
        raise CheckpointError(
            f"{path}: 'model_state_dict' holds a {type(state).__name__}; expected a dict of tensors."
        )
    scale, num_actions = _validate(state, path)
    policy = ImpalaPolicy(scale=scale, num_actions=num_actions)
    policy.load_state_dict(state, strict=True)
    return policy.eval()


def _check_extra(value: Any, key: str) -> None:
    plain = (str, int, float, bool, type(None), Tensor)
    if isinstance(value, plain):
        return
    if isinstance(value, list | tuple):
        for v in value:
            _check_extra(v, key)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _check_extra(k, key)
            _check_extra(v, key)
        return
    raise TypeError(
        f"save_checkpoint extra {key!r} holds a {type(value).__name__}; only str/int/float/bool/"
        f"None/tensors and lists/dicts of them load back with weights_only=True."
    )


def save_checkpoint(policy: ImpalaPolicy, path: str | os.PathLike[str], **extra: Any) -> Path:
    """Write ``{"model_state_dict": ..., **extra}`` atomically, in the original format.

    The state dict holds exactly the original keys as plain, contiguous (NCHW) CPU tensors, even
    for a policy moved to ``channels_last`` or another device, so the original tooling loads it.

    Args:
        policy: The policy to save.
        path: Destination; written through a temporary file in the same folder and
            ``os.replace``, so a crash never leaves a half-written checkpoint.
        **extra: Extra top-level metadata (e.g. ``step=...``, ``config={...}``): plain Python
            values and tensors only.

    Returns:
        The path written.

    Example:
        >>> import tempfile, pathlib
        >>> path = save_checkpoint(ImpalaPolicy(), pathlib.Path(tempfile.mkdtemp()) / "a.pt", step=0)
        >>> load_checkpoint(path).num_actions
        15
    """
    if _WRAPPER_KEY in extra:
        raise ValueError(f"{_WRAPPER_KEY!r} is written from the policy; do not pass it in extra.")
    for key, value in extra.items():
        _check_extra(value, key)
    state = {
        k: v.detach().to("cpu").contiguous(memory_format=torch.contiguous_format)
        for k, v in policy.state_dict().items()
    }
    path = Path(path)
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        torch.save({_WRAPPER_KEY: state, **extra}, f)
        f.flush()
        os.fsync(f.fileno())
    return path


def checkpoint_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a checkpoint file (recorded in the metadata of every result).

    Example:
        >>> checkpoint_sha256(default_checkpoint_path())[:12]   # the shipped agent
        '5048e03038cf'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def default_checkpoint_path() -> Path:
    """Where the shipped agent lives: ``hookdiff/agent/weights/impala_maze_s1.pt``."""
    return Path(__file__).resolve().parent / "weights" / DEFAULT_CHECKPOINT_NAME


def load_default(map_location: Any = "cpu") -> ImpalaPolicy:
    """Load the agent shipped with hookdiff.

    Raises:
        FileNotFoundError: no agent is shipped yet (it is trained by a later issue); load your own
            with :func:`load_checkpoint`.

    Example:
        >>> load_default().hook_names[-2:]
        ('fc_policy_out', 'fc_value_out')
    """
    path = default_checkpoint_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"no agent is shipped yet: {path} does not exist. Train one, or load a checkpoint of "
            f"the original format with hookdiff.agent.load_checkpoint(path)."
        )
    return load_checkpoint(path, map_location=map_location)


def random_init_policy(scale: int = 1, seed: int = 0) -> ImpalaPolicy:
    """A random-init ImpalaPolicy of ``scale`` from torch seed ``seed`` (the global RNG untouched),
    in eval mode, on the CPU: the same seed gives the same weights on every machine.

    Example:
        >>> random_init_policy(1, 0).scale
        1
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ImpalaPolicy(scale=scale).eval()


def write_random_checkpoint(path: str | os.PathLike[str], scale: int = 4, seed: int = 0) -> Path:
    """Write a seeded random-init policy of ``scale`` as an original-format checkpoint.

    Scale 4 (channels 64, 128, 128; 3,653,136 parameters) is the size of the published maze
    agents, whose weights hookdiff cannot ship: this file has their shape, not their behaviour,
    so ``hookdiff study --checkpoint PATH`` on it measures the time and memory of a study at
    publication scale. The seed is stored in the file (``random_init_seed``).

    Returns:
        The path written.

    Example:
        >>> import tempfile, pathlib
        >>> path = write_random_checkpoint(pathlib.Path(tempfile.mkdtemp()) / "s4.pt", scale=2)
        >>> load_checkpoint(path).scale
        2
    """
    policy = random_init_policy(scale, seed)
    return save_checkpoint(policy, path, random_init_seed=int(seed))
