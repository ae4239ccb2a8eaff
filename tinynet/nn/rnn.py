"""Recurrent layers: RNN, LSTM, GRU and their one-step Cells, with PyTorch's parameters.

One time step of each, as written below (x_proj = W_ih x_t + b_ih, the step's input projected):

    RNN:   h = tanh(W_ih x + b_ih + W_hh h + b_hh)                 (or relu)
    LSTM:  i, f, g, o = chunks of (W_ih x + b_ih + W_hh h + b_hh)  (PyTorch's gate order)
           c = sigmoid(f) * c + sigmoid(i) * tanh(g);   h = sigmoid(o) * tanh(c)
    GRU:   r, z, n from W_ih x + b_ih and W_hh h + b_hh, chunked   (gate order r, z, n)
           r = sigmoid(r_x + r_h); z = sigmoid(z_x + z_h); n = tanh(n_x + r * n_h)
           h = (1 - z) * n + z * h

A layer runs the step over time in a Python loop; backpropagation through time is the engine
walking back through that loop. Parameters per layer k and direction are ``weight_ih_l{k}``
(gates * hidden, input), ``weight_hh_l{k}`` (gates * hidden, hidden), ``bias_ih_l{k}``,
``bias_hh_l{k}`` (``_reverse`` appended for the backward direction), all initialised
uniform(-1/sqrt(hidden), 1/sqrt(hidden)); state dicts load into torch.nn.LSTM & co and back.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

from tinynet import creation, dtypes, ops
from tinynet.errors import ShapeError, ValueRangeError
from tinynet.nn import init
from tinynet.nn.dropout import dropout
from tinynet.nn.module import Module
from tinynet.nn.parameter import Parameter
from tinynet.nn.utils.rnn import PackedSequence
from tinynet.tensor import Tensor

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}

# ---------------------------------------------------------------------------------------------
# One time step (x_proj = W_ih x_t + b_ih, computed by the layer)
# ---------------------------------------------------------------------------------------------


def rnn_step(x_proj: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None,
             nonlinearity: str = "tanh") -> Tensor:
    pre = x_proj + ops.linear(h, weight_hh, bias_hh)
    return pre.tanh() if nonlinearity == "tanh" else pre.relu()


def lstm_gates(x_proj: Tensor, h: Tensor, weight_hh: Tensor,
               bias_hh: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The input, forget, cell and output gates (i, f, g, o), after their nonlinearities."""
    i, f, g, o = (x_proj + ops.linear(h, weight_hh, bias_hh)).chunk(4, -1)
    return i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()


