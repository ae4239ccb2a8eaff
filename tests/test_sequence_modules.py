"""Embedding, RNN/LSTM/GRU and their cells, scaled_dot_product_attention, MultiheadAttention
and the transformer encoder against PyTorch in float64: tinynet's parameters are loaded into
the torch module (and torch's back into a fresh tinynet module), then outputs, the input's
gradient and every parameter's gradient must agree within 1e-10 relative, over
hypothesis-drawn sizes, masks and options. Central-difference checks (no torch needed) run on
small cases at the end."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinynet as tn
import tinynet.nn.functional as F
from tinynet import nn
from tinynet.nn.rnn import RNNBase

RTOL = 1e-10


def _torch():  # noqa: ANN202
    return pytest.importorskip("torch")


def assert_close(ours: Any, theirs: Any, what: str = "") -> None:
    a = ours.data if isinstance(ours, tn.Tensor) else np.asarray(ours)
    b = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
    finite = np.isfinite(b)
    np.testing.assert_array_equal(a[~finite], b[~finite], err_msg=what)
    # Python floats: in float32, 1e-300 would round to 0 and an all-zero reference give 0/0
    scale = max(float(np.abs(b[finite]).max(initial=0.0)), 1e-300)
    error = float(np.abs(a[finite] - b[finite]).max(initial=0.0)) / scale
    assert error <= RTOL, f"{what}: relative error {error:.3g}"


def _to_torch(module: nn.Module, theirs: Any) -> None:
    """Load tinynet's state dict into the torch module (strict: same names and shapes)."""
    torch = _torch()
    theirs.load_state_dict({k: torch.tensor(np.asarray(getattr(v, "data", v)))
                           for k, v in module.state_dict().items()})


def _roundtrip(make: Any, theirs: Any) -> nn.Module:
    """A fresh tinynet module loaded from torch's state dict: must equal torch's parameters."""
    fresh = make()
    fresh.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    for name, value in theirs.state_dict().items():
        assert_close(fresh.state_dict()[name], value, f"state dict {name}, torch -> tinynet")
    return fresh


def _outputs(value: Any) -> list[Any]:
    if isinstance(value, tuple | list):
        return [x for v in value for x in _outputs(v)]
    return [] if value is None else [value]


def _check(ours_module: nn.Module, theirs_module: Any, ours_args: list[Any],
           theirs_args: list[Any], ours_inputs: list[tn.Tensor], theirs_inputs: list[Any],
           ours_kwargs: dict | None = None, theirs_kwargs: dict | None = None) -> None:
    """Outputs equal; a random weighting of every output backpropagated: all gradients equal."""
    torch = _torch()
    ours = _outputs(ours_module(*ours_args, **(ours_kwargs or {})))
    theirs = _outputs(theirs_module(*theirs_args, **(theirs_kwargs or {})))
    assert len(ours) == len(theirs)
    rng = np.random.default_rng(0)
    ours_total, theirs_total = 0, 0
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert_close(a, b, f"output {i}")
        weight = rng.standard_normal(a.shape)
        finite = np.isfinite(a.data)  # fully masked rows are NaN in both: not differentiated
        a = tn.where(tn.tensor(finite), a, 0.0)
        b = torch.where(torch.tensor(finite), b, 0.0)
        ours_total = ours_total + (a * tn.tensor(weight)).sum()
        theirs_total = theirs_total + (b * torch.tensor(weight)).sum()
    ours_total.backward()
    theirs_total.backward()
    for i, (a, b) in enumerate(zip(ours_inputs, theirs_inputs, strict=True)):
        assert_close(a.grad, b.grad, f"gradient of input {i}")
    theirs_params = dict(theirs_module.named_parameters())
    for name, p in ours_module.named_parameters():
        q = theirs_params[name]
        assert_close(p.grad if p.grad is not None else tn.zeros_like(p),
                     q.grad if q.grad is not None else torch.zeros_like(q), f"grad {name}")


def _leaf_pair(array: np.ndarray) -> tuple[tn.Tensor, Any]:
    torch = _torch()
    return tn.tensor(array, requires_grad=True), torch.tensor(array, requires_grad=True)


# ---------------------------------------------------------------------------------------------
# Embedding
# ---------------------------------------------------------------------------------------------


