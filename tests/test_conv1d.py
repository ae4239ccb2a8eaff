"""nn.Conv1d as a module: shapes, parameters, initialisation bound and repr as PyTorch's
(F.conv1d's values and gradients are in the op database, tests/opdb.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinynet as tn
from tinynet import nn


def test_conv1d_shapes_and_init_bound() -> None:
    tn.manual_seed(0)
    m = nn.Conv1d(4, 6, 5, stride=2, padding=2, groups=2)
    assert m.weight.shape == (6, 2, 5) and m.bias.shape == (6,)
    bound = 1 / math.sqrt(2 * 5)
    assert np.abs(m.weight.data).max() <= bound and np.abs(m.weight.data).max() > 0.8 * bound
    assert m(tn.zeros(3, 4, 11)).shape == (3, 6, 6)
    assert m(tn.zeros(4, 11)).shape == (6, 6)
    with pytest.raises(tn.ShapeError, match="conv1d"):
        m(tn.zeros(3, 4, 11, 2))


@pytest.mark.parametrize("kwargs", [{}, {"padding": "same", "dilation": 2}, {"stride": 3},
                                    {"bias": False, "padding": 1}])
def test_conv1d_matches_torch(kwargs) -> None:
    torch = pytest.importorskip("torch")
    ours, theirs = nn.Conv1d(3, 2, 3, **kwargs), torch.nn.Conv1d(3, 2, 3, **kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    with torch.no_grad():
        for (_, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters(),
                                  strict=True):
            q.copy_(torch.from_numpy(p.data.copy()))
    x = np.random.default_rng(0).normal(size=(2, 3, 9)).astype(np.float32)
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    assert np.allclose(ours(tn.tensor(x)).data, expected, atol=1e-6 * np.abs(expected).max())
