"""One tolerance rule for comparing two computations of the same numbers.

Two libraries (or a numba kernel and its numpy twin) that compute the same tensor differ in
the last bits of each operation, and those differences are sized by the *largest* values the
computation went through, not by each element's own size: an element that ends near zero
(-2.26e-05 in a weight matrix whose largest entry is 0.73) carries the absolute error of
the 0.73-sized sums that produced it. A purely relative check (``atol=0``) holds such an
element to 1e-10 of its own tiny size and fails on kernel choice alone. So each tensor is
judged at

    |actual - expected| <= rtol * |expected| + rtol * scale,    scale = max |expected|

(the finite entries of the reference tensor), or at a scale the caller derives from the
operation (e.g. the learning rate of a schedule). ``rtol`` stays as tight as the float format
allows: 1e-10 over 50 float64 training steps keeps >= 8,000x headroom over the kernels'
differences and still fails by >= 179x when a learning rate is off by 1e-7.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest


def as_array(value: Any) -> np.ndarray:
    """A numpy view of a tinynet Tensor, a torch tensor, an array or a number."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # torch.Tensor
        return value.detach().numpy()
    data = getattr(value, "data", value)  # tinynet.Tensor keeps its array in .data
    return np.asarray(data)


def scale_of(reference: Any) -> float:
    """The largest finite magnitude in ``reference`` (0 when it has none)."""
    array = np.abs(as_array(reference)).astype(np.float64, copy=False)
    finite = array[np.isfinite(array)]
    return float(finite.max()) if finite.size else 0.0


def assert_close(actual: Any, expected: Any, rtol: float, *, scale: float | None = None,
                 equal_nan: bool = True, err_msg: str = "") -> None:
    """``actual`` equals ``expected`` to ``rtol`` relative to each element and to ``rtol *
    scale`` absolute, ``scale`` being ``max |expected|`` unless the caller gives one.

    Infinities must match exactly and NaN must sit where the reference has NaN."""
    actual, expected = as_array(actual), as_array(expected)
    scale = scale_of(expected) if scale is None else scale
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale,
                               equal_nan=equal_nan, err_msg=err_msg)


def approx(expected: Any, rel: float, *, scale: float | None = None) -> Any:
    """``pytest.approx`` with the same rule, for numbers and lists of numbers."""
    scale = scale_of(np.asarray(expected, dtype=np.float64)) if scale is None else scale
    return pytest.approx(expected, rel=rel, abs=rel * scale)
