"""Helpers shared by the tn.compile test files."""

import re
from typing import Any

import numpy as np

import tinynet.nn.functional as F

RTOL = 1e-10  # compiled against eager in float64: the same operations, in the same order


def close(a: Any, b: Any, what: str) -> None:
    """``a`` equals ``b`` to RTOL of the larger of 1 and ``b``'s largest magnitude."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * scale, err_msg=what)


TOL = {np.float32: 1e-5, np.float64: RTOL}  # compiled against eager, per dtype


def close_typed(got: Any, want: Any, dtype: Any, what: str, exact: bool = False) -> None:
    """``got`` equals ``want``: the same shape and dtype, the values to ``TOL[dtype]`` (the
    dtype the step computes in) of the larger of 1 and ``want``'s largest finite magnitude (NaN
    where ``want`` has NaN), or bit for bit when ``exact``."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (
        what, got.shape, want.shape, got.dtype, want.dtype)
    if exact:
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    finite = np.abs(want[np.isfinite(want)])
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype] * scale, err_msg=what)


def opaque_ops(text: str) -> set[str]:
    """The op names of the trace steps that explain()'s fused IR runs as opaque kernels."""
    names = dict(re.findall(r"^  s(\d+)\s+\S.*? = ([a-z_0-9]+)(?:\.\w+)?\(", text, re.M))
    ir = text[text.index("== IR after"):text.index("== buffer plan")]
    found = set()
    for origin in re.findall(r"^  (\S+)\s+opaque\b", ir, re.M):
        found |= {names[i] for i in re.findall(r"s(\d+)", origin)}
    return found


def cross_entropy_step(model: Any, opt: Any, x: Any, y: Any) -> Any:
    """The plain training step the compile tests run in both worlds: zero_grad, cross-entropy,
    backward, step; returns the loss."""
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss
