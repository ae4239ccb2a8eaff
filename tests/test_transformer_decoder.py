"""TransformerDecoderLayer, TransformerDecoder and Transformer against PyTorch in float64:
tinynet's parameters are loaded into the torch module (and torch's back into a fresh tinynet
module), then outputs, the inputs' gradients and every parameter's gradient must agree within
1e-10 relative, over hypothesis-drawn options and masks. Signatures, init, errors and a
central-difference check (no torch needed) follow."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# The float64 comparison and state-dict helpers are the encoder tests' (one copy of each).
from test_sequence_modules import _roundtrip, _to_torch, _torch, assert_close  # noqa: E402, F401

import tinynet as tn
import tinynet.nn.functional as F
from tinynet import nn
from tinynet.errors import ShapeError, ValueRangeError


def _check(ours_module: nn.Module, theirs_module: Any, ours_args: list[Any],
           theirs_args: list[Any], ours_inputs: list[tn.Tensor], theirs_inputs: list[Any],
           ours_kwargs: dict | None = None, theirs_kwargs: dict | None = None) -> None:
    """Output equal; a random weighting of it backpropagated: all gradients equal."""
    torch = _torch()
    a = ours_module(*ours_args, **(ours_kwargs or {}))
    b = theirs_module(*theirs_args, **(theirs_kwargs or {}))
    assert_close(a, b, "output")
    assert np.isfinite(a.data).all()  # masks below never hide every key of a query
    weight = np.random.default_rng(0).standard_normal(a.shape)
    (a * tn.tensor(weight)).sum().backward()
    (b * torch.tensor(weight)).sum().backward()
    for i, (x, y) in enumerate(zip(ours_inputs, theirs_inputs, strict=True)):
        assert_close(x.grad, y.grad, f"gradient of input {i}")
    theirs_params = dict(theirs_module.named_parameters())
    ours_params = dict(ours_module.named_parameters())
    assert list(ours_params) == list(theirs_params)
    for name, p in ours_params.items():
        q = theirs_params[name]
        assert q.grad is not None and p.grad is not None, name
        assert_close(p.grad, q.grad, f"grad {name}")


def _leaf_pair(array: np.ndarray) -> tuple[tn.Tensor, Any]:
    torch = _torch()
    return tn.tensor(array, requires_grad=True), torch.tensor(array, requires_grad=True)


def _randomise(module: nn.Module, rng: np.random.Generator) -> None:
    """Distinct layers, non-trivial norms and biases."""
    for p in module.parameters():
        p.data[...] = rng.standard_normal(p.shape) * 0.5


def _masks(rng: np.random.Generator, kind: dict[str, Any], batch: int, length: int,
           source: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keyword arguments for tinynet and for torch. No query ever has all its keys hidden:
    key 0 of the target and of the memory stays visible."""
    torch = _torch()
    ours: dict[str, Any] = {}
    if kind["tgt_mask"] == "causal float":
        ours["tgt_mask"] = nn.Transformer.generate_square_subsequent_mask(
            length, dtype=tn.float64)
        ours["tgt_is_causal"] = True
    elif kind["tgt_mask"] == "causal bool":
        ours["tgt_mask"] = np.triu(np.ones((length, length), dtype=bool), 1)
        ours["tgt_is_causal"] = True
    elif kind["tgt_mask"] == "float":
        ours["tgt_mask"] = rng.standard_normal((length, length))
    if kind["memory_mask"] == "bool":
        hide = rng.random((length, source)) < 0.4
        hide[:, 0] = False
        ours["memory_mask"] = hide
    elif kind["memory_mask"] == "float":
        mask = rng.standard_normal((length, source))
        mask[rng.random((length, source)) < 0.3] = -np.inf
        mask[:, 0] = 0.5
        ours["memory_mask"] = mask
    if kind["tgt_key_padding_mask"]:
        pad = np.zeros((batch, length), dtype=bool)
        pad[0, length - 2:] = pad[-1, 1:] = True
        ours["tgt_key_padding_mask"] = pad
    if kind["memory_key_padding_mask"]:
        pad = np.zeros((batch, source), dtype=bool)
        pad[-1, 2:] = True
        ours["memory_key_padding_mask"] = pad
    theirs = {k: torch.tensor(v.data if isinstance(v, tn.Tensor) else v)
              if not isinstance(v, bool) else v for k, v in ours.items()}
    ours = {k: tn.tensor(v) if isinstance(v, np.ndarray) else v for k, v in ours.items()}
    return ours, theirs


