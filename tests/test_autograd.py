"""The autograd engine: depth, accumulation, graph freeing, grad mode, memory, aliasing.

Each test names one promise the engine makes (see ``tinynet/autograd.py``): backward is
iterative, gradients add up across calls, graphs die by reference counting alone, freed
graphs refuse a second backward with a message that says what to do, grad mode is a
thread-local switch usable as a context manager or a decorator, and no two leaves ever share
a gradient array.
"""

from __future__ import annotations

import gc
import threading
import tracemalloc
import weakref
from collections.abc import Iterator

import numpy as np
import pytest

import tinynet as tn
from tinynet.errors import GraphError, ShapeError


@pytest.fixture
def gc_off() -> Iterator[None]:
    """Turn the cycle collector off: whatever dies now dies by reference counting alone."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _leaf(values, dtype=tn.float64) -> tn.Tensor:  # noqa: ANN001
    return tn.tensor(values, dtype=dtype, requires_grad=True)


# ---- depth ----------------------------------------------------------------------------------


def test_backward_through_a_100000_op_chain_does_not_recurse() -> None:
    x = _leaf(1.5)
    y = x
    for _ in range(100_000):
        y = -y
    y.backward()  # a recursive topological sort would raise RecursionError here
    assert x.grad.item() == 1.0
    del y  # freeing the chain must not overflow the C stack either


def test_backward_through_a_deep_chain_with_saved_values() -> None:
    x = _leaf([0.5, -0.25])
    y = x
    for _ in range(5_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 1.0001**5_000, rtol=1e-10)


# ---- accumulation and retain_graph ----------------------------------------------------------


def test_gradients_accumulate_across_backward_calls() -> None:
    x = _leaf([1.0, 2.0, 3.0])
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.data, 2 * x.data + 3)
    x.grad = None  # PyTorch's zero_grad(set_to_none=True): the next backward starts afresh
    x.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1, 1, 1])


def test_retain_graph_allows_a_second_backward() -> None:
    x = _leaf([1.0, -2.0])
    y = (x * x).exp().sum()
    y.backward(retain_graph=True)
    first = x.grad.data.copy()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * first, rtol=1e-15)


def test_backward_twice_without_retain_graph_raises() -> None:
    x = _leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(GraphError, match=r"backward through the graph a second time") as info:
        y.backward()
    assert "retain_graph=True" in str(info.value)  # the message names the fix
    assert "MulBackward" in str(info.value)  # and the node
    np.testing.assert_array_equal(x.grad.data, [2, 4])  # the failed call added nothing


def test_backward_on_a_non_scalar_without_gradient_raises() -> None:
    x = _leaf([1.0, 2.0])
    y = x * 2
    with pytest.raises(GraphError, match=r"only for scalar outputs.*shape \(2,\)"):
        y.backward()
    y.backward(np.array([1.0, 10.0]))  # with an explicit gradient it works
    np.testing.assert_array_equal(x.grad.data, [2, 20])


def test_backward_with_a_gradient_of_the_wrong_shape_raises() -> None:
    y = _leaf([1.0, 2.0]) * 2
    with pytest.raises(ShapeError, match=r"gradient has shape \(3,\).*shape \(2,\)"):
        y.backward(np.ones(3))


def test_backward_on_a_tensor_without_grad_raises() -> None:
    with pytest.raises(GraphError, match="does not require grad"):
        tn.tensor([1.0]).sum().backward()


# ---- grad mode ------------------------------------------------------------------------------


def test_no_grad_as_a_context_manager_records_nothing() -> None:
    x = _leaf([1.0])
    with tn.no_grad():
        y = x * 2
        assert not tn.is_grad_enabled()
    assert tn.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf


def test_no_grad_as_a_decorator_with_and_without_parentheses() -> None:
    x = _leaf([1.0])

    @tn.no_grad()
    def with_parentheses(t: tn.Tensor) -> tn.Tensor:
        return t * 2

    @tn.no_grad
    def without_parentheses(t: tn.Tensor) -> tn.Tensor:
        return t * 2

    assert with_parentheses.__name__ == "with_parentheses"  # functools.wraps
    for fn in (with_parentheses, without_parentheses):
        y = fn(x)
        assert not y.requires_grad
        assert tn.is_grad_enabled()  # restored after the call
        assert (x * 2).requires_grad


def test_enable_grad_inside_no_grad_records_again() -> None:
    x = _leaf([1.0])

    @tn.enable_grad
    def recorded(t: tn.Tensor) -> tn.Tensor:
        return t * 2

    with tn.no_grad():
        with tn.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
        assert recorded(x).requires_grad
        assert not tn.is_grad_enabled()


def test_grad_mode_is_restored_when_the_block_raises() -> None:
    with pytest.raises(KeyError):
        with tn.no_grad():
            raise KeyError("boom")
    assert tn.is_grad_enabled()


def test_nested_and_reused_no_grad_restore_the_outer_mode() -> None:
    switch = tn.no_grad()
    with switch:
        with tn.enable_grad():
            with switch:  # the same object entered twice
                assert not tn.is_grad_enabled()
            assert tn.is_grad_enabled()
        assert not tn.is_grad_enabled()
    assert tn.is_grad_enabled()


def test_set_grad_enabled_switches_for_a_block() -> None:
    with tn.set_grad_enabled(False):
        assert not tn.is_grad_enabled()
        with tn.set_grad_enabled(True):
            assert tn.is_grad_enabled()
        assert not tn.is_grad_enabled()
    assert tn.is_grad_enabled()


def test_no_grad_in_one_thread_does_not_affect_another() -> None:
    entered, checked = threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def worker() -> None:
        with tn.no_grad():
            seen["worker"] = tn.is_grad_enabled()
            entered.set()
            checked.wait(timeout=10)  # stay inside no_grad while the main thread looks
            seen["worker still"] = tn.is_grad_enabled()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert entered.wait(timeout=10)
        assert tn.is_grad_enabled()  # the worker's no_grad is its own
        assert (_leaf([1.0]) * 2).requires_grad
    finally:
        checked.set()
        thread.join()
    assert seen == {"worker": False, "worker still": False}


def test_a_new_thread_starts_with_grad_enabled_even_inside_no_grad() -> None:
    seen: list[bool] = []
    with tn.no_grad():
        thread = threading.Thread(target=lambda: seen.append(tn.is_grad_enabled()))
        thread.start()
        thread.join()
    assert seen == [True]


# ---- freeing: by reference counting alone -------------------------------------------------


def test_graph_is_freed_by_refcount_alone(gc_off: None) -> None:
    x = _leaf(np.ones(3))
    y = (x * 2).exp()
    z = y.sum()
    nodes = [weakref.ref(z.grad_fn), weakref.ref(y.grad_fn)]
    tensors = [weakref.ref(y), weakref.ref(z)]
    del y, z
    assert all(r() is None for r in nodes + tensors)


def test_graph_is_freed_after_backward_and_after_create_graph(gc_off: None) -> None:
    x = _leaf(np.array([0.5, -1.0]))
    y = (x.sigmoid() * x).sum()
    node = weakref.ref(y.grad_fn)
    (g,) = tn.autograd.grad(y, x, create_graph=True)  # a second graph built on the first
    second = weakref.ref(g.grad_fn)
    g.sum().backward()
    del y, g
    assert node() is None and second() is None


def test_retain_grad_and_hooks_do_not_keep_the_graph_alive(gc_off: None) -> None:
    x = _leaf(np.ones(2))
    y = x * 3
    y.retain_grad()
    y.register_hook(lambda g: g * 2)
    z = y.sum()
    z.backward()
    assert y.grad is not None
    np.testing.assert_array_equal(x.grad.data, [6, 6])
    nodes = [weakref.ref(y.grad_fn), weakref.ref(z.grad_fn)]
    del y, z
    assert all(r() is None for r in nodes)


def test_saved_values_are_freed_after_backward(gc_off: None) -> None:
    x = _leaf(np.linspace(-1, 1, 1000))
    y = x.exp()  # saves its output: an array the node holds for backward
    loss = (y * x).sum()  # saves both inputs
    nodes = (y.grad_fn, loss.grad_fn.parents[0].grad_fn)
    assert all(node.saved for node in nodes)
    output = weakref.ref(y.grad_fn.output)
    del y
    loss.backward()
    assert all(node.saved is None for node in nodes)
    assert output() is not None  # still the data of the tensor the product node consumed
    del loss, nodes
    assert output() is None  # and gone with the graph: nothing else held it


def test_retain_graph_keeps_the_saved_values() -> None:
    x = _leaf([1.0, -2.0])
    y = x.abs().sum()
    node = x.abs().grad_fn  # another node, to compare with
    y.backward(retain_graph=True)
    assert y.grad_fn.parents[0].grad_fn.saved is not None
    assert node.saved is not None


def test_memory_stays_flat_over_10000_training_steps(gc_off: None) -> None:
    rng = np.random.default_rng(0)
    w = tn.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    x = tn.tensor(rng.standard_normal((5, 3)))
    target = np.array([0, 1, 2, 3, 0])

    def step() -> None:  # build a graph, backpropagate, update, drop everything
        loss = tn.ops.softmax_cross_entropy((x @ w.T).tanh(), target)
        loss.backward()
        with tn.no_grad():
            w.sub_(w.grad * 0.01)
        w.grad = None

    for _ in range(1_000):  # warm-up: lazily built kernels, caches, free lists
        step()
    tracemalloc.start()
    try:
        for _ in range(500):
            step()
        warm, _ = tracemalloc.get_traced_memory()
        for _ in range(8_500):
            step()
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Keeping even one small array (or one node) per step would add > 500 KB by the end.
    assert end - warm < 64 * 1024, f"memory grew by {end - warm} bytes over 8,500 steps"


# ---- leaf gradients never alias ---------------------------------------------------------


def test_a_plus_a_accumulates_twice_into_one_gradient() -> None:
    a = _leaf([1.0, 2.0])
    (a + a).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [2, 2])
    (a + a).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [4, 4])


def test_leaves_sharing_an_upstream_gradient_get_separate_arrays() -> None:
    x, y = _leaf([1.0, 2.0]), _leaf([3.0, 4.0])
    (x + y).sum().backward()  # Add hands the same array to both
    assert not np.shares_memory(x.grad.data, y.grad.data)
    (x + y * 5).sum().backward()  # in-place accumulation into x.grad must not touch y.grad
    np.testing.assert_array_equal(x.grad.data, [2, 2])
    np.testing.assert_array_equal(y.grad.data, [6, 6])
    x.grad.zero_()
    np.testing.assert_array_equal(y.grad.data, [6, 6])


def test_a_leaf_gradient_is_not_shared_with_a_node_still_to_run() -> None:
    # (a + f(c)) + a: the outer Add hands one array to a and to the inner Add; a's second
    # gradient must not be added into that array before the inner Add passes it on to c.
    a, c = _leaf([1.0, 2.0]), _leaf([1.0, 1.0])
    ((a + c * 1.0) + a).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [2, 2])
    np.testing.assert_array_equal(c.grad.data, [1, 1])


def test_backward_never_modifies_the_gradient_the_caller_passed() -> None:
    x = _leaf([1.0, 2.0])
    seed = np.array([1.0, 1.0])
    tensor_seed = tn.tensor([1.0, 1.0], dtype=tn.float64)
    x.backward(seed)
    x.backward(seed)
    x.backward(tensor_seed)
    (x + 0).backward(tensor_seed)
    np.testing.assert_array_equal(seed, [1, 1])
    np.testing.assert_array_equal(tensor_seed.data, [1, 1])
    np.testing.assert_array_equal(x.grad.data, [4, 4])
    assert not np.shares_memory(x.grad.data, seed)


def test_retained_gradient_of_a_non_leaf_is_not_shared_with_a_leaf() -> None:
    x = _leaf([1.0, 2.0])
    y = x + 0  # Add passes its gradient through unchanged
    y.retain_grad()
    (y * 1).sum().backward()
    (y * 1).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2, 2])
    np.testing.assert_array_equal(y.grad.data, [2, 2])
    assert not np.shares_memory(x.grad.data, y.grad.data)


def test_a_hook_that_keeps_the_gradient_does_not_see_it_change() -> None:
    kept: list[tn.Tensor] = []
    x = _leaf([1.0, 2.0])
    x.register_hook(lambda g: kept.append(g))
    x.sum().backward()
    x.sum().backward()
    np.testing.assert_array_equal(kept[0].data, [1, 1])
    np.testing.assert_array_equal(x.grad.data, [2, 2])


def test_create_graph_gives_each_leaf_its_own_gradient() -> None:
    x, y = _leaf([1.0, 2.0]), _leaf([3.0, 4.0])
    (x + y).sum().backward(create_graph=True)  # one (read-only, broadcast) array for both
    assert x.grad is not y.grad and not np.shares_memory(x.grad.data, y.grad.data)
    (x * 1).sum().backward()  # a plain backward afterwards adds to x.grad only
    np.testing.assert_array_equal(x.grad.data, [2, 2])
    np.testing.assert_array_equal(y.grad.data, [1, 1])


def test_a_gradient_from_create_graph_is_replaced_not_edited() -> None:
    x = _leaf([1.0, 2.0])
    (x * x).sum().backward(create_graph=True)
    first = x.grad
    assert first.requires_grad  # 2x, itself differentiable
    (x * 3).sum().backward()
    np.testing.assert_array_equal(first.data, [2, 4])  # the graph's tensor is untouched
    np.testing.assert_array_equal(x.grad.data, [5, 7])


def test_accumulation_makes_a_new_grad_so_a_graph_that_saved_the_old_one_still_works() -> None:
    # As PyTorch when the old .grad is referenced elsewhere: accumulate out of place.
    x = _leaf([1.0, 2.0])
    x.sum().backward()
    old = x.grad
    w = _leaf([1.0, 1.0])
    uses_grad = (w * x.grad).sum()  # saves x.grad for its backward
    x.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2, 2])
    np.testing.assert_array_equal(old.data, [1, 1])  # whoever held the old .grad keeps it
    uses_grad.backward()
    np.testing.assert_array_equal(w.grad.data, [1, 1])


# ---- autograd.grad, hooks, in-place checks ---------------------------------------------------


def test_grad_returns_gradients_without_touching_dot_grad() -> None:
    x, y = _leaf([1.0, 2.0]), _leaf([3.0])
    gx, gy = tn.autograd.grad((x * y).sum(), [x, y])
    np.testing.assert_array_equal(gx.data, [3, 3])
    np.testing.assert_array_equal(gy.data, [3])
    assert x.grad is None and y.grad is None


def test_grad_with_respect_to_a_non_leaf_and_an_earlier_leaf() -> None:
    x = _leaf([1.0, 2.0])
    t = x * 2
    gt, gx = tn.autograd.grad((t * t).sum(), [t, x])
    np.testing.assert_array_equal(gt.data, 2 * t.data)
    np.testing.assert_array_equal(gx.data, 8 * x.data)


def test_grad_of_several_outputs_and_of_an_input_listed_twice() -> None:
    x = _leaf([1.0, 2.0])
    h = x * x
    (g,) = tn.autograd.grad([h.sum(), (h * 3).sum()], [x], retain_graph=True)
    np.testing.assert_array_equal(g.data, 8 * x.data)  # 2x + 6x
    g1, g2 = tn.autograd.grad(h.sum(), [x, x])
    np.testing.assert_array_equal(g1.data, 2 * x.data)
    np.testing.assert_array_equal(g2.data, 2 * x.data)


def test_grad_of_an_unused_input_raises_unless_allowed() -> None:
    x, unused = _leaf([1.0]), _leaf([1.0])
    with pytest.raises(GraphError, match="allow_unused=True"):
        tn.autograd.grad((x * 2).sum(), [x, unused], retain_graph=True)
    gx, gu = tn.autograd.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gu is None and gx.item() == 2


def test_hooks_can_replace_the_gradient_and_be_removed() -> None:
    x = _leaf([1.0, 2.0])
    handle = x.register_hook(lambda g: g * 10)
    x.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [10, 10])
    handle.remove()
    x.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [11, 11])


def test_modifying_a_saved_tensor_in_place_makes_backward_raise() -> None:
    x = _leaf([1.0, 2.0])
    y = x * 1  # non-leaf, saved by the next Mul
    z = (y * y).sum()
    with tn.no_grad():
        y.mul_(3)
    with pytest.raises(GraphError, match="modified by an in-place operation"):
        z.backward()


def test_in_place_change_through_a_view_is_caught() -> None:
    base = tn.tensor([1.0, 2.0, 3.0], dtype=tn.float64)
    view = base[1:]  # shares base's memory and version counter
    w = _leaf([1.0, 1.0])
    z = (w * view).sum()
    base.add_(1)
    with pytest.raises(GraphError, match="in-place"):
        z.backward()


def test_in_place_on_a_leaf_that_requires_grad_is_refused_in_grad_mode() -> None:
    x = _leaf([1.0])
    with pytest.raises(GraphError, match="no_grad"):
        x.add_(1)
    with tn.no_grad():
        x.add_(1)  # what optimizers do
    assert x.item() == 2.0


def test_gradients_come_back_in_each_leafs_dtype() -> None:
    x32 = _leaf([1.0, 2.0], dtype=tn.float32)
    x64 = _leaf([3.0, 4.0])
    (x32 * x64).sum().backward()  # the product is float64
    assert x32.grad.dtype == np.float32 and x64.grad.dtype == np.float64
    half = _leaf([1.0], dtype=tn.float16)
    (half.double() * 3).sum().backward()
    assert half.grad.dtype == np.float16 and half.grad.item() == 3.0


def test_integer_and_comparison_results_are_never_part_of_a_graph() -> None:
    x = _leaf([1.0, -1.0])
    mask = x > 0
    assert mask.dtype == np.bool_ and not mask.requires_grad
    assert not x.argmax().requires_grad
    y = (x * mask).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [1, 0])


def test_detach_shares_memory_but_leaves_the_graph() -> None:
    x = _leaf([1.0, 2.0])
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.data, y.data)
    (y + d).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2, 2])