@given(data=st.data())
def test_embedding_module_matches_torch(data: st.DataObject) -> None:
    torch = _torch()
    rows, width = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 4))
    padding_idx = data.draw(st.none() | st.integers(-rows, rows - 1))
    ours = nn.Embedding(rows, width, padding_idx=padding_idx, dtype=tn.float64)
    if padding_idx is not None:
        np.testing.assert_array_equal(ours.weight.data[padding_idx], 0.0)
    theirs = torch.nn.Embedding(rows, width, padding_idx=padding_idx, dtype=torch.float64)
    _to_torch(ours, theirs)
    index = np.random.default_rng(data.draw(st.integers(0, 99))).integers(0, rows, (3, 4))
    _check(ours, theirs, [tn.tensor(index)], [torch.tensor(index)], [], [])
    _roundtrip(lambda: nn.Embedding(rows, width, padding_idx=padding_idx, dtype=tn.float64),
               theirs)


def test_embedding_from_pretrained_freezes_by_default() -> None:
    table = tn.tensor(np.arange(6.0).reshape(3, 2))
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad
    assert np.shares_memory(frozen.weight.data, table.data)  # as torch's: no copy
    np.testing.assert_array_equal(frozen(tn.tensor([2, 0])).data, [[4.0, 5.0], [0.0, 1.0]])
    trained = nn.Embedding.from_pretrained(table, freeze=False, padding_idx=1)
    trained(tn.tensor([1, 2, 2])).sum().backward()
    np.testing.assert_array_equal(trained.weight.grad.data, [[0, 0], [0, 0], [2, 2]])


def test_embedding_init_is_standard_normal() -> None:
    tn.manual_seed(0)
    w = nn.Embedding(400, 50).weight.data
    assert w.dtype == np.float32
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1) < 0.02


# ---------------------------------------------------------------------------------------------
# RNN, LSTM, GRU
# ---------------------------------------------------------------------------------------------