MASKS = st.fixed_dictionaries({
    "tgt_mask": st.sampled_from([None, "causal float", "causal bool", "float"]),
    "memory_mask": st.sampled_from([None, "bool", "float"]),
    "tgt_key_padding_mask": st.booleans(),
    "memory_key_padding_mask": st.booleans(),
})


# ---------------------------------------------------------------------------------------------
# Against torch
# ---------------------------------------------------------------------------------------------


@given(norm_first=st.booleans(), activation=st.sampled_from(["relu", "gelu"]),
       batch_first=st.booleans(), bias=st.booleans(), masks=MASKS, seed=st.integers(0, 999))
@settings(max_examples=30, deadline=None)
def test_decoder_layer_matches_torch(norm_first: bool, activation: str, batch_first: bool,
                                     bias: bool, masks: dict[str, Any], seed: int) -> None:
    torch = _torch()
    d, heads, ff = 6, 2, 10
    options = {"dim_feedforward": ff, "dropout": 0.0, "activation": activation,
               "batch_first": batch_first, "norm_first": norm_first, "layer_norm_eps": 1e-4,
               "bias": bias}

    def make() -> nn.Module:
        return nn.TransformerDecoderLayer(d, heads, dtype=tn.float64, **options)

    ours = make().eval()
    theirs = torch.nn.TransformerDecoderLayer(d, heads, dtype=torch.float64, **options).eval()
    rng = np.random.default_rng(seed)
    _randomise(ours, rng)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _to_torch(ours, theirs)
    batch, length, source = 3, 5, 4
    shape = (lambda n: (batch, n, d)) if batch_first else (lambda n: (n, batch, d))
    tgt, ttgt = _leaf_pair(rng.standard_normal(shape(length)))
    memory, tmemory = _leaf_pair(rng.standard_normal(shape(source)))
    kwargs, tkwargs = _masks(rng, masks, batch, length, source)
    _check(ours, theirs, [tgt, memory], [ttgt, tmemory], [tgt, memory], [ttgt, tmemory],
           kwargs, tkwargs)
    _roundtrip(make, theirs)


@given(norm_first=st.booleans(), batch_first=st.booleans(), layers=st.integers(1, 3),
       final_norm=st.booleans(), masks=MASKS, seed=st.integers(0, 999))
@settings(max_examples=20, deadline=None)
def test_decoder_stack_matches_torch(norm_first: bool, batch_first: bool, layers: int,
                                     final_norm: bool, masks: dict[str, Any],
                                     seed: int) -> None:
    torch = _torch()
    d, heads, ff = 4, 2, 6
    options = {"dim_feedforward": ff, "dropout": 0.0, "batch_first": batch_first,
               "norm_first": norm_first}

    def make() -> nn.Module:
        layer = nn.TransformerDecoderLayer(d, heads, dtype=tn.float64, **options)
        norm = nn.LayerNorm(d, dtype=tn.float64) if final_norm else None
        return nn.TransformerDecoder(layer, layers, norm=norm)

    ours = make().eval()
    layer = torch.nn.TransformerDecoderLayer(d, heads, dtype=torch.float64, **options)
    norm = torch.nn.LayerNorm(d, dtype=torch.float64) if final_norm else None
    theirs = torch.nn.TransformerDecoder(layer, layers, norm=norm).eval()
    rng = np.random.default_rng(seed)
    _randomise(ours, rng)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _to_torch(ours, theirs)
    batch, length, source = 2, 4, 5
    shape = (lambda n: (batch, n, d)) if batch_first else (lambda n: (n, batch, d))
    tgt, ttgt = _leaf_pair(rng.standard_normal(shape(length)))
    memory, tmemory = _leaf_pair(rng.standard_normal(shape(source)))
    kwargs, tkwargs = _masks(rng, masks, batch, length, source)
    _check(ours, theirs, [tgt, memory], [ttgt, tmemory], [tgt, memory], [ttgt, tmemory],
           kwargs, tkwargs)
    _roundtrip(make, theirs)


