"""The device questions and arguments of CPU-only PyTorch scripts (issue 21).

A script's first lines ask which device to use and pass it everywhere: ``tn.cuda`` and friends
answer as PyTorch does on a machine without a GPU, every creation function and ``Module.to``
take ``device="cpu"`` / ``tn.device("cpu")``, and any other device is refused naming the fix.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest

import tinynet as tn
from tinynet import nn

CREATION = {
    "tensor": lambda **kw: tn.tensor([1.0, 2.0], **kw),
    "as_tensor": lambda **kw: tn.as_tensor([1.0, 2.0], **kw),
    "zeros": lambda **kw: tn.zeros(2, 3, **kw),
    "ones": lambda **kw: tn.ones((2, 3), **kw),
    "empty": lambda **kw: tn.empty(2, **kw),
    "full": lambda **kw: tn.full((2,), 1.5, **kw),
    "zeros_like": lambda **kw: tn.zeros_like(tn.ones(2), **kw),
    "ones_like": lambda **kw: tn.ones_like(tn.ones(2), **kw),
    "full_like": lambda **kw: tn.full_like(tn.ones(2), 3.0, **kw),
    "arange": lambda **kw: tn.arange(0, 5, **kw),
    "linspace": lambda **kw: tn.linspace(0, 1, 5, **kw),
    "eye": lambda **kw: tn.eye(3, **kw),
    "randn": lambda **kw: tn.randn(2, 3, **kw),
    "rand": lambda **kw: tn.rand(2, 3, **kw),
    "rand_like": lambda **kw: tn.rand_like(tn.ones(2), **kw),
    "randn_like": lambda **kw: tn.randn_like(tn.ones(2), **kw),
    "randperm": lambda **kw: tn.randperm(4, **kw),
    "randint": lambda **kw: tn.randint(0, 10, (3,), **kw),
}


def test_every_creation_function_in_tinynet_takes_device() -> None:
    from tinynet import creation

    public = [name for name, f in vars(creation).items() if inspect.isfunction(f)
              and f.__module__ == "tinynet.creation" and not name.startswith("_")
              and name not in ("from_numpy", "check_device")]
    assert sorted(public) == sorted(CREATION)
    for name in public:
        assert "device" in inspect.signature(getattr(tn, name)).parameters, name


@pytest.mark.parametrize("name", sorted(CREATION))
@pytest.mark.parametrize("place", ["cpu", "cpu:0", tn.device("cpu"), None])
def test_creation_functions_accept_the_cpu(name: str, place: Any) -> None:
    tn.manual_seed(0)
    made = CREATION[name](device=place)
    tn.manual_seed(0)
    assert np.array_equal(made.data, CREATION[name]().data) and made.device == tn.device("cpu")


@pytest.mark.parametrize("name", sorted(CREATION))
@pytest.mark.parametrize("place", ["cuda", "cuda:0", "mps", "cpu:1"])
def test_creation_functions_refuse_other_devices_naming_the_fix(name: str, place: str) -> None:
    with pytest.raises(tn.ValueRangeError, match=rf"{name}: .*CPU only.*{place!r}.*'cpu'"):
        CREATION[name](device=place)


@pytest.mark.parametrize("name", ["zeros", "ones", "randn", "rand", "full", "arange",
                                  "linspace", "eye", "tensor", "randint", "randperm"])
def test_dtype_and_requires_grad_keywords_on_creation(name: str) -> None:
    dtype = tn.float64 if name not in ("randint", "randperm") else tn.int32
    made = CREATION[name](dtype=dtype)
    assert made.dtype == dtype
    if dtype == tn.float64:
        assert CREATION[name](dtype=dtype, requires_grad=True).requires_grad


def test_the_usual_device_line_picks_the_cpu_and_runs() -> None:
    device = tn.device("cuda" if tn.cuda.is_available() else "cpu")
    mps = "mps" if tn.backends.mps.is_available() else "cpu"
    accel = (tn.accelerator.current_accelerator() if tn.accelerator.is_available()
             else tn.device("cpu"))
    assert device == accel == tn.device(mps) == tn.device("cpu")
    model = nn.Linear(3, 2).to(device)
    x = tn.randn(4, 3, device=device)
    assert model(x).to(device).shape == (4, 2)


def test_cuda_answers_as_pytorch_without_a_gpu() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():  # the comparison is with a machine without CUDA
        pytest.skip("this torch sees a GPU")
    assert tn.cuda.is_available() is torch.cuda.is_available() is False
    assert tn.cuda.device_count() == torch.cuda.device_count() == 0
    assert tn.backends.mps.is_available() is False
    assert tn.backends.cudnn.is_available() is False
    assert tn.accelerator.is_available() is torch.accelerator.is_available()
    assert tn.accelerator.current_accelerator() is torch.accelerator.current_accelerator()
    tn.cuda.manual_seed(0)  # ignored without CUDA, as in PyTorch
    tn.cuda.manual_seed_all(0)
    tn.backends.cudnn.benchmark = True  # a switch for a backend tinynet does not have
    tn.backends.cudnn.benchmark = False
    with pytest.raises(tn.ValueRangeError, match="cuda.set_device: .*CPU only.*is_available"):
        tn.cuda.set_device(0)


def test_module_to_takes_device_dtype_both_and_keywords() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    weight = model[0].weight
    assert model.to("cpu") is model and model.to(tn.device("cpu")) is model
    assert model.to("cpu", tn.float64) is model and weight.dtype == tn.float64
    model.to(device="cpu", dtype=tn.float32, non_blocking=True)
    assert weight.dtype == tn.float32 and model[0].weight is weight
    model.to(tn.zeros(1, dtype=tn.float64))  # a tensor's dtype
    assert weight.dtype == tn.float64 and model[1].num_batches_tracked.dtype == tn.int64
    assert model.float() is model and weight.dtype == tn.float32
    assert model.double() is model and weight.dtype == tn.float64
    assert model.cpu() is model


@pytest.mark.parametrize("place", ["cuda", "cuda:0", "mps"])
def test_module_to_refuses_other_devices(place: str) -> None:
    with pytest.raises(tn.ValueRangeError, match=rf"Module.to: .*CPU only.*{place!r}"):
        nn.Linear(2, 2).to(place)
    with pytest.raises(tn.ValueRangeError, match="CPU only"):
        nn.Linear(2, 2).to(place, tn.float64)


def test_cuda_methods_refuse_naming_the_fix() -> None:
    with pytest.raises(tn.ValueRangeError, match=r"Linear.cuda: .*CPU only.*\.to\(device\)"):
        nn.Linear(2, 2).cuda()
    with pytest.raises(tn.ValueRangeError, match=r"cuda: .*CPU only.*\.to\(device\)"):
        tn.ones(2).cuda()
