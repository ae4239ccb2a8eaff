"""``tn.Generator``, PyTorch's ``randint`` signatures and dtype aliases (issue 21)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tinynet as tn


def test_a_generator_gives_reproducible_draws_without_touching_the_global_stream() -> None:
    tn.manual_seed(5)
    expected_global = tn.rand(3).data
    tn.manual_seed(5)
    g = tn.Generator().manual_seed(11)
    first = [tn.randn(4, generator=g).data, tn.rand(2, generator=g).data,
             tn.randint(0, 9, (3,), generator=g).data, tn.randperm(6, generator=g).data]
    assert np.array_equal(tn.rand(3).data, expected_global)  # the global stream did not move
    g.manual_seed(11)
    again = [tn.randn(4, generator=g).data, tn.rand(2, generator=g).data,
             tn.randint(0, 9, (3,), generator=g).data, tn.randperm(6, generator=g).data]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert g.initial_seed() == 11


def test_generator_state_round_trips_and_seed_returns_the_new_seed() -> None:
    g = tn.Generator()
    new = g.seed()
    assert isinstance(new, int) and g.initial_seed() == new
    state = g.get_state()
    assert isinstance(state, tn.Tensor) and state.dtype == tn.uint8
    a = tn.randn(5, generator=g)
    g.set_state(state)
    assert np.array_equal(tn.randn(5, generator=g).data, a.data)
    other = tn.Generator().set_state(state)
    assert np.array_equal(tn.randn(5, generator=other).data, a.data)
    with pytest.raises(tn.ValueRangeError, match="set_state: not a state"):
        g.set_state(tn.zeros(4, dtype=tn.uint8))


def test_a_generator_drives_init_loader_and_random_split() -> None:
    dataset = tn.utils.data.TensorDataset(tn.arange(10))

    def run() -> list[Any]:
        g = tn.Generator().manual_seed(3)
        w = tn.empty(3, 3)
        tn.nn.init.normal_(w, generator=g)
        order = [b[0].tolist() for b in tn.utils.data.DataLoader(dataset, batch_size=5,
                                                                 shuffle=True, generator=g)]
        parts = [p.indices for p in tn.utils.data.random_split(range(6), [3, 3], generator=g)]
        return [w.tolist(), order, parts]

    assert run() == run()


def test_global_initial_seed_is_the_last_manual_seed() -> None:
    tn.manual_seed(1234)
    assert tn.initial_seed() == 1234


def test_generator_refuses_other_devices() -> None:
    with pytest.raises(tn.ValueRangeError, match="CPU only"):
        tn.Generator(device="cuda")


@pytest.mark.parametrize("call, low, high, shape", [
    (lambda: tn.randint(10, (3,)), 0, 10, (3,)),
    (lambda: tn.randint(3, 7, (2, 4)), 3, 7, (2, 4)),
    (lambda: tn.randint(3, 7, size=(5,)), 3, 7, (5,)),
    (lambda: tn.randint(7, size=(5,)), 0, 7, (5,)),
    (lambda: tn.randint(high=4, size=(6,)), 0, 4, (6,)),
    (lambda: tn.randint(low=2, high=4, size=(6,)), 2, 4, (6,)),
    (lambda: tn.randint(-5, 5, [2, 2]), -5, 5, (2, 2)),
])
def test_randint_takes_pytorchs_signatures(call: Any, low: int, high: int,
                                           shape: tuple[int, ...]) -> None:
    out = call()
    assert out.shape == shape and out.dtype == tn.int64
    assert low <= int(out.data.min()) and int(out.data.max()) < high


def test_randint_signatures_agree_with_torch_on_shape_dtype_and_range() -> None:
    torch = pytest.importorskip("torch")
    for args, kwargs in [((10, (3,)), {}), ((2, 5, (2, 2)), {}), ((5,), {"size": (4,)}),
                         ((0, 3), {"size": (2,), "dtype": "int32"})]:
        tkw = {k: getattr(torch, v) if k == "dtype" else v for k, v in kwargs.items()}
        ours, theirs = tn.randint(*args, **kwargs), torch.randint(*args, **tkw)
        assert ours.shape == tuple(theirs.shape)
        assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")


def test_dtype_aliases_are_pytorchs() -> None:
    torch = pytest.importorskip("torch")
    for name in ("bool", "int", "short", "long", "float", "double", "half", "uint8", "int8",
                 "int16", "int32", "int64", "float16", "float32", "float64"):
        ours, theirs = getattr(tn, name), getattr(torch, name)
        assert str(ours) == str(theirs).removeprefix("torch."), name
    assert tn.zeros(2, dtype=tn.bool).dtype == np.bool_
    assert (tn.ones(3) > 0).dtype == tn.bool
