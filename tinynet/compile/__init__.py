"""``tn.compile``: trace a step function once, replay it as generated code.

The pipeline is one function, ``pipeline.compile_call``: its body is the stage calls
(trace -> lower -> fuse -> plan -> generate -> guard). One module each (read them in order):

1. ``trace.py``: run the function eagerly once, the tracer registered as the engine's
   observer (``autograd/engine.py``, section 6), recording every op ``Function.apply`` runs,
   every backward rule the engine calls and every optimizer update, as a list of steps over
   arrays (``ir.py``); value reads are refused through ``tensor.read_values``.
2. ``fuse.py``: rewrite the steps into a few kinds of loops, fusing elementwise chains.
3. ``plan.py``: give every intermediate array a buffer, reusing buffers whose values are dead.
4. ``codegen.py``: write Python source (numba ``@njit`` or plain numpy) for the program.
5. ``api.py``: guards (which program fits this call), replay, and ``explain()``.
``interpret.py`` replays the trace step by step instead (ops without a fusion rule), and while
``background.py`` gets the generated code compiled, so that no call waits for numba.

Nothing below this package imports it: it watches tinynet through the engine's observer hook
and stands on the top floor, with ``nn`` and ``optim``. It imports its modules lazily so
``import tinynet`` stays fast.
"""

from __future__ import annotations

from typing import Any

from tinynet.errors import CompileError

__all__ = ["CompileError", "compile"]


def compile(fn: Any = None, **options: Any) -> Any:  # noqa: A001 - PyTorch's name
    """Compile ``fn`` (a function of tensors, or a Module): ``@tn.compile`` or
    ``tn.compile(model)``. See ``tinynet/compile/api.py`` and docs/compile.md."""
    from tinynet.compile.api import CompiledFunction

    if fn is None:  # @tn.compile(...) with options
        return lambda f: CompiledFunction(f, **options)
    return CompiledFunction(fn, **options)
