"""``no_grad``, ``enable_grad`` and ``set_grad_enabled``: context managers (and decorators)
that flip the engine's grad-mode switch (``engine.grad_mode``) and restore it on exit."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from tinynet.autograd.engine import grad_mode


class set_grad_enabled:  # noqa: N801 - PyTorch's name
    """``with tn.set_grad_enabled(flag):`` sets grad mode for the block (and, as in PyTorch,
    at once when called plainly)."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self.previous = [grad_mode.enabled]
        grad_mode.enabled = self.mode

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        grad_mode.enabled = self.previous.pop()

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Use as a decorator: the mode applies while ``func`` runs, not now."""
        if type(self) is set_grad_enabled:
            grad_mode.enabled = self.previous.pop()
        mode = self.mode

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(mode):
                return func(*args, **kwargs)

        return wrapper


class no_grad(set_grad_enabled):  # noqa: N801 - PyTorch's name
    """``with tn.no_grad():`` or ``@tn.no_grad()``: record no graph inside."""

    mode = False

    def __new__(cls, func: Callable[..., Any] | None = None) -> Any:
        if callable(func):  # ``@tn.no_grad`` without parentheses
            return cls()(func)
        return super().__new__(cls)

    def __init__(self, func: Callable[..., Any] | None = None) -> None:
        self.previous = []

    def __enter__(self) -> None:
        self.previous.append(grad_mode.enabled)
        grad_mode.enabled = self.mode


class enable_grad(no_grad):  # noqa: N801 - PyTorch's name
    """Record graphs again inside a ``no_grad`` block."""

    mode = True


class inference_mode(no_grad):  # noqa: N801 - PyTorch's name
    """``with tn.inference_mode():`` (or ``@tn.inference_mode()``): no graph is recorded, as
    ``no_grad`` (tinynet has no separate inference tensors). ``inference_mode(False)`` changes
    nothing, as in PyTorch."""

    def __new__(cls, mode: Any = True) -> Any:
        if callable(mode):  # ``@tn.inference_mode`` without parentheses
            return cls()(mode)
        return object.__new__(cls)

    def __init__(self, mode: Any = True) -> None:
        self.previous = []
        self.enabled = bool(mode)

    def __enter__(self) -> None:
        self.previous.append(grad_mode.enabled)
        if self.enabled:
            grad_mode.enabled = False

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        enabled = self.enabled

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with inference_mode(enabled):
                return func(*args, **kwargs)

        return wrapper