@st.composite
def rnn_settings(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["RNN", "LSTM", "GRU"]))
    options = {"num_layers": draw(st.integers(1, 3)), "bias": draw(st.booleans()),
               "batch_first": draw(st.booleans()), "bidirectional": draw(st.booleans())}
    if kind == "RNN":
        options["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    hidden = draw(st.integers(1, 4))
    if kind == "LSTM":  # 0: no projection; else h is projected to proj_size < hidden
        options["proj_size"] = draw(st.integers(0, hidden - 1))
    return {"kind": kind, "input_size": draw(st.integers(1, 4)),
            "hidden_size": hidden, "options": options,
            "steps": draw(st.integers(1, 5)), "batch": draw(st.none() | st.integers(1, 3)),
            "initial": draw(st.booleans()), "seed": draw(st.integers(0, 2**16))}


@given(s=rnn_settings())
@settings(max_examples=40)
def test_recurrent_layers_match_torch(s: dict[str, Any]) -> None:
    torch = _torch()
    kind, options = s["kind"], s["options"]
    make = lambda: getattr(nn, kind)(s["input_size"], s["hidden_size"],  # noqa: E731
                                     dtype=tn.float64, **options)
    ours = make()
    theirs = getattr(torch.nn, kind)(s["input_size"], s["hidden_size"], dtype=torch.float64,
                                     **options)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _to_torch(ours, theirs)
    rng = np.random.default_rng(s["seed"])
    batch, steps = s["batch"], s["steps"]
    shape = (steps, s["input_size"]) if batch is None else (
        (batch, steps, s["input_size"]) if options["batch_first"] else
        (steps, batch, s["input_size"]))
    x, tx = _leaf_pair(rng.standard_normal(shape))
    ours_args, theirs_args = [x], [tx]
    ours_inputs, theirs_inputs = [x], [tx]
    if s["initial"]:
        layers = options["num_layers"] * (2 if options["bidirectional"] else 1)
        c_shape = (layers, s["hidden_size"]) if batch is None else (layers, batch,
                                                                     s["hidden_size"])
        h_size = options.get("proj_size") or s["hidden_size"]
        h_shape = c_shape[:-1] + (h_size,)
        h, th = _leaf_pair(rng.standard_normal(h_shape))
        ours_inputs.append(h)
        theirs_inputs.append(th)
        if kind == "LSTM":
            c, tc = _leaf_pair(rng.standard_normal(c_shape))
            ours_inputs.append(c)
            theirs_inputs.append(tc)
            ours_args.append((h, c))
            theirs_args.append((th, tc))
        else:
            ours_args.append(h)
            theirs_args.append(th)
    _check(ours, theirs, ours_args, theirs_args, ours_inputs, theirs_inputs)
    _roundtrip(make, theirs)


@given(kind=st.sampled_from(["RNNCell", "LSTMCell", "GRUCell"]), bias=st.booleans(),
       batch=st.none() | st.integers(1, 3), initial=st.booleans(), seed=st.integers(0, 99))
def test_cells_match_torch(kind: str, bias: bool, batch: int | None, initial: bool,
                           seed: int) -> None:
    torch = _torch()
    make = lambda: getattr(nn, kind)(3, 4, bias=bias, dtype=tn.float64)  # noqa: E731
    ours = make()
    theirs = getattr(torch.nn, kind)(3, 4, bias=bias, dtype=torch.float64)
    _to_torch(ours, theirs)
    rng = np.random.default_rng(seed)
    x, tx = _leaf_pair(rng.standard_normal((3,) if batch is None else (batch, 3)))
    ours_args, theirs_args, ours_inputs, theirs_inputs = [x], [tx], [x], [tx]
    if initial:
        h_shape = (4,) if batch is None else (batch, 4)
        pairs = [_leaf_pair(rng.standard_normal(h_shape))
                 for _ in range(2 if kind == "LSTMCell" else 1)]
        ours_inputs += [p[0] for p in pairs]
        theirs_inputs += [p[1] for p in pairs]
        ours_args.append(tuple(p[0] for p in pairs) if kind == "LSTMCell" else pairs[0][0])
        theirs_args.append(tuple(p[1] for p in pairs) if kind == "LSTMCell" else pairs[0][1])
    _check(ours, theirs, ours_args, theirs_args, ours_inputs, theirs_inputs)
    _roundtrip(make, theirs)


def test_recurrent_init_is_uniform_in_one_over_sqrt_hidden() -> None:
    tn.manual_seed(0)
    lstm = nn.LSTM(30, 16, num_layers=2)
    values = np.concatenate([p.data.ravel() for p in lstm.parameters()])
    assert values.dtype == np.float32
    assert np.abs(values).max() <= 0.25 and np.abs(values).max() > 0.249


def test_dropout_between_layers_only_in_training() -> None:
    tn.manual_seed(0)
    gru = nn.GRU(3, 5, num_layers=2, dropout=0.5)
    x = tn.randn(4, 2, 3)
    gru.eval()
    a, b = gru(x)[0], gru(x)[0]
    np.testing.assert_array_equal(a.data, b.data)
    gru.train()
    assert not np.array_equal(gru(x)[0].data, gru(x)[0].data)


def test_recurrent_layer_names_the_wrong_input_size() -> None:
    with pytest.raises(tn.ShapeError, match="Expected 3, got 4"):
        nn.LSTM(3, 5)(tn.zeros(2, 1, 4))
    with pytest.raises(tn.ShapeError, match=r"hidden\[0\] size \(1, 1, 5\)"):
        nn.LSTM(3, 5)(tn.zeros(2, 1, 3), (tn.zeros(2, 1, 5), tn.zeros(1, 1, 5)))


def test_lstm_proj_size_shapes_names_and_refusals() -> None:
    lstm = nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    shapes = {k: tuple(v.shape) for k, v in lstm.state_dict().items()}
    assert shapes["weight_hh_l0"] == (20, 2) and shapes["weight_hr_l0"] == (2, 5)
    assert shapes["weight_ih_l1_reverse"] == (20, 4)  # two directions of proj_size
    assert list(shapes)[:5] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                                "weight_hr_l0"]
    out, (h, c) = lstm(tn.zeros(6, 4, 3))
    assert out.shape == (6, 4, 4) and h.shape == (4, 4, 2) and c.shape == (4, 4, 5)
    assert "proj_size=2" in repr(lstm)
    with pytest.raises(tn.ShapeError, match=r"hidden\[0\] size \(4, 4, 2\)"):
        lstm(tn.zeros(6, 4, 3), (tn.zeros(4, 4, 5), tn.zeros(4, 4, 5)))
    with pytest.raises(tn.ValueRangeError, match="smaller than hidden_size"):
        nn.LSTM(3, 5, proj_size=5)
    with pytest.raises(tn.ValueRangeError, match="positive integer or zero"):
        nn.LSTM(3, 5, proj_size=-1)
    with pytest.raises(tn.ValueRangeError, match="only supported for LSTM"):
        RNNBase("GRU", 3, 5, proj_size=2)  # torch.nn.RNNBase says the same


