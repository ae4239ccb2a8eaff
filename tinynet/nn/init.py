"""Weight initialisation, with PyTorch's names, signatures and formulas.

Every function fills a tensor in place (under ``no_grad``, bumping its version counter) and
returns it. Random ones draw from tinynet's global generator (``tn.manual_seed``) unless a
``generator`` (a numpy Generator or an int seed) is given.

The scaled ones keep the variance of activations roughly constant from layer to layer:

- ``xavier_*`` (Glorot & Bengio 2010): std = gain * sqrt(2 / (fan_in + fan_out));
- ``kaiming_*`` (He et al. 2015): std = gain / sqrt(fan), fan = fan_in or fan_out;

and a uniform distribution on [-bound, bound] has std bound / sqrt(3), so the uniform
versions use bound = sqrt(3) * std. For a weight of shape (out, in), fan_in = in and
fan_out = out.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from tinynet import ops
from tinynet.autograd import no_grad
from tinynet.errors import DTypeError, ShapeError
from tinynet.ops.datadep import draw
from tinynet.random import source
from tinynet.tensor import Tensor

_LINEAR_LIKE = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                "conv_transpose3d")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table):

    linear, conv*, sigmoid: 1;  tanh: 5/3;  relu: sqrt(2);
    leaky_relu: sqrt(2 / (1 + slope^2)) with slope = param (default 0.01);  selu: 3/4.
    """
    if nonlinearity in _LINEAR_LIKE or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, bool) or not isinstance(param, int | float):
            raise ValueError(f"calculate_gain: negative_slope {param} not a valid number")
        else:
            slope = param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out): size(1) and size(0) times the receptive field (dims 2..)."""
    if not isinstance(tensor, Tensor):
        raise DTypeError(f"init: expected a Tensor, got {type(tensor).__name__}")
    if tensor.ndim < 2:
        raise ShapeError(
            f"Fan in and fan out can not be computed for tensor with fewer than 2 dimensions "
            f"(this one has shape {tuple(tensor.shape)})"
        )
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


_NUMBERS = object()  # _fill's generator when ``make`` draws nothing


def _fill(tensor: Tensor, name: str, make: Any, generator: Any = _NUMBERS) -> Tensor:
    """Write ``make(shape)`` (an array; ``make(rng, shape)`` when it draws from ``generator``)
    into ``tensor`` in place, as one in-place op. The draw is a recorded op and the write
    names what it reads, so tn.compile draws and writes again at every replay."""
    if not isinstance(tensor, Tensor):
        raise DTypeError(f"{name}: expected a Tensor, got {type(tensor).__name__}")
    shape = tensor.data.shape
    with no_grad():
        if generator is _NUMBERS:
            ops.inplace(tensor, name,
                        lambda data: np.copyto(data, make(shape), casting="unsafe"), ())
        else:
            new = draw(lambda rng: np.asarray(make(rng, shape)), source(generator, name))
            ops.inplace(tensor, name, _copy, (new,))
    return tensor


def _copy(data: np.ndarray, new: np.ndarray) -> None:
    np.copyto(data, new, casting="unsafe")


def _empty(tensor: Tensor, name: str) -> bool:
    if tensor.data.size == 0:
        warnings.warn(f"{name}: initializing zero-element tensors is a no-op", stacklevel=3)
        return True
    return False


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with samples from U(a, b)."""
    return _fill(tensor, "uniform_", lambda rng, shape: rng.uniform(a, b, shape), generator)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with samples from N(mean, std^2)."""
    return _fill(tensor, "normal_", lambda rng, shape: rng.normal(mean, std, shape), generator)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    return _fill(tensor, "constant_", lambda shape: np.full(shape, val))


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """U(-bound, bound) with bound = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Any = None,
) -> Tensor:
    """U(-bound, bound) with bound = sqrt(3) * gain / sqrt(fan), gain = calculate_gain(
    nonlinearity, a). ``nn.Linear`` uses a = sqrt(5), giving bound = 1 / sqrt(fan_in)."""
    if _empty(tensor, "kaiming_uniform_"):
        return tensor
    fan = _fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    bound = math.sqrt(3.0) * gain / math.sqrt(fan)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Any = None,
) -> Tensor:
    """N(0, std^2) with std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a)."""
    if _empty(tensor, "kaiming_normal_"):
        return tensor
    fan = _fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    return normal_(tensor, 0.0, gain / math.sqrt(fan), generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """A (semi-)orthogonal matrix times ``gain`` (Saxe et al. 2013), as PyTorch makes it: the Q
    of the QR decomposition of a standard normal (rows, cols) matrix (transposed when wide),
    its columns' signs fixed by diag(R); dims after the first are flattened into cols."""
    if not isinstance(tensor, Tensor):
        raise DTypeError(f"orthogonal_: expected a Tensor, got {type(tensor).__name__}")
    if tensor.ndim < 2:
        raise ShapeError(f"orthogonal_: only tensors with 2 or more dimensions are supported, "
                         f"got shape {tuple(tensor.shape)}")
    if _empty(tensor, "orthogonal_"):
        return tensor
    rows = tensor.shape[0]
    cols = tensor.data.size // rows
    def make(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        flat = rng.standard_normal((rows, cols))
        if rows < cols:
            flat = flat.T
        q, r = np.linalg.qr(flat)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (gain * q).reshape(shape)

    return _fill(tensor, "orthogonal_", make, generator)


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator: Any = None) -> Tensor:
    """Samples of N(mean, std^2) conditioned on [a, b] (the bounds are absolute values, as in
    PyTorch: the default [-2, 2] is two std only when std = 1). Drawn by rejection: values
    outside [a, b] are drawn again."""
    if not a < b:
        raise ValueError(f"trunc_normal_: need a < b, got a={a}, b={b}")
    def make(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        values = rng.normal(mean, std, shape)
        outside = (values < a) | (values > b)
        for _ in range(1000):
            if not outside.any():
                break
            values[outside] = rng.normal(mean, std, int(outside.sum()))
            outside = (values < a) | (values > b)
        else:  # [a, b] far in a tail: PyTorch clamps its inverse-CDF draws there too
            values = np.clip(values, a, b)
        return values

    return _fill(tensor, "trunc_normal_", make, generator)
