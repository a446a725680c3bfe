"""Checkpoints: bit-identical round trip in the original format, and a clear error per bad file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from hookdiff.agent import (
    ImpalaPolicy,
    checkpoint_sha256,
    default_checkpoint_path,
    load_checkpoint,
    load_default,
    random_init_policy,
    save_checkpoint,
    write_random_checkpoint,
)
from hookdiff.errors import CheckpointError


@pytest.fixture(scope="module")
def policy() -> ImpalaPolicy:
    torch.manual_seed(0)
    return ImpalaPolicy(scale=1)


@pytest.fixture
def good_state(policy) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in policy.state_dict().items()}


@pytest.mark.parametrize("scale", [1, 2])
def test_round_trip_bit_identical(tmp_path: Path, scale: int) -> None:
    torch.manual_seed(scale)
    policy = ImpalaPolicy(scale=scale)
    path = save_checkpoint(policy, tmp_path / "agent.pt", step=7, note="x")
    loaded = load_checkpoint(path)
    assert loaded.scale == scale
    a, b = policy.state_dict(), loaded.state_dict()
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    obs = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(policy(obs), loaded(obs))
    raw = torch.load(path, weights_only=True)
    assert raw["step"] == 7 and raw["note"] == "x"
    assert list(tmp_path.iterdir()) == [tmp_path / "agent.pt"]  # no temp file left


def test_saved_format_is_plain_and_nchw(tmp_path: Path, policy) -> None:
    cl = ImpalaPolicy(scale=1)
    cl.load_state_dict(policy.state_dict())
    cl = cl.to(memory_format=torch.channels_last)
    save_checkpoint(cl, tmp_path / "a.pt")
    raw = torch.load(tmp_path / "a.pt", weights_only=True)
    assert set(raw) == {"model_state_dict"}
    state = raw["model_state_dict"]
    assert set(state) == set(policy.state_dict())  # no HookPoint entries, original keys
    for k, v in state.items():
        assert type(v) is torch.Tensor and v.is_contiguous(), k
        assert torch.equal(v, policy.state_dict()[k])
    # loads into a plain module with the same keys (what the original tooling does)
    plain = ImpalaPolicy(scale=1)
    plain.load_state_dict(state, strict=True)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_truncated_and_not_torch(tmp_path: Path, policy) -> None:
    path = save_checkpoint(policy, tmp_path / "a.pt")
    data = path.read_bytes()
    (tmp_path / "t.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="damaged torch checkpoint") as info:
        load_checkpoint(tmp_path / "t.pt")
    (tmp_path / "junk.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a torch checkpoint") as junk:
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"model_state_dict": {"x": _Custom()}}, tmp_path / "pickled.pt")
    with pytest.raises(CheckpointError, match="objects other than tensors") as pickled:
        load_checkpoint(tmp_path / "pickled.pt")
    for e in (info, junk, pickled):  # never torch's advice to turn the safety check off
        assert "weights_only" not in str(e.value) and "False" not in str(e.value)


class _Custom:
    """A Python object a weights_only load refuses to unpickle."""


def test_bare_state_dict(tmp_path: Path, good_state) -> None:
    torch.save(good_state, tmp_path / "bare.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "bare.pt")
    assert "found a bare state dict; expected {'model_state_dict': ...}" in str(info.value)


def test_wrong_wrapper_key(tmp_path: Path, good_state) -> None:
    torch.save({"state_dict": good_state}, tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match="no 'model_state_dict' key.*state_dict"):
        load_checkpoint(tmp_path / "w.pt")
    torch.save([1, 2], tmp_path / "l.pt")
    with pytest.raises(CheckpointError, match="list"):
        load_checkpoint(tmp_path / "l.pt")


def test_missing_and_unexpected_keys(tmp_path: Path, good_state) -> None:
    state = dict(good_state)
    del state["fc_value.bias"]
    state["embedder.block4.conv.weight"] = torch.zeros(1)
    torch.save({"model_state_dict": state}, tmp_path / "k.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "k.pt")
    message = str(info.value)
    assert "Missing: ['fc_value.bias']" in message
    assert "Unexpected: ['embedder.block4.conv.weight']" in message


def test_shapes_that_differ(tmp_path: Path, good_state) -> None:
    state = dict(good_state)
    state["embedder.block2.res1.conv1.weight"] = torch.zeros(32, 32, 5, 5)
    torch.save({"model_state_dict": state}, tmp_path / "s.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "s.pt")
    message = str(info.value)
    assert (
        "embedder.block2.res1.conv1.weight: found (32, 32, 5, 5), expected (32, 32, 3, 3)"
        in message
    )
    assert "scale 1" in message


def test_mixed_scales_rejected(tmp_path: Path, good_state) -> None:
    big = ImpalaPolicy(scale=2).state_dict()
    state = dict(good_state)
    state["embedder.block1.conv.weight"] = big["embedder.block1.conv.weight"]
    state["embedder.block1.conv.bias"] = big["embedder.block1.conv.bias"]
    torch.save({"model_state_dict": state}, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="scale 2.*expected"):
        load_checkpoint(tmp_path / "m.pt")


def test_sha256(tmp_path: Path, policy) -> None:
    path = save_checkpoint(policy, tmp_path / "a.pt")
    assert checkpoint_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_load_default_not_shipped_yet() -> None:
    path = default_checkpoint_path()
    assert path.name == "impala_maze_s1.pt" and path.parent.name == "weights"
    if path.exists():
        assert isinstance(load_default(), ImpalaPolicy)
    else:
        with pytest.raises(FileNotFoundError, match="no agent is shipped yet"):
            load_default()


def test_extra_metadata_must_be_plain(tmp_path: Path, policy) -> None:
    with pytest.raises(TypeError, match="weights_only"):
        save_checkpoint(policy, tmp_path / "a.pt", bad=object())
    with pytest.raises(ValueError, match="model_state_dict"):
        save_checkpoint(policy, tmp_path / "a.pt", model_state_dict={})
    assert not list(tmp_path.iterdir())


def test_random_scale4_checkpoint_is_the_published_size_and_seeded(tmp_path: Path) -> None:
    path = write_random_checkpoint(tmp_path / "s4.pt", scale=4, seed=7)
    policy = load_checkpoint(path)
    assert policy.scale == 4
    assert sum(p.numel() for p in policy.parameters()) == 3_653_136
    assert policy.embedder.block1.conv.out_channels == 64
    assert policy.embedder.block3.res2.conv2.out_channels == 128
    assert torch.load(path, weights_only=True)["random_init_seed"] == 7
    again = write_random_checkpoint(tmp_path / "again.pt", scale=4, seed=7)
    other = load_checkpoint(write_random_checkpoint(tmp_path / "other.pt", scale=4, seed=8))
    for (name, a), b, c in zip(
        policy.state_dict().items(),
        load_checkpoint(again).state_dict().values(),
        other.state_dict().values(),
    ):
        assert torch.equal(a, b), name
        if name.endswith("weight"):
            assert not torch.equal(a, c), name


def test_random_init_policy_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = random_init_policy(1, seed=5)
    assert torch.equal(torch.rand(3), expected)
    second = random_init_policy(1, seed=5)
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters()))