# ---------------------------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------------------------


@given(data=st.data())
def test_scaled_dot_product_attention_matches_torch(data: st.DataObject) -> None:
    torch = _torch()
    lead = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2)))
    length, source = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    e, ev = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    q, tq = _leaf_pair(rng.standard_normal(lead + (length, e)))
    k, tk = _leaf_pair(rng.standard_normal(lead + (source, e)))
    v, tv = _leaf_pair(rng.standard_normal(lead + (source, ev)))
    kind = data.draw(st.sampled_from(["none", "bool", "float", "causal"]))
    scale = data.draw(st.none() | st.floats(0.1, 2.0))
    kwargs: dict[str, Any] = {"scale": scale}
    tkwargs: dict[str, Any] = {"scale": scale}
    if kind == "bool":
        mask = rng.random((length, source)) < 0.7
        mask[:, 0] = True  # every query sees some key (else NaN, in both libraries)
        kwargs["attn_mask"], tkwargs["attn_mask"] = tn.tensor(mask), torch.tensor(mask)
    elif kind == "float":
        mask = rng.standard_normal((length, source))
        kwargs["attn_mask"], tkwargs["attn_mask"] = tn.tensor(mask), torch.tensor(mask)
    elif kind == "causal":
        kwargs["is_causal"] = tkwargs["is_causal"] = True
    ours = F.scaled_dot_product_attention(q, k, v, **kwargs)
    theirs = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, **tkwargs)
    assert_close(ours, theirs, "output")
    grad = rng.standard_normal(ours.shape)
    ours.backward(tn.tensor(grad))
    theirs.backward(torch.tensor(grad))
    for name, a, b in (("q", q, tq), ("k", k, tk), ("v", v, tv)):
        assert_close(a.grad, b.grad, f"gradient of {name}")


def test_scaled_dot_product_attention_dropout_is_seeded_and_keeps_the_mean() -> None:
    q = tn.randn(1, 200, 4)
    tn.manual_seed(3)
    a = F.scaled_dot_product_attention(q, q, tn.ones(1, 200, 1), dropout_p=0.5)
    tn.manual_seed(3)
    b = F.scaled_dot_product_attention(q, q, tn.ones(1, 200, 1), dropout_p=0.5)
    np.testing.assert_array_equal(a.data, b.data)
    assert abs(a.data.mean() - 1.0) < 0.1  # each row of weights sums to 1 in expectation


@st.composite
def mha_settings(draw: Any) -> dict[str, Any]:
    heads = draw(st.integers(1, 3))
    embed = heads * draw(st.integers(1, 3))
    same = draw(st.booleans())
    return {"embed": embed, "heads": heads, "bias": draw(st.booleans()),
            "batch_first": draw(st.booleans()), "self": draw(st.booleans()),
            "kdim": None if same else draw(st.integers(1, 4)),
            "vdim": None if same else draw(st.integers(1, 4)),
            "length": draw(st.integers(1, 4)), "source": draw(st.integers(1, 4)),
            "batch": draw(st.none() | st.integers(1, 3)),
            "attn_mask": draw(st.sampled_from([None, "bool", "float", "bool3d"])),
            "padding": draw(st.sampled_from([None, "bool", "float"])),
            "need_weights": draw(st.booleans()), "average": draw(st.booleans()),
            "add_bias_kv": draw(st.booleans()), "add_zero_attn": draw(st.booleans()),
            "seed": draw(st.integers(0, 999))}


