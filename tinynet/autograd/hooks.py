"""Gradient hooks: ``register_hook`` and ``retain_grad``. The engine enters here at the lines
marked ``extra: hooks.py``, when a node or a leaf has hooks.

A hook sees the gradient of a tensor as soon as it is computed and may return a replacement of
the same shape and dtype. ``retain_grad`` is itself a hook: it keeps the gradient of a non-leaf
tensor in that tensor's ``.grad`` (the engine only fills ``.grad`` of leaves).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from tinynet.errors import GraphError
from tinynet.tensor import Tensor, bump_world_stamp

Hook = Callable[[Tensor], Any]


def run(hooks: list[Hook], grad: Tensor) -> Tensor:
    """Call each hook in order; a returned Tensor replaces the gradient for the next ones."""
    for hook in hooks:
        replaced = hook(grad)
        if replaced is None:
            continue
        if not isinstance(replaced, Tensor) or replaced.shape != grad.shape or (
                replaced.dtype != grad.dtype):
            raise GraphError(
                f"register_hook: a hook returned {type(replaced).__name__} of shape "
                f"{getattr(replaced, 'shape', None)}, dtype {getattr(replaced, 'dtype', None)} "
                f"for a gradient of shape {grad.shape}, dtype {grad.dtype}; a hook may change "
                "the values only (return a Tensor shaped like its argument, or None)"
            )
        grad = replaced
    return grad


class RemovableHandle:
    """What ``register_hook`` and a module's ``register_forward_hook`` /
    ``register_forward_pre_hook`` return: ``remove()`` unregisters the hook (again: nothing);
    ``with handle:`` removes it at the block's end. ``hooks`` is the list holding ``hook``, or
    the dict holding it under this handle's ``id``."""

    _next_id = 0

    def __init__(self, hooks: list[Hook] | dict[int, Any], hook: Hook | None = None,
                 removed: Callable[[], None] | None = None) -> None:
        self.hooks, self.hook, self.removed = hooks, hook, removed  # removed(): after removal
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        if isinstance(self.hooks, dict):
            removed = self.hooks.pop(self.id, None) is not None
        else:
            removed = self.hook in self.hooks
            if removed:
                self.hooks.remove(self.hook)
        if removed:
            bump_world_stamp()  # a compiled step replays the hooks its trace ran
            if self.removed is not None:
                self.removed()

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def register_hook(tensor: Tensor, hook: Hook) -> RemovableHandle:
    """Leaves keep their hooks on the tensor, other tensors on the node that made them."""
    if not tensor.requires_grad:
        raise GraphError("register_hook: cannot register a hook on a tensor that doesn't "
                         "require grad")
    owner = tensor if tensor.grad_fn is None else tensor.grad_fn
    hooks = owner._hooks if owner is tensor else owner.hooks
    if hooks is None:
        hooks = []
        if owner is tensor:
            tensor._hooks = hooks
        else:
            owner.hooks = hooks
    retained = [h for h in hooks if isinstance(h, _Retain)]
    for h in retained:  # the retained gradient is the one after every other hook (PyTorch)
        hooks.remove(h)
    hooks.append(hook)
    hooks.extend(retained)
    bump_world_stamp()  # a compiled step replays the hooks its trace ran: a new one is a change
    return RemovableHandle(hooks, hook)


class _Retain:
    """The hook behind ``retain_grad``: adds the gradient into the tensor's ``.grad``. Holds the
    tensor weakly, so the node never keeps its own output alive."""

    def __init__(self, tensor: Tensor) -> None:
        self.tensor = weakref.ref(tensor)

    def __call__(self, grad: Tensor) -> None:
        tensor = self.tensor()
        if tensor is not None:
            tensor.grad = grad.clone() if tensor.grad is None else tensor.grad + grad


def retain_grad(tensor: Tensor) -> None:
    """Keep ``.grad`` for a non-leaf tensor too (leaves always keep it)."""
    if tensor.grad_fn is None:
        if not tensor.requires_grad:
            raise GraphError("retain_grad: can't retain_grad on a tensor that doesn't "
                             "require grad")
        return
    if not retains_grad(tensor):
        register_hook(tensor, _Retain(tensor))


def retains_grad(tensor: Tensor) -> bool:
    hooks = tensor.grad_fn.hooks if tensor.grad_fn is not None else None
    return any(isinstance(h, _Retain) and h.tensor() is tensor for h in hooks or ())