@given(norm_first=st.booleans(), activation=st.sampled_from(["relu", "gelu"]),
       batch_first=st.booleans(), encoder_layers=st.integers(1, 2),
       decoder_layers=st.integers(1, 2), masks=st.booleans(), seed=st.integers(0, 999))
@settings(max_examples=15, deadline=None)
def test_transformer_matches_torch(norm_first: bool, activation: str, batch_first: bool,
                                   encoder_layers: int, decoder_layers: int, masks: bool,
                                   seed: int) -> None:
    torch = _torch()
    d, heads, ff = 6, 3, 8
    options = {"d_model": d, "nhead": heads, "num_encoder_layers": encoder_layers,
               "num_decoder_layers": decoder_layers, "dim_feedforward": ff, "dropout": 0.0,
               "activation": activation, "batch_first": batch_first,
               "norm_first": norm_first}

    def make() -> nn.Module:
        return nn.Transformer(dtype=tn.float64, **options)

    ours = make().eval()
    theirs = torch.nn.Transformer(dtype=torch.float64, **options).eval()
    rng = np.random.default_rng(seed)
    _randomise(ours, rng)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _to_torch(ours, theirs)
    batch, source, length = 2, 5, 4
    shape = (lambda n: (batch, n, d)) if batch_first else (lambda n: (n, batch, d))
    src, tsrc = _leaf_pair(rng.standard_normal(shape(source)))
    tgt, ttgt = _leaf_pair(rng.standard_normal(shape(length)))
    kwargs: dict[str, Any] = {}
    tkwargs: dict[str, Any] = {}
    if masks:
        src_pad = np.zeros((batch, source), dtype=bool)
        src_pad[1, 3:] = True
        tgt_pad = np.zeros((batch, length), dtype=bool)
        tgt_pad[0, 3:] = True
        kwargs = {"tgt_mask": nn.Transformer.generate_square_subsequent_mask(
                      length, dtype=tn.float64), "tgt_is_causal": True,
                  "src_key_padding_mask": tn.tensor(src_pad),
                  "tgt_key_padding_mask": tn.tensor(tgt_pad),
                  "memory_key_padding_mask": tn.tensor(src_pad)}
        tkwargs = {"tgt_mask": torch.nn.Transformer.generate_square_subsequent_mask(
                       length, dtype=torch.float64), "tgt_is_causal": True,
                   "src_key_padding_mask": torch.tensor(src_pad),
                   "tgt_key_padding_mask": torch.tensor(tgt_pad),
                   "memory_key_padding_mask": torch.tensor(src_pad)}
    _check(ours, theirs, [src, tgt], [tsrc, ttgt], [src, tgt], [tsrc, ttgt], kwargs, tkwargs)
    _roundtrip(make, theirs)