def lstm_step(x_proj: Tensor, h: Tensor, c: Tensor, weight_hh: Tensor,
              bias_hh: Tensor | None, weight_hr: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One LSTM step; with ``proj_size`` the new h is projected down: h = W_hr (o * tanh(c))."""
    i, f, g, o = lstm_gates(x_proj, h, weight_hh, bias_hh)
    c = f * c + i * g
    h = o * c.tanh()
    return (h if weight_hr is None else ops.linear(h, weight_hr)), c


def gru_step(x_proj: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None) -> Tensor:
    r_x, z_x, n_x = x_proj.chunk(3, -1)
    r_h, z_h, n_h = ops.linear(h, weight_hh, bias_hh).chunk(3, -1)
    r, z = (r_x + r_h).sigmoid(), (z_x + z_h).sigmoid()
    n = (n_x + r * n_h).tanh()
    return (1 - z) * n + z * h


# ---------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------


def _size(value: Any, name: str, owner: str, minimum: int) -> int:
    try:
        value = operator.index(value)
    except TypeError as e:
        raise ValueRangeError(f"{owner}: {name} must be an integer, got {value!r}") from e
    if value < minimum:
        raise ValueRangeError(f"{owner}: {name} must be >= {minimum}, got {value}")
    return value


class RNNBase(Module):
    """The shared layer: parameters, initialisation, shapes, and the loop over layers,
    directions and time. ``mode`` picks the step (RNN_TANH, RNN_RELU, LSTM, GRU)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        if isinstance(proj_size, bool) or not isinstance(proj_size, int | np.integer) or (
                proj_size < 0):
            raise ValueRangeError(f"{name}: proj_size should be a positive integer or zero to "
                                  f"disable projections, got {proj_size!r}")
        if proj_size and mode != "LSTM":
            raise ValueRangeError(f"{name}: proj_size argument is only supported for LSTM, not "
                                  "RNN or GRU")
        if isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueRangeError(f"{name}: dropout should be a number in range [0, 1] "
                                  "representing the probability of an element being zeroed")
        self.mode = mode
        self.input_size = _size(input_size, "input_size", name, 0)
        self.hidden_size = _size(hidden_size, "hidden_size", name, 1)
        self.num_layers = _size(num_layers, "num_layers", name, 1)
        self.bias, self.batch_first = bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        if proj_size >= self.hidden_size:
            raise ValueRangeError(f"{name}: proj_size has to be smaller than hidden_size (got "
                                  f"proj_size={proj_size}, hidden_size={self.hidden_size})")
        self.proj_size = int(proj_size)
        dtype = dtypes.to_dtype(dtype)
        directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * self.hidden_size
        out_size = self.proj_size or self.hidden_size  # the size of h (the cell c: hidden_size)
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else out_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = {"weight_ih": (gate_size, layer_input),
                          "weight_hh": (gate_size, out_size)}
                if bias:
                    shapes |= {"bias_ih": (gate_size,), "bias_hh": (gate_size,)}
                if self.proj_size:  # h = W_hr (o * tanh(c)): hidden_size -> proj_size
                    shapes |= {"weight_hr": (self.proj_size, self.hidden_size)}
                for kind, shape in shapes.items():
                    self.register_parameter(kind + suffix, Parameter(np.empty(shape, dtype)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -bound, bound)

    def flatten_parameters(self) -> None:
        """A no-op (PyTorch packs weights for cuDNN here), so ported scripts run."""

    def _weights(self, layer: int, direction: int) -> tuple[Any, ...]:
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        return tuple(getattr(self, kind + suffix, None)
                     for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"))

    def _check_input(self, input: Tensor) -> bool:
        name = type(self).__name__
        if not isinstance(input, Tensor) or input.ndim not in (2, 3):
            raise ShapeError(f"{name}: expected input to be 2-D (unbatched: seq, features) or "
                             f"3-D, got shape {getattr(input, 'shape', None)}")
        if input.shape[-1] != self.input_size:
            raise ShapeError(f"{name}: input.size(-1) must be equal to input_size. Expected "
                             f"{self.input_size}, got {input.shape[-1]} (input {input.shape})")
        return input.ndim == 3

    def _check_hidden(self, h: Tensor, batch: int, what: str) -> None:
        size = self.proj_size if what == "hidden[0]" and self.proj_size else self.hidden_size
        expected = (self.num_layers * (2 if self.bidirectional else 1), batch, size)
        if tuple(h.shape) != expected:
            raise ShapeError(f"{type(self).__name__}: expected {what} size {expected}, got "
                             f"{tuple(h.shape)} (num_layers * num_directions, batch, hidden)")

    def forward(self, input: Tensor, hx: Any = None) -> tuple[Tensor, Any]:  # noqa: A002
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        batched = self._check_input(input)
        lstm = self.mode == "LSTM"
        if not batched:  # one sequence (seq, features): a batch of one, removed again below
            input = input.unsqueeze(1)
            if hx is not None:
                hx = tuple(h.unsqueeze(1) for h in hx) if lstm else hx.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)  # the loop below runs over (seq, batch, features)
        steps, batch = input.shape[0], input.shape[1]
        if steps == 0:
            raise ShapeError(f"{type(self).__name__}: the input sequence is empty (input "
                             f"{input.shape}); give at least one time step")
        directions = 2 if self.bidirectional else 1
        h0, c0 = self._initial_state(hx, batch, input.dtype)
        # one (batch, features) tensor per time step; a layer's outputs are the next one's
        # inputs, step by step (indexing one big tensor at every step would make backward
        # add a full-size gradient per step: time squared)
        layer_input, last_h, last_c = list(input.unbind(0)), [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                k = layer * directions + direction
                weight_ih, weight_hh, bias_ih, bias_hh, weight_hr = self._weights(layer,
                                                                                  direction)
                h, c = h0[k], (c0[k] if lstm else None)
                hs: list[Any] = [None] * steps
                for t in (reversed(range(steps)) if direction else range(steps)):
                    x_proj = ops.linear(layer_input[t], weight_ih, bias_ih)
                    h, c = self._step(x_proj, h, c, weight_hh, bias_hh, weight_hr)
                    hs[t] = h
                outputs.append(hs)
                last_h.append(h)
                last_c.append(c)
            layer_input = outputs[0] if directions == 1 else [
                ops.cat(pair, -1) for pair in zip(*outputs, strict=True)]
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = [dropout(x, self.dropout, True) for x in layer_input]
        output, h_n = ops.stack(layer_input), ops.stack(last_h)
        c_n = ops.stack(last_c) if lstm else None
        if not batched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
            c_n = c_n.squeeze(1) if lstm else None
        elif self.batch_first:
            output = output.transpose(0, 1)
        return (output, (h_n, c_n)) if lstm else (output, h_n)

    def _initial_state(self, hx: Any, batch: int, dtype: np.dtype) -> tuple[Tensor, Any]:
        """h0 and c0 (None but for LSTM), checked; zeros if not given: h0 (layers * directions,
        batch, proj_size or hidden_size), c0 (layers * directions, batch, hidden_size)."""
        if hx is not None and self.mode == "LSTM":
            h0, c0 = hx
            self._check_hidden(h0, batch, "hidden[0]")
            self._check_hidden(c0, batch, "hidden[1]")
            return h0, c0
        if hx is not None:
            self._check_hidden(hx, batch, "hidden")
            return hx, None
        layers = self.num_layers * (2 if self.bidirectional else 1)
        c0 = creation.zeros(layers, batch, self.hidden_size, dtype=dtype)
        if not self.proj_size:
            return c0, c0
        return creation.zeros(layers, batch, self.proj_size, dtype=dtype), c0

    def _step(self, x_proj: Tensor, h: Tensor, c: Any, weight_hh: Tensor,
              bias_hh: Tensor | None, weight_hr: Tensor | None = None) -> tuple[Tensor, Any]:
        if self.mode == "LSTM":
            return lstm_step(x_proj, h, c, weight_hh, bias_hh, weight_hr)
        if self.mode == "GRU":
            return gru_step(x_proj, h, weight_hh, bias_hh), None
        nonlinearity = "tanh" if self.mode == "RNN_TANH" else "relu"
        return rnn_step(x_proj, h, weight_hh, bias_hh, nonlinearity), None

    def _forward_packed(self, packed: PackedSequence, hx: Any) -> tuple[PackedSequence, Any]:
        """The layer over a PackedSequence: at step t only the batch_sizes[t] sequences still
        going are stepped (the batch is sorted longest first), so each sequence's h_n is its
        hidden state at its own last valid step, as in PyTorch."""
        name, lstm = type(self).__name__, self.mode == "LSTM"
        data = packed.data
        if data.ndim != 2 or data.shape[-1] != self.input_size:
            raise ShapeError(f"{name}: a PackedSequence's data must be (steps, input_size="
                             f"{self.input_size}), got {data.shape}")
        sizes = [int(n) for n in packed.batch_sizes.numpy()]
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        batch, directions = sizes[0], 2 if self.bidirectional else 1
        sorted_indices, unsorted_indices = packed.sorted_indices, packed.unsorted_indices
        h0, c0 = self._initial_state(hx, batch, data.dtype)
        if sorted_indices is not None and hx is not None:  # the caller's order -> sorted
            h0 = h0.index_select(1, sorted_indices)
            c0 = c0.index_select(1, sorted_indices) if lstm else None
        layer_input, last_h, last_c = data, [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                k = layer * directions + direction
                weight_ih, weight_hh, bias_ih, bias_hh, weight_hr = self._weights(layer,
                                                                                  direction)
                x_proj = ops.linear(layer_input, weight_ih, bias_ih)  # every valid step at once
                h, c = h0[k], (c0[k] if lstm else None)  # (batch, hidden): row b, sequence b
                hs: list[Any] = [None] * len(sizes)
                for t in (reversed(range(len(sizes))) if direction else range(len(sizes))):
                    n = sizes[t]  # sequences 0..n-1 are still going at step t
                    h_t, c_t = self._step(x_proj[starts[t]:starts[t + 1]], h[:n],
                                          c[:n] if lstm else None, weight_hh, bias_hh,
                                          weight_hr)
                    h = h_t if n == batch else ops.cat([h_t, h[n:]], 0)  # the rest keep theirs
                    if lstm:
                        c = c_t if n == batch else ops.cat([c_t, c[n:]], 0)
                    hs[t] = h_t
                outputs.append(ops.cat(hs, 0))
                last_h.append(h)
                last_c.append(c)
            layer_input = outputs[0] if directions == 1 else ops.cat(outputs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = dropout(layer_input, self.dropout, True)
        h_n = ops.stack(last_h)
        c_n = ops.stack(last_c) if lstm else None
        if unsorted_indices is not None:  # back to the caller's order
            h_n = h_n.index_select(1, unsorted_indices)
            c_n = c_n.index_select(1, unsorted_indices) if lstm else None
        output = PackedSequence(layer_input, packed.batch_sizes, sorted_indices,
                                unsorted_indices)
        return (output, (h_n, c_n)) if lstm else (output, h_n)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        return s


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu).

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False)``. Input (L, N, H_in) (or (N, L, H_in)
    with batch_first, or (L, H_in) unbatched), optional h0 (layers * directions, N, H); returns
    (output (L, N, directions * H), h_n).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device: Any = None,
                 dtype: Any = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueRangeError(f"RNN: unknown nonlinearity {nonlinearity!r}; select from "
                                  "'tanh' or 'relu'")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)


class LSTM(RNNBase):
    """Long short-term memory. Same arguments as RNN (no nonlinearity), and ``proj_size``
    (0: none; else each step's h is projected to proj_size by ``weight_hr_l{k}``, so h0, h_n and
    the output have proj_size features, c0 and c_n hidden_size);
    ``forward(input, (h0, c0))`` returns ``(output, (h_n, c_n))``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device, dtype)


class GRU(RNNBase):
    """Gated recurrent unit. Same arguments as RNN (no nonlinearity); returns (output, h_n)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device: Any = None, dtype: Any = None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, device=device, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# Cells: one step, parameters weight_ih, weight_hh, bias_ih, bias_hh
# ---------------------------------------------------------------------------------------------


class RNNCellBase(Module):
    def __init__(self, input_size: int, hidden_size: int, bias: bool, gates: int,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        self.input_size = _size(input_size, "input_size", name, 0)
        self.hidden_size = _size(hidden_size, "hidden_size", name, 1)
        self.bias = bias
        dtype = dtypes.to_dtype(dtype)
        self.weight_ih = Parameter(np.empty((gates * self.hidden_size, self.input_size), dtype))
        self.weight_hh = Parameter(np.empty((gates * self.hidden_size, self.hidden_size), dtype))
        if bias:
            self.bias_ih = Parameter(np.empty((gates * self.hidden_size,), dtype))
            self.bias_hh = Parameter(np.empty((gates * self.hidden_size,), dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -bound, bound)

    def _prepare(self, input: Tensor, hx: Any) -> tuple[Tensor, Any, bool]:  # noqa: A002
        name = type(self).__name__
        if not isinstance(input, Tensor) or input.ndim not in (1, 2):
            raise ShapeError(f"{name}: Expected input to be 1D or 2D, got shape "
                             f"{getattr(input, 'shape', None)}")
        if input.shape[-1] != self.input_size:
            raise ShapeError(f"{name}: input has inconsistent input_size: got "
                             f"{input.shape[-1]} expected {self.input_size}")
        batched = input.ndim == 2
        if not batched:
            input = input.unsqueeze(0)
            if hx is not None:
                hx = tuple(h.unsqueeze(0) for h in hx) if isinstance(hx, tuple) else (
                    hx.unsqueeze(0))
        if hx is None:
            zeros = creation.zeros(input.shape[0], self.hidden_size, dtype=input.dtype)
            hx = (zeros, zeros) if isinstance(self, LSTMCell) else zeros
        return input, hx, batched

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        return s


class RNNCell(RNNCellBase):
    """One step of an Elman RNN: ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or relu)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device: Any = None, dtype: Any = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueRangeError(f"RNNCell: unknown nonlinearity {nonlinearity!r}; select "
                                  "from 'tanh' or 'relu'")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # noqa: A002
        x, h, batched = self._prepare(input, hx)
        h = rnn_step(ops.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh,
                     self.bias_hh, self.nonlinearity)
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step: ``(h', c') = cell(x, (h, c))`` with gates i, f, g, o."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: Tensor, hx: Any = None) -> tuple[Tensor, Tensor]:  # noqa: A002
        x, (h, c), batched = self._prepare(input, hx)
        h, c = lstm_step(ops.linear(x, self.weight_ih, self.bias_ih), h, c, self.weight_hh,
                         self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step: ``h' = cell(x, h)`` with gates r, z, n."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # noqa: A002
        x, h, batched = self._prepare(input, hx)
        h = gru_step(ops.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh,
                     self.bias_hh)
        return h if batched else h.squeeze(0)
