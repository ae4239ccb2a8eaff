"""README's claim, as a test: a trained tinynet model's ``state_dict()`` loads into the same
``torch.nn.Sequential``, and back (issue 21).

``state_dict()`` values and ``tn.load`` results are Tensors, as in PyTorch; one call converts
a tinynet state dict for torch: ``{k: torch.from_numpy(v.numpy()) for k, v in sd.items()}``.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

import tinynet as tn
from tinynet import nn


def build(lib: Any) -> Any:
    return lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.ReLU(), lib.nn.BatchNorm1d(8),
                             lib.nn.Linear(8, 3))


def train_a_little(model: Any, lib: Any, x: Any, y: Any) -> None:
    opt = lib.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    for _ in range(5):
        opt.zero_grad()
        loss = lib.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    model.eval()


def test_state_dict_values_are_tensors_that_clone_as_in_pytorch() -> None:
    model = build(tn)
    sd = model.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias", "2.running_mean",
                        "2.running_var", "2.num_batches_tracked", "3.weight", "3.bias"]
    assert all(isinstance(v, tn.Tensor) and v.grad_fn is None for v in sd.values())
    best = {k: v.clone() for k, v in sd.items()}  # the early-stopping idiom
    deep = copy.deepcopy(sd)
    with tn.no_grad():
        model[0].weight.add_(1.0)
    assert not np.array_equal(best["0.weight"].data, model[0].weight.data)
    assert not np.array_equal(deep["0.weight"].data, model[0].weight.data)
    model.load_state_dict(best)
    assert np.array_equal(model[0].weight.data, best["0.weight"].data)


def test_a_trained_model_loads_into_the_same_torch_sequential_and_back(tmp_path: Any) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)).astype(np.float32), rng.integers(0, 3, 16)
    ours = build(tn)
    train_a_little(ours, tn, tn.tensor(x), tn.tensor(y))

    theirs = build(torch)
    # the one call that converts a tinynet state dict for torch
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    theirs.eval()
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(tn.tensor(x)).data, expected, rtol=1e-5, atol=1e-6)

    # and back: torch trains on, tinynet reads torch's state dict as it is
    train_a_little(theirs, torch, torch.from_numpy(x), torch.from_numpy(y))
    again = build(tn)
    again.load_state_dict(theirs.state_dict())
    again.eval()
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(again(tn.tensor(x)).data, expected, rtol=1e-5, atol=1e-6)

    # through a file: tn.save / tn.load keep Tensors
    path = tmp_path / "model.npz"
    tn.save(again.state_dict(), path)
    loaded = tn.load(path)
    assert all(isinstance(v, tn.Tensor) for v in loaded.values())
    third = build(tn)
    third.load_state_dict(loaded)
    third.eval()
    np.testing.assert_array_equal(third(tn.tensor(x)).data, again(tn.tensor(x)).data)


def test_a_checkpoint_dict_round_trips_with_tensors(tmp_path: Any) -> None:
    model = nn.Linear(3, 2)
    opt = tn.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "ckpt.pt"
    tn.save({"epoch": 3, "model_state_dict": model.state_dict(),
             "optimizer_state_dict": opt.state_dict(), "loss": 0.25}, path)
    ckpt = tn.load(path, weights_only=True)
    assert ckpt["epoch"] == 3 and ckpt["loss"] == 0.25
    assert isinstance(ckpt["model_state_dict"]["weight"], tn.Tensor)
    fresh = nn.Linear(3, 2)
    fresh.load_state_dict(ckpt["model_state_dict"])
    tn.optim.SGD(fresh.parameters(), lr=0.1).load_state_dict(ckpt["optimizer_state_dict"])
    assert np.array_equal(fresh.weight.data, model.weight.data)