@given(s=mha_settings())
@settings(max_examples=50)
def test_multihead_attention_matches_torch(s: dict[str, Any]) -> None:
    torch = _torch()
    self_attention = s["self"] and s["kdim"] is None
    options = {"bias": s["bias"], "batch_first": s["batch_first"], "kdim": s["kdim"],
               "vdim": s["vdim"], "add_bias_kv": s["add_bias_kv"],
               "add_zero_attn": s["add_zero_attn"]}
    make = lambda: nn.MultiheadAttention(s["embed"], s["heads"], dtype=tn.float64,  # noqa: E731
                                         **options)
    ours = make()
    theirs = torch.nn.MultiheadAttention(s["embed"], s["heads"], dtype=torch.float64, **options)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _to_torch(ours, theirs)
    rng = np.random.default_rng(s["seed"])
    batch, length = s["batch"], s["length"]
    source = length if self_attention else s["source"]

    def shape(n: int, width: int) -> tuple[int, ...]:
        if batch is None:
            return (n, width)
        return (batch, n, width) if s["batch_first"] else (n, batch, width)

    q, tq = _leaf_pair(rng.standard_normal(shape(length, s["embed"])))
    if self_attention:
        ours_args, theirs_args, ours_in, theirs_in = [q, q, q], [tq, tq, tq], [q], [tq]
    else:
        k, tk = _leaf_pair(rng.standard_normal(shape(source, s["kdim"] or s["embed"])))
        v, tv = _leaf_pair(rng.standard_normal(shape(source, s["vdim"] or s["embed"])))
        ours_args, theirs_args, ours_in, theirs_in = [q, k, v], [tq, tk, tv], [q, k, v], [tq,
                                                                                         tk, tv]
    kwargs: dict[str, Any] = {"need_weights": s["need_weights"],
                              "average_attn_weights": s["average"]}
    tkwargs = dict(kwargs)
    n = batch or 1
    if s["attn_mask"] is not None:
        if s["attn_mask"] == "float":
            mask = rng.standard_normal((length, source))
        else:
            mask_shape = (n * s["heads"], length, source) if s["attn_mask"] == "bool3d" and (
                batch is not None) else (length, source)
            mask = rng.random(mask_shape) < 0.4  # True: may not attend
            mask[..., 0] = False
        kwargs["attn_mask"], tkwargs["attn_mask"] = tn.tensor(mask), torch.tensor(mask)
    if s["padding"] is not None:
        if s["padding"] == "bool":
            pad = rng.random((n, source)) < 0.4
            pad[:, 0] = False
            if s["attn_mask"] in ("bool", "bool3d"):  # torch wants matching mask types
                pad = pad & False
        else:
            pad = rng.standard_normal((n, source))
            if s["attn_mask"] in ("bool", "bool3d"):
                pad = pad.astype(bool) & False
        if s["attn_mask"] == "float" and pad.dtype == bool:
            pad = np.where(pad, -np.inf, 0.0)
        if batch is None:
            pad = pad[0]
        kwargs["key_padding_mask"] = tn.tensor(pad)
        tkwargs["key_padding_mask"] = torch.tensor(pad)
    _check(ours, theirs, ours_args, theirs_args, ours_in, theirs_in, kwargs, tkwargs)
    _roundtrip(make, theirs)


def test_multihead_attention_init_matches_torch_layout() -> None:
    tn.manual_seed(0)
    mha = nn.MultiheadAttention(64, 4)
    bound = np.sqrt(6.0 / (64 + 192))  # xavier_uniform on (3E, E)
    w = mha.in_proj_weight.data
    assert w.shape == (192, 64) and np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    np.testing.assert_array_equal(mha.in_proj_bias.data, 0.0)
    np.testing.assert_array_equal(mha.out_proj.bias.data, 0.0)


