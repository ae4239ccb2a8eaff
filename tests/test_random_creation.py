"""tn.manual_seed, randperm, rand_like/randn_like, and sizes too large to create, with PyTorch
as the oracle for what is accepted and what is refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinynet as tn
import tinynet.data

torch = pytest.importorskip("torch")

NAN, INF = float("nan"), float("inf")


# ---- manual_seed ----------------------------------------------------------------------------

SEEDS = [0, 1, 12345, -1, -(2**63), 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 2**70, 1.5, 2.0,
         True, "3", "abc", None, NAN, INF, -INF, [1, 2], (3,), "", b"7"]


@pytest.mark.parametrize("seed", SEEDS, ids=repr)
def test_manual_seed_accepts_exactly_what_torch_accepts(seed: Any) -> None:
    try:
        torch.manual_seed(seed)
    except (TypeError, ValueError, OverflowError) as e:
        torch_error: BaseException | None = e
    else:
        torch_error = None
    try:
        tn.manual_seed(seed)
    except tn.TinynetError as e:
        assert torch_error is not None, f"torch accepts {seed!r}, tinynet raised {e}"
        assert "manual_seed" in str(e) and "seed" in str(e)
        # the same builtin family as torch's refusal (TypeError for None and lists...)
        if isinstance(torch_error, TypeError):
            assert isinstance(e, TypeError), (torch_error, e)
        else:
            assert isinstance(e, ValueError), (torch_error, e)
    else:
        assert torch_error is None, f"torch refuses {seed!r} ({torch_error}), tinynet accepts"


def draws(seed: Any) -> np.ndarray:
    tn.manual_seed(seed)
    return tn.randn(5, dtype=tn.float64).data


@pytest.mark.parametrize("seed, same_as", [
    (-1, 2**64 - 1), (-(2**63), 2**63), (-5, 2**64 - 5), (1.9, 1), ("42", 42), (True, 1),
])
def test_seeds_are_read_as_torch_reads_them(seed: Any, same_as: int) -> None:
    """torch: a negative seed counts modulo 2**64 and int() reads the rest; torch's
    initial_seed() shows both seeds are the same one."""
    torch.manual_seed(seed)
    assert torch.initial_seed() == same_as % 2**64
    np.testing.assert_array_equal(draws(seed), draws(same_as))


def test_different_seeds_give_different_numbers_and_the_same_seed_the_same() -> None:
    assert not np.array_equal(draws(0), draws(1))
    assert not np.array_equal(draws(-1), draws(1))
    np.testing.assert_array_equal(draws(7), draws(7))


@pytest.mark.parametrize("bad, error", [(None, tn.DTypeError), ("abc", tn.ValueRangeError),
                                        (NAN, tn.ValueRangeError), (2**70, tn.ValueRangeError)])
def test_a_seed_given_as_generator_is_checked_like_manual_seed(bad: Any, error: type) -> None:
    if bad is None:  # None means "the global generator" for generator=
        bad = [1]
    for call in (lambda: tn.randn(2, generator=bad), lambda: tn.randperm(3, generator=bad),
                 lambda: tinynet.data.two_moons(10, seed=bad)):
        with pytest.raises(error, match="seed"):
            call()


def test_negative_seeds_work_wherever_a_seed_is_taken() -> None:
    np.testing.assert_array_equal(tn.randn(3, generator=-1).data,
                                  tn.randn(3, generator=2**64 - 1).data)
    X1, _ = tinynet.data.two_moons(10, seed=-3)
    X2, _ = tinynet.data.two_moons(10, seed=2**64 - 3)
    np.testing.assert_array_equal(X1, X2)


# ---- randperm -------------------------------------------------------------------------------

PERM_DTYPES = ["int64", "int32", "int16", "int8", "uint8", "float32", "float64", "float16"]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 300), dtype=st.sampled_from(PERM_DTYPES))
def test_randperm_is_a_permutation_with_torchs_dtype_and_refusals(n: int, dtype: str) -> None:
    try:
        expected = torch.randperm(n, dtype=getattr(torch, dtype))
    except (RuntimeError, ValueError, NotImplementedError):
        with pytest.raises(tn.TinynetError, match="randperm"):
            tn.randperm(n, dtype=dtype)
        return
    result = tn.randperm(n, dtype=dtype)
    assert result.shape == tuple(expected.shape) == (n,)
    assert str(result.dtype) == str(expected.dtype).removeprefix("torch.")
    assert sorted(result.data.tolist()) == list(range(n))


def test_randperm_defaults_to_int64_and_shuffles() -> None:
    tn.manual_seed(0)
    p = tn.randperm(50)
    assert p.dtype == np.int64 and p.shape == (50,) and p.requires_grad is False
    assert p.data.tolist() != list(range(50))
    assert tn.randperm(0).shape == (0,) and tn.randperm(1).data.tolist() == [0]


def test_randperm_follows_manual_seed_and_its_generator() -> None:
    tn.manual_seed(3)
    a = tn.randperm(20).data
    tn.manual_seed(3)
    np.testing.assert_array_equal(a, tn.randperm(20).data)
    np.testing.assert_array_equal(tn.randperm(20, generator=np.random.default_rng(9)).data,
                                  tn.randperm(20, generator=9).data)


def test_randperm_float_can_require_grad_as_in_torch() -> None:
    assert torch.randperm(3, dtype=torch.float32, requires_grad=True).requires_grad
    assert tn.randperm(3, dtype=tn.float32, requires_grad=True).requires_grad


@pytest.mark.parametrize("n, dtype", [(-1, "int64"), (5, "bool"), (300, "uint8"),
                                      (3.0, "int64"), (True, "int64"), ("3", "int64"),
                                      (2**70, "int64"), (2**40, "int64")])
def test_randperm_refuses_what_torch_refuses(n: Any, dtype: str) -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011 - torch's classes vary; refused is the point
        torch.randperm(n, dtype=getattr(torch, dtype))
    with pytest.raises(tn.TinynetError, match="randperm"):
        tn.randperm(n, dtype=dtype)


# ---- rand_like / randn_like -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["rand_like", "randn_like"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("override", [None, "float64"])
def test_like_functions_take_the_shape_and_dtype_as_torch(name: str, dtype: str,
                                                          override: str | None) -> None:
    x = np.zeros((2, 0, 3) if dtype == "float16" else (3, 4), dtype)
    kwargs = {} if override is None else {"dtype": override}
    ours = getattr(tn, name)(tn.from_numpy(x), **kwargs)
    theirs = getattr(torch, name)(torch.from_numpy(x),
                                  **{k: getattr(torch, v) for k, v in kwargs.items()})
    assert ours.shape == tuple(theirs.shape)
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
    assert ours.requires_grad is False


def test_rand_like_is_uniform_in_0_1_and_reproducible() -> None:
    x = tn.zeros(4000)
    tn.manual_seed(0)
    u = tn.rand_like(x).data
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.03
    tn.manual_seed(0)
    np.testing.assert_array_equal(tn.rand_like(x).data, u)
    np.testing.assert_array_equal(tn.rand_like(x, generator=5).data,
                                  tn.rand(4000, generator=5).data)
    assert tn.rand_like(x, requires_grad=True).requires_grad


@pytest.mark.parametrize("name", ["rand_like", "randn_like"])
def test_like_functions_refuse_integer_input_as_torch(name: str) -> None:
    with pytest.raises(NotImplementedError):
        getattr(torch, name)(torch.ones(2, dtype=torch.int64))
    with pytest.raises(tn.DTypeError, match=rf"{name}.*float dtype.*int64"):
        getattr(tn, name)(tn.ones(2, dtype=tn.int64))


def test_new_functions_are_exported() -> None:
    for name in ("rand_like", "randn_like", "randperm"):
        assert name in tn.__all__ and callable(getattr(tn, name))


# ---- sizes too large ------------------------------------------------------------------------

HUGE_CALLS = {
    "zeros": (lambda n: tn.zeros(n), lambda n: torch.zeros(n)),
    "ones": (lambda n: tn.ones(2, n), lambda n: torch.ones(2, n)),
    "empty": (lambda n: tn.empty(n), lambda n: torch.empty(n)),
    "full": (lambda n: tn.full((n,), 1.5), lambda n: torch.full((n,), 1.5)),
    "randn": (lambda n: tn.randn(n), lambda n: torch.randn(n)),
    "rand": (lambda n: tn.rand(n, 3), lambda n: torch.rand(n, 3)),
    "randint": (lambda n: tn.randint(0, 5, (n,)), lambda n: torch.randint(0, 5, (n,))),
    "randperm": (lambda n: tn.randperm(n), lambda n: torch.randperm(n)),
    "eye": (lambda n: tn.eye(n), lambda n: torch.eye(n)),
    "linspace": (lambda n: tn.linspace(0, 1, n), lambda n: torch.linspace(0, 1, n)),
    "arange": (lambda n: tn.arange(n), lambda n: torch.arange(n)),
}


@pytest.mark.parametrize("name", sorted(HUGE_CALLS))
@pytest.mark.parametrize("n", [2**70, 2**62, 2**40], ids=["2**70", "2**62", "2**40"])
def test_impossible_sizes_raise_a_tinynet_error_naming_the_function(name: str, n: int) -> None:
    ours, theirs = HUGE_CALLS[name]
    with pytest.raises(Exception):  # noqa: B017, PT011 - torch refuses too, each its own way
        theirs(n)
    with pytest.raises(tn.ValueRangeError, match=name) as info:
        ours(n)
    message = str(info.value)
    assert "int64" in message or str(n) in message, message


def test_a_size_with_no_memory_behind_it_keeps_numpys_memory_error_as_the_cause() -> None:
    with pytest.raises(tn.ValueRangeError,
                       match=r"not enough memory.*\(1099511627776,\).*4 TiB") as info:
        tn.zeros(2**40)
    assert isinstance(info.value.__cause__, MemoryError)


@pytest.mark.parametrize("args", [(0, 1, 1e-30), (2.0**70,), (-1e308, 1e308, 1e-308),
                                  (0, 2**63), (-(2**63) - 1, 0)])
def test_arange_with_too_many_values_or_out_of_range_ints_raises(args: tuple) -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011
        torch.arange(*args)
    with pytest.raises(tn.ValueRangeError, match="arange"):
        tn.arange(*args)


@pytest.mark.parametrize("args", [(5,), (2, 11, 3), (5, 0, -2), (0, 1, 0.25), (1.5, -2.0, -0.5),
                                  (2**62, 2**62 + 3), (0, 0)])
def test_arange_still_matches_torch_on_ordinary_ranges(args: tuple) -> None:
    ours, theirs = tn.arange(*args), torch.arange(*args)
    assert ours.data.tolist() == theirs.tolist()
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")


def test_randint_bounds_beyond_int64_raise() -> None:
    with pytest.raises(tn.ValueRangeError, match="randint.*int64"):
        tn.randint(0, 2**70, (2,))
    assert tn.randint(-(2**63), 2**63, (3,)).dtype == np.int64


@pytest.mark.parametrize("name", ["rand", "randn"])
def test_rand_and_randn_refuse_integer_dtypes_as_torch(name: str) -> None:
    with pytest.raises((RuntimeError, NotImplementedError)):
        getattr(torch, name)(2, dtype=torch.int64)
    with pytest.raises(tn.DTypeError, match=rf"{name}.*float dtype"):
        getattr(tn, name)(2, dtype=tn.int64)
