"""Activation modules. Each wraps the op of the same name in ``tinynet.ops``."""

from __future__ import annotations

from tinynet import ops
from tinynet.nn import functional as F
from tinynet.nn.functional import implicit_dim
from tinynet.nn.module import Module
from tinynet.ops.activation import check_surrogate
from tinynet.tensor import Tensor


class Sigmoid(Module):
    """y = 1 / (1 + e^-x), elementwise."""


    def forward(self, input: Tensor) -> Tensor:
        return ops.sigmoid(input)


class Tanh(Module):
    """y = tanh(x), elementwise."""


    def forward(self, input: Tensor) -> Tensor:
        return ops.tanh(input)


class ReLU(Module):
    """y = max(x, 0), elementwise. ``inplace=True`` writes y into the input's memory."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input, self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


# The activations below are rows of the formula table (tinynet/kernels/formulas.py): eager
# mode, the kernels and tn.compile's loops all take their math from there.


class LeakyReLU(Module):
    """y = x where x > 0, else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    """y = x where x > 0, else alpha * (exp(x) - 1)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class Hardtanh(Module):
    """y = x clamped to [min_val, max_val]."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        if max_val <= min_val:  # PyTorch's check
            raise ValueError(f"Hardtanh: max_val ({max_val}) must be greater than min_val "
                             f"({min_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        return (f"min_val={self.min_val}, max_val={self.max_val}"
                + (", inplace=True" if self.inplace else ""))


class Softplus(Module):
    """y = log(1 + exp(beta * x)) / beta, and x where beta * x > threshold (for stability)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class SiLU(Module):
    """y = x * sigmoid(x) (swish)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.silu(input, self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Mish(Module):
    """y = x * tanh(softplus(x))."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.mish(input, self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class GELU(Module):
    """y = x * Phi(x), Phi the standard normal CDF; approximate='tanh' for the tanh formula."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Step(Module):
    """Heaviside step: y = 1 where x >= 0, else 0 (McCulloch-Pitts / perceptron units).

    Its derivative is 0 everywhere, so nothing before it learns by gradient descent; a
    ``surrogate`` ("straight_through" or "sigmoid") substitutes a usable derivative in the
    backward pass (see ``tinynet.ops.step``).
    """

    def __init__(self, surrogate: str | None = None) -> None:
        super().__init__()
        check_surrogate(surrogate, "Step")
        self.surrogate = surrogate

    def forward(self, input: Tensor) -> Tensor:
        return ops.step(input, self.surrogate)

    def extra_repr(self) -> str:
        return "" if self.surrogate is None else f"surrogate={self.surrogate!r}"


class Softmax(Module):
    """y_i = e^(x_i) / sum_j e^(x_j) along ``dim``."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return ops.softmax(input, implicit_dim(self.dim, input.ndim, "Softmax"))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """y_i = x_i - log sum_j e^(x_j) along ``dim`` (stable: max-shifted)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return ops.log_softmax(input, implicit_dim(self.dim, input.ndim, "LogSoftmax"))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class _Plain(Module):
    """An activation without arguments: ``forward`` is the functional of ``function``."""

    function = ""

    def forward(self, input: Tensor) -> Tensor:
        return getattr(F, self.function)(input)


class _InPlace(Module):
    """An activation whose one argument is ``inplace``."""

    function = ""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return getattr(F, self.function)(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU6(_InPlace):
    """y = min(max(x, 0), 6)."""

    function = "relu6"


class Hardsigmoid(_InPlace):
    """y = relu6(x + 3) / 6."""

    function = "hardsigmoid"

    def extra_repr(self) -> str:
        return ""  # (PyTorch's Hardsigmoid does not print inplace)


class Hardswish(_InPlace):
    """y = x * relu6(x + 3) / 6."""

    function = "hardswish"

    def extra_repr(self) -> str:
        return ""  # (PyTorch's Hardswish does not print inplace)


class SELU(_InPlace):
    """y = scale * (x where x > 0, else alpha * (exp(x) - 1)), PyTorch's alpha and scale."""

    function = "selu"


class CELU(Module):
    """y = x where x > 0, else alpha * (exp(x / alpha) - 1)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.celu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class Threshold(Module):
    """y = x where x > threshold, else value."""

    def __init__(self, threshold: float, value: float, inplace: bool = False) -> None:
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self) -> str:
        return (f"threshold={self.threshold}, value={self.value}"
                + (", inplace=True" if self.inplace else ""))


class LogSigmoid(_Plain):
    """y = log(sigmoid(x)), stable for any x."""

    function = "logsigmoid"


class Softsign(_Plain):
    """y = x / (1 + |x|)."""

    function = "softsign"


class Tanhshrink(_Plain):
    """y = x - tanh(x)."""

    function = "tanhshrink"
