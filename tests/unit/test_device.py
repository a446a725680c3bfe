"""Devices: the one resolver of --device values, the configs' device field, the CLI's errors, and
(on a machine with a GPU) the analysis on CUDA equal to the CPU's in float64."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from hookdiff import _config, line_breakpoints, line_response, linear_response, resolve_device
from hookdiff._device import available_devices, ieee_float32, model_device
from hookdiff.cli import build_parser, main, study_config
from hookdiff.errors import ConfigError
from hookdiff.study.config import StudyConfig
from hookdiff.tiny import make_tiny_convnet
from hookdiff.training.evaluate import EvalConfig
from hookdiff.training.train import TrainConfig

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(
    not HAS_CUDA, reason="no CUDA GPU: torch.cuda.is_available() is False on this machine"
)
needs_no_cuda = pytest.mark.skipif(
    HAS_CUDA, reason="this machine has a CUDA GPU, so asking for one cannot fail"
)


def _one_line_error(capsys, *argv: str) -> str:
    """Run ``hookdiff argv``; check exit 2 and one line on stderr; return that line."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------------- resolver (any machine)


def test_cpu_and_auto_resolve(monkeypatch) -> None:
    monkeypatch.delenv("HOOKDIFF_DEVICE", raising=False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if HAS_CUDA else "cpu")
    assert resolve_device().type == resolve_device("auto").type
    assert available_devices()[0] == "cpu"


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cpu:0:1", "", "CUDA"])
def test_a_misspelled_device_names_the_valid_ones(bad: str) -> None:
    with pytest.raises(ConfigError) as e:
        resolve_device(bad)
    message = str(e.value)
    assert repr(bad) in message and "'cpu'" in message and "'cuda'" in message


@needs_no_cuda
@pytest.mark.parametrize("asked", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_on_a_machine_without_one_names_what_is_available(asked: str) -> None:
    with pytest.raises(ConfigError) as e:
        resolve_device(asked)
    message = str(e.value)
    assert f"device {asked!r} is not available" in message
    assert "torch sees no CUDA GPU" in message and "available: 'cpu'" in message


@needs_cuda
def test_a_gpu_index_past_the_last_gpu_is_refused() -> None:
    n = torch.cuda.device_count()
    assert resolve_device(f"cuda:{n - 1}") == torch.device(f"cuda:{n - 1}")
    with pytest.raises(ConfigError, match="no such GPU"):
        resolve_device(f"cuda:{n}")


def test_hookdiff_device_says_what_auto_means(monkeypatch) -> None:
    monkeypatch.setenv("HOOKDIFF_DEVICE", "cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")  # only "auto" reads it
    monkeypatch.setenv("HOOKDIFF_DEVICE", "gpu")
    with pytest.raises(ConfigError, match="--device auto reads HOOKDIFF_DEVICE='gpu'"):
        resolve_device("auto")


def test_model_device_is_where_the_parameters_are() -> None:
    assert model_device(nn.Linear(2, 2)) == torch.device("cpu")
    assert model_device(nn.ReLU()) == torch.device("cpu")  # nothing to read: the CPU


def test_ieee_float32_sets_and_restores_the_precision() -> None:
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    before = (conv.fp32_precision, matmul.fp32_precision)
    with ieee_float32():
        assert (conv.fp32_precision, matmul.fp32_precision) == ("ieee", "ieee")
    assert (conv.fp32_precision, matmul.fp32_precision) == before
    with pytest.raises(RuntimeError), ieee_float32():
        raise RuntimeError("restored on errors too")
    assert (conv.fp32_precision, matmul.fp32_precision) == before


# ------------------------------------------------------------------------- configs and the CLI


@pytest.mark.parametrize("cls", [StudyConfig, EvalConfig, TrainConfig])
def test_every_config_has_a_checked_device_field(cls: type) -> None:
    assert cls().device == "auto"
    for ok in ("auto", "cpu", "cuda", "cuda:3"):  # spelling only: presence is checked on use
        _config.check(dataclasses.replace(cls(), device=ok))
    with pytest.raises(ConfigError) as e:
        _config.check(dataclasses.replace(cls(), device="gpu"))
    assert f"{cls.__name__}.device = 'gpu' (--device)" in str(e.value)


def test_device_cpu_is_recorded_in_the_study_config() -> None:
    args = build_parser().parse_args(["study", "--quick", "--device", "cpu"])
    config = study_config(args)
    assert config.device == "cpu" and '"device": "cpu"' in config.to_json()


@pytest.mark.parametrize("command", ["study", "eval", "train"])
def test_a_misspelled_device_is_one_line_and_exit_2(capsys, command: str) -> None:
    line = _one_line_error(capsys, command, "--device", "gpu")
    assert "--device" in line and "'gpu'" in line and "'cuda'" in line


@needs_no_cuda
@pytest.mark.parametrize("command", ["study", "eval", "train"])
def test_cuda_without_a_gpu_is_one_line_and_exit_2(capsys, tmp_path, command: str) -> None:
    out = ["--out", str(tmp_path / "run")] if command != "eval" else []
    line = _one_line_error(capsys, command, "--device", "cuda", *out)
    assert line.startswith(f"hookdiff {command}: error: device 'cuda' is not available")
    assert "available: 'cpu'" in line
    assert not (tmp_path / "run").exists()  # refused before any work


# ------------------------------------------------------------------------- GPU: equal to the CPU


def _tiny_line() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A float64 tiny convnet, activations after its first layer and a random direction."""
    net = make_tiny_convnet(seed=0).double().eval()
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(3, 3, 8, 8, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        a = net[0](x)
    v = torch.randn(a.shape[1:], generator=gen, dtype=torch.float64)
    return net, a, v


@needs_cuda
def test_linear_and_line_response_on_cuda_equal_the_cpu_in_float64() -> None:
    net, a, v = _tiny_line()
    ts = [-2.0, -0.5, 0.0, 0.5, 2.0]
    cpu = linear_response(net, a, "0", v, ts)
    gpu_net = make_tiny_convnet(seed=0).double().eval().cuda()
    gpu = linear_response(gpu_net, a.cuda(), "0", v.cuda(), ts)
    for name in ("diff_norm", "linear_norm", "residual_norm", "flip_fraction"):
        np.testing.assert_allclose(gpu[name].values, cpu[name].values, rtol=1e-9, atol=1e-12)
    depth = str(len(net) - 1)  # the logits
    r_cpu = line_response(net, a, "0", v, ts, depth=depth)
    r_gpu = line_response(gpu_net, a, "0", v, ts, depth=depth)  # CPU inputs: moved to the GPU
    np.testing.assert_allclose(r_gpu.values, r_cpu.values, rtol=1e-9, atol=1e-12)


@needs_cuda
def test_line_breakpoints_on_cuda_equal_the_cpu() -> None:
    net, a, v = _tiny_line()
    cpu = line_breakpoints(net, a, "0", v, (-3.0, 3.0))
    gpu_net = make_tiny_convnet(seed=0).double().eval().cuda()
    gpu = line_breakpoints(gpu_net, a.cuda(), "0", v.cuda(), (-3.0, 3.0))
    assert cpu["breakpoint_t"].size > 0
    assert gpu["breakpoint_t"].size == cpu["breakpoint_t"].size
    np.testing.assert_allclose(gpu["breakpoint_t"].values, cpu["breakpoint_t"].values, atol=1e-9)
    np.testing.assert_array_equal(gpu["n_pieces"].values, cpu["n_pieces"].values)
