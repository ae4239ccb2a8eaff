"""nn.GroupNorm and nn.RMSNorm as modules: parameters, state dict names and outputs as
PyTorch's (the functional forms' values and gradients are in the op database, tests/opdb.py)."""

from __future__ import annotations

import numpy as np
import pytest

import tinynet as tn
from tinynet import nn


def test_group_norm_normalises_each_group_of_channels() -> None:
    x = tn.tensor(np.random.default_rng(0).normal(3.0, 2.0, (2, 6, 4)).astype(np.float32))
    out = nn.GroupNorm(3, 6)(x).data.reshape(2, 3, -1)
    assert np.allclose(out.mean(-1), 0, atol=1e-6) and np.allclose(out.var(-1), 1, rtol=1e-4)
    with pytest.raises(tn.ValueRangeError, match="divisible"):
        nn.GroupNorm(4, 6)
    with pytest.raises(tn.ShapeError, match="group_norm"):
        nn.GroupNorm(2, 4)(tn.zeros(2, 6))


def test_rms_norm_divides_by_the_root_mean_square() -> None:
    x = tn.tensor([[3.0, 4.0], [1.0, 1.0]])
    out = nn.RMSNorm(2, eps=0.0)(x)
    assert np.allclose(out.data, [[3 / np.sqrt(12.5), 4 / np.sqrt(12.5)], [1.0, 1.0]])
    with pytest.raises(tn.ShapeError, match="rms_norm"):
        nn.RMSNorm(3)(x)


@pytest.mark.parametrize("make", [
    lambda lib: lib.nn.GroupNorm(2, 4), lambda lib: lib.nn.GroupNorm(4, 4, affine=False),
    lambda lib: lib.nn.RMSNorm(5), lambda lib: lib.nn.RMSNorm([4, 5], eps=1e-3,
                                                              elementwise_affine=False)])
def test_modules_match_torch_parameters_state_dict_and_outputs(make) -> None:
    torch = pytest.importorskip("torch")
    ours, theirs = make(tn), make(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    rng = np.random.default_rng(1)
    with tn.no_grad(), torch.no_grad():  # the same non-trivial affine parameters in both
        for (_, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters(),
                                  strict=True):
            values = rng.normal(size=p.shape).astype(np.float32)
            p.copy_(tn.tensor(values))
            q.copy_(torch.from_numpy(values))
    x = rng.normal(size=(3, 4, 5)).astype(np.float32)
    out = ours(tn.tensor(x))
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    assert out.dtype == np.float32
    assert np.allclose(out.data, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    assert repr(ours).split("(")[0] == repr(theirs).split("(")[0]
