"""init.orthogonal_, init.trunc_normal_, nn.utils.parameters_to_vector / vector_to_parameters
(issue 21), against torch."""

from __future__ import annotations

import numpy as np
import pytest

import tinynet as tn
from tinynet import nn


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4), (6, 2, 2), (2, 3, 2, 2)])
def test_orthogonal_is_torchs_construction_on_the_same_normal_draws(shape: tuple) -> None:
    torch = pytest.importorskip("torch")
    gain = 1.7
    w = tn.empty(*shape, dtype=tn.float64)
    nn.init.orthogonal_(w, gain=gain, generator=tn.Generator().manual_seed(4))
    # torch's recipe (torch.nn.init.orthogonal_) on the normal matrix our generator drew
    rows = shape[0]
    cols = int(np.prod(shape)) // rows
    flat = torch.from_numpy(np.random.default_rng(4).standard_normal((rows, cols)))
    if rows < cols:
        flat = flat.t()
    q, r = torch.linalg.qr(flat)
    q = q * torch.diag(r).sign()
    if rows < cols:
        q = q.t()
    expected = (q * gain).reshape(shape).numpy()
    np.testing.assert_allclose(w.data, expected, rtol=1e-10, atol=1e-12)
    m = w.data.reshape(rows, cols)
    small = m @ m.T if rows <= cols else m.T @ m
    np.testing.assert_allclose(small, gain**2 * np.eye(min(rows, cols)), atol=1e-10)


def test_orthogonal_refuses_vectors() -> None:
    with pytest.raises(tn.ShapeError, match=r"orthogonal_: .*2 or more dimensions.*\(3,\)"):
        nn.init.orthogonal_(tn.empty(3))


@pytest.mark.parametrize("mean, std, a, b", [(0.0, 1.0, -2.0, 2.0), (0.5, 2.0, -1.0, 1.5),
                                             (0.0, 0.02, -0.04, 0.04)])
def test_trunc_normal_has_torchs_distribution(mean: float, std: float, a: float,
                                              b: float) -> None:
    torch = pytest.importorskip("torch")
    n = 200_000
    ours = tn.empty(n, dtype=tn.float64)
    nn.init.trunc_normal_(ours, mean, std, a, b, generator=tn.Generator().manual_seed(0))
    torch.manual_seed(0)
    theirs = torch.nn.init.trunc_normal_(torch.empty(n, dtype=torch.float64), mean, std, a,
                                         b).numpy()
    assert a <= ours.data.min() and ours.data.max() <= b
    spread = theirs.std()
    # means and stds of 200k draws agree to a few standard errors (std / sqrt(n) ~ 0.0022 std)
    assert abs(ours.data.mean() - theirs.mean()) < 0.02 * spread
    assert abs(ours.data.std() - spread) < 0.02 * spread
    bins = np.linspace(a, b, 11)
    np.testing.assert_allclose(np.histogram(ours.data, bins)[0] / n,
                               np.histogram(theirs, bins)[0] / n, atol=0.006)


def test_parameters_to_vector_and_back_match_torch() -> None:
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in
                            ours.state_dict().items()})
    vec = nn.utils.parameters_to_vector(ours.parameters())
    expected = torch.nn.utils.parameters_to_vector(theirs.parameters())
    np.testing.assert_array_equal(vec.data, expected.detach().numpy())
    (vec * vec).sum().backward()  # differentiable, as torch's
    np.testing.assert_allclose(ours[0].weight.grad.data, 2 * ours[0].weight.data, rtol=1e-6)
    new = np.arange(vec.shape[0], dtype=np.float32)
    nn.utils.vector_to_parameters(tn.tensor(new), ours.parameters())
    torch.nn.utils.vector_to_parameters(torch.from_numpy(new), theirs.parameters())
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.detach().numpy(), err_msg=name)
    with pytest.raises(tn.ShapeError, match="vector_to_parameters: vec has 3 elements"):
        nn.utils.vector_to_parameters(tn.zeros(3), ours.parameters())
