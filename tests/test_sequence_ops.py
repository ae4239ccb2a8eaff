"""The sequence-model ops (tril/triu, bmm, cumsum, repeat, F.pad, F.embedding, F.one_hot,
multinomial) against PyTorch in float64: values and gradients within 1e-10 relative to the
largest reference entry, over hypothesis-drawn shapes and options. Their central-difference and
second-derivative checks are strategies.CASES entries (test_gradients.py,
test_double_backward.py); the ones here that need no torch check the same rules by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinynet as tn
import tinynet.nn.functional as F

RTOL = 1e-10


def _torch():  # noqa: ANN202
    return pytest.importorskip("torch")


def assert_close(ours: tn.Tensor | np.ndarray, theirs: object, what: str = "") -> None:
    a = ours.data if isinstance(ours, tn.Tensor) else np.asarray(ours)
    b = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
    finite = np.isfinite(b)
    np.testing.assert_array_equal(a[~finite], b[~finite], err_msg=what)
    scale = max(np.abs(b[finite]).max(initial=0.0), 1e-300)
    error = np.abs(a[finite] - b[finite]).max(initial=0.0) / scale
    assert error <= RTOL, f"{what}: relative error {error:.3g}"


def _compare(ours_fn, theirs_fn, arrays: list[np.ndarray], seed: int = 0) -> None:  # noqa: ANN001
    """Run both functions on the same float64 leaves; compare output and every gradient."""
    torch = _torch()
    ours_in = [tn.tensor(a, requires_grad=True) for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    ours, theirs = ours_fn(*ours_in), theirs_fn(*theirs_in)
    assert_close(ours, theirs, "output")
    grad = np.random.default_rng(seed).standard_normal(ours.shape)
    ours.backward(tn.tensor(grad))
    theirs.backward(torch.tensor(grad))
    for i, (a, b) in enumerate(zip(ours_in, theirs_in, strict=True)):
        assert_close(a.grad, b.grad if b.grad is not None else torch.zeros_like(b), f"grad {i}")


def _array(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, shape, elements=st.floats(-3, 3, allow_subnormal=False))


shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)


@given(data=st.data())
def test_tril_triu_match_torch(data: st.DataObject) -> None:
    torch = _torch()
    x = data.draw(_array(data.draw(hnp.array_shapes(min_dims=2, max_dims=4, max_side=5))))
    diagonal = data.draw(st.integers(-5, 5))
    for name in ("tril", "triu"):
        _compare(lambda t, name=name: getattr(tn, name)(t, diagonal),
                 lambda t, name=name: getattr(torch, name)(t, diagonal), [x])


@given(data=st.data())
def test_bmm_and_broadcast_matmul_match_torch(data: st.DataObject) -> None:
    torch = _torch()
    b, n, m, p = (data.draw(st.integers(1, 4)) for _ in range(4))
    x, y = data.draw(_array((b, n, m))), data.draw(_array((b, m, p)))
    _compare(tn.bmm, torch.bmm, [x, y])
    z = data.draw(_array((m, p)))  # a batch against one matrix: broadcast, summed back
    _compare(lambda a, c: a @ c, lambda a, c: a @ c, [x, z])


def test_bmm_refuses_mismatched_batches_naming_shapes() -> None:
    with pytest.raises(tn.ShapeError, match=r"bmm: shapes \(2, 3, 4\) and \(3, 4, 5\)"):
        tn.bmm(tn.zeros(2, 3, 4), tn.zeros(3, 4, 5))
    with pytest.raises(tn.ShapeError, match="3-D"):
        tn.bmm(tn.zeros(3, 4), tn.zeros(4, 5))


@given(data=st.data())
def test_cumsum_matches_torch(data: st.DataObject) -> None:
    shape = data.draw(shapes)
    x = data.draw(_array(shape))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    _compare(lambda t: t.cumsum(dim), lambda t: t.cumsum(dim), [x])


def test_cumsum_of_integers_is_int64_and_dtype_casts_first() -> None:
    torch = _torch()
    x = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int32)
    ours = tn.cumsum(tn.tensor(x), dim=1)
    assert_close(ours, torch.cumsum(torch.tensor(x), dim=1))
    assert_close(tn.cumsum(tn.tensor(x), 0, dtype=tn.float64),
                 torch.cumsum(torch.tensor(x), 0, dtype=torch.float64))


def test_cumsum_gradient_is_the_reversed_running_sum() -> None:
    x = tn.tensor(np.arange(4.0), requires_grad=True)
    (x.cumsum(0) * tn.tensor([1.0, 10.0, 100.0, 1000.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1111.0, 1110.0, 1100.0, 1000.0])


@given(data=st.data())
def test_repeat_matches_torch(data: st.DataObject) -> None:
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=3))
    x = data.draw(_array(shape))
    sizes = tuple(data.draw(st.lists(st.integers(0, 3), min_size=max(len(shape), 1),
                                     max_size=len(shape) + 2)))
    _compare(lambda t: t.repeat(*sizes), lambda t: t.repeat(*sizes), [x])


def test_repeat_refuses_fewer_sizes_than_dims() -> None:
    with pytest.raises(tn.ShapeError, match="repeat dims"):
        tn.zeros(2, 3).repeat(2)


@given(data=st.data())
def test_pad_matches_torch_in_every_mode(data: st.DataObject) -> None:
    torch = _torch()
    mode = data.draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    # PyTorch's non-constant modes pad the last 1, 2 or 3 dims of a (C, ...) or (N, C, ...)
    k = data.draw(st.integers(1, 3 if mode != "constant" else 4))
    lead = data.draw(st.integers(1 if mode != "constant" else 0, 2))
    shape = tuple(data.draw(st.integers(2, 4)) for _ in range(lead + k))
    x = data.draw(_array(shape))
    pad: list[int] = []
    for d in range(k):
        n = shape[-1 - d]
        low = -(n // 2) if mode == "constant" else 0
        pad += [data.draw(st.integers(low, n - 1)), data.draw(st.integers(low, n - 1))]
    value = data.draw(st.floats(-2, 2)) if mode == "constant" else None
    _compare(lambda t: F.pad(t, tuple(pad), mode=mode, value=value),
             lambda t: torch.nn.functional.pad(t, tuple(pad), mode=mode, value=value), [x])


def test_pad_orders_pairs_last_dim_first() -> None:
    x = tn.ones(1, 2, 3)
    assert F.pad(x, (1, 2)).shape == (1, 2, 6)
    assert F.pad(x, (1, 2, 3, 4)).shape == (1, 9, 6)
    with pytest.raises(tn.ValueRangeError, match="reflect padding"):
        F.pad(x, (3, 0), mode="reflect")


@given(data=st.data())
def test_embedding_matches_torch_with_repeats_padding_and_frequency(data: st.DataObject) -> None:
    torch = _torch()
    rows, width = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 4))
    weight = data.draw(_array((rows, width)))
    index = data.draw(hnp.arrays(np.int64, data.draw(hnp.array_shapes(min_dims=0, max_dims=3,
                                                                      max_side=4)),
                                 elements=st.integers(0, rows - 1)))
    padding_idx = data.draw(st.none() | st.integers(-rows, rows - 1))
    by_freq = data.draw(st.booleans())
    _compare(lambda w: F.embedding(tn.tensor(index), w, padding_idx,
                                   scale_grad_by_freq=by_freq),
             lambda w: torch.nn.functional.embedding(torch.tensor(index), w, padding_idx,
                                                     scale_grad_by_freq=by_freq), [weight])


def test_embedding_gradient_adds_up_repeated_indices() -> None:
    w = tn.tensor(np.zeros((3, 2)), requires_grad=True)
    F.embedding(tn.tensor([[0, 2, 0], [0, 1, 1]]), w).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [[3.0, 3.0], [2.0, 2.0], [1.0, 1.0]])


def test_embedding_max_norm_renormalises_looked_up_rows_like_torch() -> None:
    torch = _torch()
    weight = np.random.default_rng(3).standard_normal((5, 3)) * 2
    index = np.array([[0, 1], [1, 3]])
    ours_w, theirs_w = tn.tensor(weight.copy()), torch.tensor(weight.copy())
    ours = F.embedding(tn.tensor(index), ours_w, max_norm=1.5, norm_type=2.0)
    with torch.no_grad():
        theirs = torch.nn.functional.embedding(torch.tensor(index), theirs_w, max_norm=1.5)
    assert_close(ours, theirs)
    assert_close(ours_w, theirs_w, "the table, renormalised in place")


def test_embedding_refuses_out_of_range_and_float_indices() -> None:
    w = tn.zeros(3, 2)
    with pytest.raises(tn.ValueRangeError, match="3 rows"):
        F.embedding(tn.tensor([0, 3]), w)
    with pytest.raises(tn.DTypeError, match="long"):
        F.embedding(tn.tensor([0.0, 1.0]), w)


@given(index=hnp.arrays(np.int64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
                        elements=st.integers(0, 5)),
       extra=st.integers(-1, 3))
def test_one_hot_matches_torch(index: np.ndarray, extra: int) -> None:
    torch = _torch()
    classes = -1 if extra == -1 or index.size == 0 else int(index.max()) + 1 + extra
    if index.size == 0 and classes == -1:
        classes = 4
    assert_close(F.one_hot(tn.tensor(index), classes),
                 torch.nn.functional.one_hot(torch.tensor(index), classes))


def test_multinomial_is_reproducible_under_manual_seed_and_never_picks_zero_weight() -> None:
    probs = tn.tensor([[0.2, 0.0, 0.8, 0.0], [0.0, 1.0, 1.0, 1.0]])
    tn.manual_seed(7)
    first = tn.multinomial(probs, 50, replacement=True)
    tn.manual_seed(7)
    again = probs.multinomial(50, replacement=True)
    np.testing.assert_array_equal(first.data, again.data)
    assert first.dtype == np.int64 and first.shape == (2, 50)
    assert set(first.data[0].tolist()) <= {0, 2} and 1 not in first.data[0]
    assert 0 not in first.data[1]


def test_multinomial_frequencies_follow_the_weights() -> None:
    tn.manual_seed(0)
    weights = np.array([1.0, 2.0, 3.0, 4.0])
    draws = tn.multinomial(tn.tensor(weights), 40_000, replacement=True).data
    freq = np.bincount(draws, minlength=4) / draws.size
    # binomial standard error is below 0.0025 for each: 5 of them is far outside chance
    np.testing.assert_allclose(freq, weights / weights.sum(), atol=0.0125)


def test_multinomial_without_replacement_draws_distinct_categories() -> None:
    tn.manual_seed(1)
    out = tn.multinomial(tn.tensor(np.ones((100, 5))), 5).data
    assert all(sorted(row) == [0, 1, 2, 3, 4] for row in out.tolist())
    # the first draw without replacement follows the weights too
    first = tn.multinomial(tn.tensor(np.tile([1.0, 0.0, 3.0], (4000, 1))), 2).data[:, 0]
    assert abs((first == 2).mean() - 0.75) < 0.04
    with pytest.raises(tn.ValueRangeError, match="not enough"):
        tn.multinomial(tn.tensor([1.0, 0.0, 1.0]), 3)


def test_multinomial_refuses_invalid_distributions_as_torch_does() -> None:
    with pytest.raises(tn.ValueRangeError, match="sum of probabilities"):
        tn.multinomial(tn.tensor([0.0, 0.0]), 1)
    with pytest.raises(tn.ValueRangeError, match="inf, nan or element < 0"):
        tn.multinomial(tn.tensor([1.0, -1.0]), 1)
