"""Neural-network building blocks with PyTorch's names: ``tn.nn.Linear``, ``tn.nn.Sequential``,
``tn.nn.MSELoss``, ``tn.nn.functional`` (``F``), ``tn.nn.init``...

Where to read: ``module.py`` (how parameters are registered, named, saved and loaded),
``layers.py`` (Linear, and how Sequential fuses Linear + activation), ``functional.py`` (the
losses, forward and backward side by side), ``init.py`` (initialisation formulas),
``container.py`` (ModuleList, ModuleDict), ``dropout.py`` (Dropout and F.dropout).
"""

from tinynet.nn import functional, init, utils
from tinynet.nn.activations import LogSoftmax, ReLU, Sigmoid, Softmax, Step, Tanh
from tinynet.nn.container import ModuleDict, ModuleList
from tinynet.nn.dropout import Dropout
from tinynet.nn.errors import ClassIndexError, StateDictError, ValueRangeError
from tinynet.nn.layers import Flatten, Identity, Linear, Sequential
from tinynet.nn.loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from tinynet.nn.module import IncompatibleKeys, Module
from tinynet.nn.parameter import Parameter

__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "ClassIndexError", "CrossEntropyLoss", "Flatten",
    "Identity", "IncompatibleKeys", "Linear", "LogSoftmax", "MSELoss", "Module", "NLLLoss",
    "Parameter", "ReLU", "Sequential", "Sigmoid", "Softmax", "StateDictError", "Step", "Tanh",
    "ValueRangeError", "functional", "init", "utils",
    "Dropout", "ModuleDict", "ModuleList",
]

# Convolution, pooling and normalization layers (appended).
from tinynet.nn.conv import Conv2d, Dropout2d  # noqa: E402
from tinynet.nn.normalization import BatchNorm1d, BatchNorm2d, LayerNorm  # noqa: E402
from tinynet.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d  # noqa: E402

__all__ += ["AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d",
            "Dropout2d", "LayerNorm", "MaxPool2d"]

# Issue 21: more normalization layers.
from tinynet.nn.normalization import GroupNorm, RMSNorm  # noqa: E402

__all__ += ["GroupNorm", "RMSNorm"]
from tinynet.nn.conv1d import Conv1d  # noqa: E402

__all__ += ["Conv1d"]

# Sequence models (issue 22): embeddings, recurrent layers, attention, transformer encoder.
from tinynet.nn.attention import MultiheadAttention  # noqa: E402
from tinynet.nn.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell  # noqa: E402
from tinynet.nn.sparse import Embedding  # noqa: E402
from tinynet.nn.transformer import (  # noqa: E402
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ += ["Embedding", "GRU", "GRUCell", "LSTM", "LSTMCell", "MultiheadAttention", "RNN",
            "RNNCell", "TransformerEncoder", "TransformerEncoderLayer"]
__all__ += ["Transformer", "TransformerDecoder", "TransformerDecoderLayer"]

# Issue 21: losses and small modules real scripts use (appended).
from tinynet.nn.extra import (  # noqa: E402
    ParameterDict,
    ParameterList,
    PixelShuffle,
    Unflatten,
)
from tinynet.nn.loss import HuberLoss, KLDivLoss, L1Loss, SmoothL1Loss  # noqa: E402

__all__ += ["HuberLoss", "KLDivLoss", "L1Loss", "ParameterDict", "ParameterList",
            "PixelShuffle", "SmoothL1Loss", "Unflatten"]

# The formula table's activations (issue 18; tinynet/kernels/formulas.py).
from tinynet.nn.activations import ELU, GELU, Hardtanh, LeakyReLU, Mish, SiLU, Softplus  # noqa: E402

__all__ += ["ELU", "GELU", "Hardtanh", "LeakyReLU", "Mish", "SiLU", "Softplus"]

# More activations (issue 18): table rows (Hardsigmoid, Hardswish, SELU, CELU, LogSigmoid,
# Threshold) and compositions of rows (ReLU6 = Hardtanh(0, 6), Softsign, Tanhshrink).
from tinynet.nn.activations import (  # noqa: E402
    CELU,
    SELU,
    Hardsigmoid,
    Hardswish,
    LogSigmoid,
    ReLU6,
    Softsign,
    Tanhshrink,
    Threshold,
)

__all__ += ["CELU", "SELU", "Hardsigmoid", "Hardswish", "LogSigmoid", "ReLU6", "Softsign",
            "Tanhshrink", "Threshold"]
