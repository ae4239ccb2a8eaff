"""Module forward hooks (``register_forward_pre_hook``, ``register_forward_hook``), as
PyTorch's: calling order, ``prepend``, replacing the arguments or the output, ``with_kwargs``,
``always_call``, the handle; and tn.compile, which refuses a step that calls a hooked module
(the hooks' Python code would not run again at each replay) rather than replay it without them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tinynet as tn
from tinynet.errors import CompileError


def _log_hooks(lib: Any, m: Any, log: list) -> list:
    """The same hooks on a tinynet or a torch module; returns their handles."""
    return [
        m.register_forward_hook(lambda mod, a, out: log.append(("post a", tuple(out.shape)))),
        m.register_forward_hook(lambda mod, a, out: log.append(("post b", len(a))),
                                prepend=True),
        m.register_forward_pre_hook(lambda mod, a: log.append(("pre a", len(a)))),
        m.register_forward_pre_hook(lambda mod, a, kw: log.append(("pre kw", sorted(kw))),
                                    with_kwargs=True),
        m.register_forward_pre_hook(lambda mod, a: log.append(("pre first",)), prepend=True),
        m.register_forward_hook(lambda mod, a, kw, out: out * 2, with_kwargs=True),
    ]


def _run(lib: Any) -> tuple[list, np.ndarray, np.ndarray]:
    lib.manual_seed(0)
    m = lib.nn.Linear(2, 3)
    log: list = []
    handles = _log_hooks(lib, m, log)
    x = lib.ones(4, 2)
    doubled = m(x).detach().numpy()
    plain = m.forward(x).detach().numpy()
    handles[-1].remove()
    handles[-1].remove()  # (again: nothing)
    with handles[0]:
        pass  # (removed at the block's end)
    m(x)
    return log, doubled, plain


def test_hooks_run_in_order_and_replace_as_in_pytorch() -> None:
    log, doubled, plain = _run(tn)
    assert log == [("pre first",), ("pre a", 1), ("pre kw", []), ("post b", 1),
                   ("post a", (4, 3)),  # the first call, every hook
                   ("pre first",), ("pre a", 1), ("pre kw", []), ("post b", 1)]
    np.testing.assert_array_equal(doubled, plain * 2)
    torch = pytest.importorskip("torch")
    assert _run(torch)[0] == log


def test_a_pre_hook_replaces_the_arguments() -> None:
    m = tn.nn.Linear(2, 2)
    handle = m.register_forward_pre_hook(lambda mod, args: args[0] * 0)  # not a tuple: wrapped
    np.testing.assert_array_equal(m(tn.ones(1, 2)).detach().numpy(), m.bias.detach().numpy()[None])
    handle.remove()
    m.register_forward_pre_hook(lambda mod, args, kwargs: ((args[0] * 0,), kwargs),
                                with_kwargs=True)
    np.testing.assert_array_equal(m(tn.ones(1, 2)).detach().numpy(), m.bias.detach().numpy()[None])
    bad = tn.nn.Tanh()
    bad.register_forward_pre_hook(lambda mod, args, kwargs: args, with_kwargs=True)
    with pytest.raises(TypeError, match="pre-hook of Tanh.*None or a tuple"):
        bad(tn.ones(2))
    with pytest.raises(TypeError, match="must be callable"):
        bad.register_forward_hook(3)


def test_always_call_hooks_see_a_failed_forward() -> None:
    class Boom(tn.nn.Module):
        def forward(self, x: Any) -> Any:
            raise ValueError("boom")

    seen: list = []
    m = Boom()
    m.register_forward_hook(lambda mod, a, out: seen.append(("plain", out)))
    m.register_forward_hook(lambda mod, a, out: seen.append(("always", out)), always_call=True)

    def broken(mod: Any, a: Any, out: Any) -> None:
        raise RuntimeError("hook")

    m.register_forward_hook(broken, always_call=True)
    with pytest.warns(UserWarning, match="always_call"), pytest.raises(ValueError, match="boom"):
        m(tn.ones(1))  # forward's error, not the hook's
    assert seen == [("always", None)]


def test_a_module_without_hooks_keeps_the_plain_call() -> None:
    """The module holds its hooks as an attribute only while it has some: its attributes say
    whether it has hooks, which is what tn.compile's guard compares."""
    m = tn.nn.Linear(2, 2)
    assert "_forward_hooks_of" not in vars(m)
    first = m.register_forward_hook(lambda *a: None)
    second = m.register_forward_pre_hook(lambda *a: None)
    first.remove()
    assert "_forward_hooks_of" in vars(m)
    second.remove()
    assert "_forward_hooks_of" not in vars(m)
    x = tn.ones(1, 2)
    np.testing.assert_array_equal(m(x).detach().numpy(), m.forward(x).detach().numpy())


def _world() -> tuple[Any, Any, Any]:
    tn.manual_seed(0)
    model = tn.nn.Sequential(tn.nn.Linear(2, 3), tn.nn.Tanh(), tn.nn.Linear(3, 1)).double()
    opt = tn.optim.SGD(model.parameters(), lr=0.1)

    def step(x: Any, y: Any) -> Any:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    return model, opt, step


def test_tn_compile_refuses_a_step_calling_a_hooked_module() -> None:
    model, _, step = _world()
    model[1].register_forward_hook(lambda mod, a, out: None)
    compiled = tn.compile(step)
    x, y = tn.ones(4, 2, dtype=tn.float64), tn.zeros(4, 1, dtype=tn.float64)
    with pytest.raises(CompileError, match=r"calls Tanh with forward hooks.*handle\.remove\(\)"):
        for _ in range(3):
            compiled(x, y)


@pytest.mark.parametrize("had_hooks", [False, True])
def test_a_hook_registered_after_compiling_is_never_skipped(had_hooks: bool) -> None:
    """A hook added between replays moves the world stamp: the next call checks the world in
    full, traces again and refuses, rather than replay without the hook (also on a module that
    had hooks, all removed, before the trace). Removed, the compiled step traces again and
    equals eager."""
    model, _, step = _world()
    if had_hooks:
        model[0].register_forward_hook(lambda *a: None).remove()
    twin_model, _, twin_step = _world()
    compiled = tn.compile(step)
    rng = np.random.default_rng(0)
    batches = [(tn.tensor(rng.normal(size=(4, 2))), tn.tensor(rng.normal(size=(4, 1))))
               for _ in range(8)]
    for x, y in batches[:4]:
        compiled(x, y)
        twin_step(x, y)
    seen: list = []
    handle = model[0].register_forward_hook(lambda mod, a, out: seen.append(out))
    with pytest.raises(CompileError, match="calls Linear with forward hooks"):
        compiled(*batches[4])
    handle.remove()
    for x, y in batches[4:]:
        got, want = compiled(x, y), twin_step(x, y)
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
    for p, q in zip(model.parameters(), twin_model.parameters(), strict=True):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