def test_transformer_custom_encoder_and_decoder_are_used() -> None:
    torch = _torch()
    d = 4
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(
        d, 2, 6, dropout=0.0, dtype=tn.float64), 1)
    decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(
        d, 2, 6, dropout=0.0, dtype=tn.float64), 2)
    ours = nn.Transformer(d, 2, custom_encoder=encoder, custom_decoder=decoder,
                          dtype=tn.float64)
    assert ours.encoder is encoder and ours.decoder is decoder
    assert ours.encoder.norm is None and len(ours.decoder.layers) == 2
    theirs = torch.nn.Transformer(
        d, 2, dropout=0.0, dtype=torch.float64,
        custom_encoder=torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(
            d, 2, 6, dropout=0.0, dtype=torch.float64), 1, enable_nested_tensor=False),
        custom_decoder=torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(
            d, 2, 6, dropout=0.0, dtype=torch.float64), 2))
    _to_torch(ours, theirs)
    rng = np.random.default_rng(3)
    src, tsrc = _leaf_pair(rng.standard_normal((5, 2, d)))
    tgt, ttgt = _leaf_pair(rng.standard_normal((3, 2, d)))
    _check(ours, theirs, [src, tgt], [tsrc, ttgt], [src, tgt], [tsrc, ttgt])


def test_generate_square_subsequent_mask_matches_torch() -> None:
    torch = _torch()
    for dtype, tdtype in [(None, None), (tn.float64, torch.float64)]:
        ours = nn.Transformer.generate_square_subsequent_mask(4, dtype=dtype)
        theirs = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=tdtype)
        assert_close(ours, theirs, f"mask {dtype}")


def _parameters(function: Any) -> list[tuple[str, Any]]:
    return [(p.name, p.default) for p in inspect.signature(function).parameters.values()
            if p.name != "self"]


@pytest.mark.parametrize("name", ["TransformerDecoderLayer", "TransformerDecoder",
                                  "Transformer"])
def test_signatures_are_pytorchs(name: str) -> None:
    """Same argument names, order and defaults (activation: "relu" here, F.relu there)."""
    torch = _torch()
    for method in ["__init__", "forward"]:
        ours = _parameters(getattr(getattr(nn, name), method))
        theirs = _parameters(getattr(getattr(torch.nn, name), method))
        assert [n for n, _ in ours] == [n for n, _ in theirs], method
        for (n, a), (_, b) in zip(ours, theirs, strict=True):
            if n != "activation":
                assert a == b or (a is inspect.Parameter.empty and b is a), (method, n)
    if name != "TransformerDecoder":
        assert dict(_parameters(getattr(nn, name).__init__))["activation"] == "relu"


def test_decoder_layer_defaults_are_pytorchs() -> None:
    layer = nn.TransformerDecoderLayer(16, 4)
    assert layer.linear1.weight.shape == (2048, 16) and layer.linear1.weight.dtype == tn.float32
    assert layer.dropout.p == layer.dropout3.p == 0.1 and layer.norm3.eps == 1e-5
    assert not layer.norm_first and not layer.multihead_attn.batch_first


# ---------------------------------------------------------------------------------------------
# Initialisation, float32, dropout, errors
# ---------------------------------------------------------------------------------------------


def test_transformer_init_is_xavier_uniform_on_matrices() -> None:
    """Every matrix U(-b, b), b = sqrt(6 / (fan_in + fan_out)), also the feed-forward ones
    (which Linear alone would draw with bound 1/sqrt(fan_in)); vectors keep their own init."""
    tn.manual_seed(0)
    model = nn.Transformer(64, 4, 1, 1, dim_feedforward=16)
    for name, p in model.named_parameters():
        values = p.data.astype(np.float64)
        if p.ndim > 1:
            fan_out, fan_in = p.shape
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            assert np.abs(values).max() <= bound, name
            assert abs(values.std() / (bound / np.sqrt(3.0)) - 1.0) < 0.05, name
        elif "norm" in name:
            expected = 1.0 if name.endswith("weight") else 0.0
            np.testing.assert_array_equal(values, expected, err_msg=name)
        elif "in_proj_bias" in name or "out_proj.bias" in name:
            np.testing.assert_array_equal(values, 0.0, err_msg=name)
        else:  # Linear's own bias init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)): not all zero
            assert 0 < np.abs(values).max() <= 1 / np.sqrt(64 if "linear1" in name else 16)
    assert isinstance(model.encoder.norm, nn.LayerNorm)
    assert isinstance(model.decoder.norm, nn.LayerNorm)
    assert model.d_model == 64 and model.nhead == 4 and not model.batch_first


