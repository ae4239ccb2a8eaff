"""tinynet.nn.utils.rnn (pad_sequence, pack_padded_sequence, pad_packed_sequence,
PackedSequence) and nn.RNN/LSTM/GRU over a PackedSequence, against torch.nn.utils.rnn:
values, batch sizes, index permutations, gradients; central differences in float64."""

import numpy as np
import pytest
from tolerance import assert_close

import tinynet as tn
from tinynet import nn
from tinynet.gradcheck import gradcheck
from tinynet.nn.utils import rnn as R

RTOL = 1e-12


def _torch():
    return pytest.importorskip("torch")


def _x(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---- packing and padding ----------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize(("lengths", "enforce_sorted"), [
    ([5, 3, 3, 1], True), ([2, 5, 1, 4], False), ([1, 1], True), ([3], True), ([2, 3], False)])
def test_pack_and_pad_match_pytorch_with_gradients(batch_first, lengths, enforce_sorted):
    torch = _torch()
    tr = torch.nn.utils.rnn
    batch, steps = len(lengths), max(lengths) + 1  # one step of padding past the longest
    x = _x((batch, steps, 2) if batch_first else (steps, batch, 2))
    w = _x(x.shape, seed=1)
    ours_x, their_x = tn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours = R.pack_padded_sequence(ours_x, lengths, batch_first, enforce_sorted)
    theirs = tr.pack_padded_sequence(their_x, torch.tensor(lengths), batch_first,
                                     enforce_sorted)
    assert isinstance(ours, R.PackedSequence)
    assert_close(ours.data, theirs.data, RTOL)
    assert ours.batch_sizes.tolist() == theirs.batch_sizes.tolist()
    assert ours.batch_sizes.dtype == np.int64
    for a, b in ((ours.sorted_indices, theirs.sorted_indices),
                 (ours.unsorted_indices, theirs.unsorted_indices)):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.tolist() == b.tolist()
    padded, out_lengths = R.pad_packed_sequence(ours, batch_first, padding_value=-2.5,
                                                total_length=steps + 1)
    their_padded, their_lengths = tr.pad_packed_sequence(theirs, batch_first, -2.5, steps + 1)
    assert padded.shape == tuple(their_padded.shape)
    assert_close(padded, their_padded, RTOL)
    assert out_lengths.tolist() == their_lengths.tolist() == list(lengths)
    (padded * tn.tensor(np.resize(w, padded.shape))).sum().backward()
    (their_padded * torch.tensor(np.resize(w, padded.shape))).sum().backward()
    assert_close(ours_x.grad, their_x.grad, RTOL)
    # padding steps past each length get no gradient
    mask = np.arange(steps)[None, :] < np.array(lengths)[:, None]
    mask = mask if batch_first else mask.T
    assert np.all(ours_x.grad.numpy()[~mask] == 0)


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_pad_sequence_matches_pytorch_with_gradients(batch_first, padding_side):
    torch = _torch()
    arrays = [_x((n, 2, 3), seed=n) for n in (3, 1, 4)]
    ours = [tn.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = R.pad_sequence(ours, batch_first, 7.0, padding_side)
    expected = torch.nn.utils.rnn.pad_sequence(theirs, batch_first, 7.0, padding_side)
    assert out.shape == tuple(expected.shape)
    assert_close(out, expected, RTOL)
    w = _x(out.shape, seed=9)
    (out * tn.tensor(w)).sum().backward()
    (expected * torch.tensor(w)).sum().backward()
    for a, b in zip(ours, theirs, strict=True):
        assert_close(a.grad, b.grad, RTOL)


def test_pack_sequence_and_unpack_sequence_match_pytorch():
    torch = _torch()
    arrays = [_x((n, 3), seed=n) for n in (2, 4, 1)]
    ours = R.pack_sequence([tn.tensor(a) for a in arrays], enforce_sorted=False)
    theirs = torch.nn.utils.rnn.pack_sequence([torch.tensor(a) for a in arrays],
                                              enforce_sorted=False)
    assert_close(ours.data, theirs.data, RTOL)
    for a, b in zip(R.unpack_sequence(ours), arrays, strict=True):
        np.testing.assert_array_equal(a.numpy(), b)


def test_packing_and_padding_gradients_match_central_differences():
    x = tn.tensor(_x((4, 3, 2)), requires_grad=True)
    w = tn.tensor(_x((5, 3, 2), seed=3))

    def f(x):
        packed = R.pack_padded_sequence(x, [2, 4, 1], enforce_sorted=False)
        return (R.pad_packed_sequence(packed, total_length=5)[0] * w).sin()

    assert gradcheck(f, [x])
    a, b = (tn.tensor(_x((n, 2), seed=n), requires_grad=True) for n in (3, 1))
    assert gradcheck(lambda a, b: R.pad_sequence([a, b], True, 0.5, "left").exp(), [a, b])


def test_bad_lengths_are_refused_as_in_pytorch():
    x = tn.tensor(_x((3, 2, 1)))
    with pytest.raises(tn.ValueRangeError, match="sorted in decreasing order"):
        R.pack_padded_sequence(x, [1, 3])
    with pytest.raises(tn.ValueRangeError, match="greater than 0"):
        R.pack_padded_sequence(x, [2, 0], enforce_sorted=False)
    with pytest.raises(tn.ShapeError, match="batch_size"):
        R.pack_padded_sequence(x, [2, 1, 1])
    packed = R.pack_padded_sequence(x, [3, 1])
    with pytest.raises(tn.ValueRangeError, match="total_length"):
        R.pad_packed_sequence(packed, total_length=2)


# ---- recurrent layers over a PackedSequence -----------------------------------------------


def _pair(cls, dtype=np.float64, **options):
    torch = _torch()
    tn.manual_seed(0)
    ours = getattr(nn, cls)(3, 4, dtype=dtype, **options)
    theirs = getattr(torch.nn, cls)(3, 4, dtype=torch.float64 if dtype == np.float64
                                    else torch.float32, **options)
    theirs.load_state_dict({k: torch.tensor(v.detach().numpy())
                            for k, v in ours.state_dict().items()})
    return ours, theirs


OPTIONS = {
    "one-layer": {},
    "two-layers-bidirectional": {"num_layers": 2, "bidirectional": True},
    "batch-first-no-bias": {"batch_first": True, "bias": False},
    "bidirectional-batch-first": {"bidirectional": True, "batch_first": True},
}


@pytest.mark.parametrize("with_hx", [False, True])
@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("options", list(OPTIONS))
@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
def test_recurrent_layers_on_packed_input_match_pytorch(cls, options, enforce_sorted, with_hx):
    torch = _torch()
    opts = OPTIONS[options]
    ours, theirs = _pair(cls, **opts)
    lengths = [5, 3, 2, 2] if enforce_sorted else [2, 5, 1, 3]
    batch_first = opts.get("batch_first", False)
    x = _x((4, 6, 3) if batch_first else (6, 4, 3), seed=2)
    ours_x, their_x = tn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    layers = opts.get("num_layers", 1) * (2 if opts.get("bidirectional") else 1)
    hx = [_x((layers, 4, 4), seed=5 + i) for i in range(2 if cls == "LSTM" else 1)]
    ours_h = [tn.tensor(h, requires_grad=True) for h in hx]
    their_h = [torch.tensor(h, requires_grad=True) for h in hx]

    def state(hs):
        return None if not with_hx else (tuple(hs) if cls == "LSTM" else hs[0])

    out, h_n = ours(R.pack_padded_sequence(ours_x, lengths, batch_first, enforce_sorted),
                    state(ours_h))
    their_out, their_h_n = theirs(torch.nn.utils.rnn.pack_padded_sequence(
        their_x, lengths, batch_first, enforce_sorted), state(their_h))
    assert isinstance(out, R.PackedSequence)
    assert out.batch_sizes.tolist() == their_out.batch_sizes.tolist()
    assert_close(out.data, their_out.data, RTOL)
    finals = list(h_n) if cls == "LSTM" else [h_n]
    their_finals = list(their_h_n) if cls == "LSTM" else [their_h_n]
    for a, b in zip(finals, their_finals, strict=True):
        assert_close(a, b, RTOL)
    w = _x(out.data.shape, seed=7)
    loss = (out.data * tn.tensor(w)).sum() + sum((h * h).sum() for h in finals)
    their_loss = (their_out.data * torch.tensor(w)).sum() + sum(
        (h * h).sum() for h in their_finals)
    loss.backward()
    their_loss.backward()
    assert_close(ours_x.grad, their_x.grad, RTOL)
    if with_hx:
        for a, b in zip(ours_h, their_h, strict=True):
            assert_close(a.grad, b.grad, RTOL)
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters(),
                                 strict=True):
        assert_close(p.grad, q.grad, RTOL, err_msg=name)


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
def test_packed_run_equals_each_sequence_run_alone(cls):
    """h_n of a packed batch is each sequence's state at its own last step: running every
    sequence alone (no padding) gives the same outputs and final states."""
    tn.manual_seed(1)
    layer = getattr(nn, cls)(3, 4, num_layers=2, bidirectional=True, dtype=tn.float64)
    arrays = [_x((n, 3), seed=n) for n in (2, 5, 3)]
    out, h_n = layer(R.pack_sequence([tn.tensor(a) for a in arrays], enforce_sorted=False))
    h_n = h_n[0] if cls == "LSTM" else h_n
    padded, lengths = R.pad_packed_sequence(out, batch_first=True)
    for b, a in enumerate(arrays):
        alone, alone_h = layer(tn.tensor(a))
        alone_h = alone_h[0] if cls == "LSTM" else alone_h
        assert_close(padded[b, :lengths[b].item()], alone, RTOL)
        assert_close(h_n[:, b], alone_h, RTOL)


def test_packed_lstm_gradients_match_central_differences():
    tn.manual_seed(2)
    layer = nn.LSTM(2, 3, bidirectional=True, dtype=tn.float64)
    x = tn.tensor(_x((4, 3, 2), seed=4), requires_grad=True)

    def f(x):
        out, (h, c) = layer(R.pack_padded_sequence(x, [2, 4, 1], enforce_sorted=False))
        return out.data.sum() + (h * c).sum()

    assert gradcheck(f, [x])


def test_float32_stays_float32_on_packed_input():
    layer = nn.GRU(3, 2)
    out, h_n = layer(R.pack_sequence([tn.randn(3, 3), tn.randn(2, 3)]))
    assert out.data.dtype == h_n.dtype == np.float32


def test_packed_input_of_the_wrong_width_names_the_sizes():
    layer = nn.RNN(3, 2)
    with pytest.raises(tn.ShapeError, match="input_size=3"):
        layer(R.pack_sequence([tn.randn(2, 5)]))