def test_multihead_attention_bias_kv_and_zero_attn_add_source_positions() -> None:
    tn.manual_seed(0)
    mha = nn.MultiheadAttention(64, 4, add_bias_kv=True, add_zero_attn=True)
    assert list(mha.state_dict()) == ["in_proj_weight", "in_proj_bias", "bias_k", "bias_v",
                                      "out_proj.weight", "out_proj.bias"]
    std = np.sqrt(2.0 / (1 + 64))  # xavier_normal on (1, 1, E): fan_in 1, fan_out E
    assert mha.bias_k.shape == (1, 1, 64) and 0.5 * std < mha.bias_k.data.std() < 1.5 * std
    x = tn.randn(5, 2, 64)
    mask = tn.tensor(np.triu(np.ones((5, 5), dtype=bool), 1))
    out, weights = mha(x, x, x, attn_mask=mask)
    assert out.shape == (5, 2, 64) and weights.shape == (2, 5, 7)  # 5 keys + bias + zeros
    assert weights.data[:, 0, 1:5].max() == 0 and weights.data[:, 0, 5:].min() > 0
    np.testing.assert_allclose(weights.data.sum(-1), 1.0, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Transformer encoder
# ---------------------------------------------------------------------------------------------


@given(norm_first=st.booleans(), activation=st.sampled_from(["relu", "gelu"]),
       batch_first=st.booleans(), layers=st.integers(1, 2), final_norm=st.booleans(),
       mask=st.sampled_from([None, "causal", "padding"]), seed=st.integers(0, 999))
@settings(max_examples=30)
def test_transformer_encoder_matches_torch(norm_first: bool, activation: str,
                                           batch_first: bool, layers: int, final_norm: bool,
                                           mask: str | None, seed: int) -> None:
    torch = _torch()
    d, heads, ff = 6, 2, 10
    options = {"dim_feedforward": ff, "dropout": 0.0, "activation": activation,
               "batch_first": batch_first, "norm_first": norm_first, "layer_norm_eps": 1e-4}

    def make() -> nn.Module:
        layer = nn.TransformerEncoderLayer(d, heads, dtype=tn.float64, **options)
        norm = nn.LayerNorm(d, dtype=tn.float64) if final_norm else None
        return nn.TransformerEncoder(layer, layers, norm=norm)

    ours = make()
    layer = torch.nn.TransformerEncoderLayer(d, heads, dtype=torch.float64, **options)
    norm = torch.nn.LayerNorm(d, dtype=torch.float64) if final_norm else None
    theirs = torch.nn.TransformerEncoder(layer, layers, norm=norm, enable_nested_tensor=False)
    rng = np.random.default_rng(seed)
    for p in ours.parameters():  # distinct layers, non-trivial norms
        p.data[...] = rng.standard_normal(p.shape) * 0.5
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _to_torch(ours, theirs)
    length, batch = 5, 3
    x, tx = _leaf_pair(rng.standard_normal((batch, length, d) if batch_first else
                                           (length, batch, d)))
    kwargs: dict[str, Any] = {}
    tkwargs: dict[str, Any] = {}
    if mask == "causal":
        causal = nn.transformer.generate_square_subsequent_mask(length, dtype=tn.float64)
        kwargs = {"mask": causal, "is_causal": True}
        tkwargs = {"mask": torch.nn.Transformer.generate_square_subsequent_mask(
            length, dtype=torch.float64), "is_causal": True}
        assert_close(causal, tkwargs["mask"], "causal mask")
    elif mask == "padding":
        pad = np.zeros((batch, length), dtype=bool)
        pad[0, 3:] = pad[2, 1:] = True
        kwargs, tkwargs = {"src_key_padding_mask": tn.tensor(pad)}, {
            "src_key_padding_mask": torch.tensor(pad)}
    _check(ours, theirs, [x], [tx], [x], [tx], kwargs, tkwargs)
    _roundtrip(make, theirs)


def test_encoder_layer_defaults_are_pytorchs() -> None:
    layer = nn.TransformerEncoderLayer(16, 4)
    assert layer.linear1.weight.shape == (2048, 16)
    assert layer.dropout.p == 0.1 and layer.norm1.eps == 1e-5
    assert not layer.norm_first and not layer.self_attn.batch_first


# ---------------------------------------------------------------------------------------------
# Without torch: central differences through whole modules
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_recurrent_gradients_match_central_differences(kind: str) -> None:
    tn.manual_seed(0)
    layer = getattr(nn, kind)(2, 3, num_layers=2, bidirectional=True, dtype=tn.float64)
    x = tn.randn(3, 2, 2, dtype=tn.float64, requires_grad=True)
    params = list(layer.parameters())

    def run(x: tn.Tensor, *weights: tn.Tensor) -> tn.Tensor:
        return layer(x)[0]

    assert tn.gradcheck(run, [x, *params], atol=1e-7, rtol=1e-6)


def test_attention_and_encoder_gradients_match_central_differences() -> None:
    tn.manual_seed(1)
    layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0,
                                       activation="gelu", dtype=tn.float64, norm_first=True)
    x = tn.randn(3, 2, 4, dtype=tn.float64, requires_grad=True)
    causal = nn.transformer.generate_square_subsequent_mask(3, dtype=tn.float64)
    params = list(layer.parameters())
    assert tn.gradcheck(lambda x, *w: layer(x, src_mask=causal), [x, *params],
                        atol=1e-7, rtol=1e-6)


def test_encoder_gelu_is_the_formula_tables_gelu() -> None:
    """activation="gelu" picks F.gelu (GELU's one definition, checked in test_opdb)."""
    layer = nn.TransformerEncoderLayer(4, 2, 8, activation="gelu", dtype=tn.float64)
    assert layer.activation is F.gelu