def test_float32_stays_float32() -> None:
    tn.manual_seed(0)
    model = nn.Transformer(8, 2, 1, 1, 12, dropout=0.0, batch_first=True)
    out = model(tn.randn(2, 5, 8), tn.randn(2, 3, 8),
                tgt_mask=nn.Transformer.generate_square_subsequent_mask(3))
    assert out.dtype == tn.float32 and out.shape == (2, 3, 8)
    out.sum().backward()
    assert all(p.grad.dtype == tn.float32 for p in model.parameters())


def test_unbatched_decoder_layer_is_a_batch_of_one() -> None:
    tn.manual_seed(2)
    layer = nn.TransformerDecoderLayer(4, 2, 6, dropout=0.0, dtype=tn.float64)
    tgt, memory = tn.randn(3, 4, dtype=tn.float64), tn.randn(5, 4, dtype=tn.float64)
    single = layer(tgt, memory)
    batched = layer(tgt.unsqueeze(1), memory.unsqueeze(1)).squeeze(1)
    np.testing.assert_allclose(single.data, batched.data, rtol=1e-12, atol=1e-12)


def test_dropout_only_in_training() -> None:
    tn.manual_seed(4)
    layer = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.5, dtype=tn.float64)
    tgt, memory = tn.randn(4, 2, 8, dtype=tn.float64), tn.randn(3, 2, 8, dtype=tn.float64)
    first, second = layer(tgt, memory), layer(tgt, memory)
    assert not np.allclose(first.data, second.data)
    layer.eval()
    same = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, dtype=tn.float64)
    same.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(layer(tgt, memory).data, same(tgt, memory).data)


def test_transformer_errors_name_the_shapes() -> None:
    model = nn.Transformer(8, 2, 1, 1, 12)
    with pytest.raises(ShapeError, match=r"batch number of src and tgt.*\(5, 2, 8\).*\(3, 4, 8\)"):
        model(tn.randn(5, 2, 8), tn.randn(3, 4, 8))
    with pytest.raises(ShapeError, match=r"d_model=8.*\(3, 2, 6\)"):
        model(tn.randn(5, 2, 8), tn.randn(3, 2, 6))
    with pytest.raises(ValueRangeError, match="TransformerDecoderLayer: activation"):
        nn.TransformerDecoderLayer(8, 2, activation="tanh")


def test_decoder_gelu_is_the_formula_tables_gelu() -> None:
    layer = nn.TransformerDecoderLayer(4, 2, 8, activation="gelu")
    assert layer.activation is F.gelu


# ---------------------------------------------------------------------------------------------
# Without torch: central differences
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_gradients_match_central_differences(norm_first: bool) -> None:
    tn.manual_seed(1)
    layer = nn.TransformerDecoderLayer(4, 2, dim_feedforward=6, dropout=0.0, activation="gelu",
                                       dtype=tn.float64, norm_first=norm_first)
    tgt = tn.randn(3, 2, 4, dtype=tn.float64, requires_grad=True)
    memory = tn.randn(2, 2, 4, dtype=tn.float64, requires_grad=True)
    causal = nn.Transformer.generate_square_subsequent_mask(3, dtype=tn.float64)
    pad = tn.tensor(np.array([[False, True], [False, False]]))
    params = list(layer.parameters())

    def run(tgt: tn.Tensor, memory: tn.Tensor, *weights: tn.Tensor) -> tn.Tensor:
        return layer(tgt, memory, tgt_mask=causal, memory_key_padding_mask=pad)

    assert tn.gradcheck(run, [tgt, memory, *params], atol=1e-7, rtol=1e-6)
