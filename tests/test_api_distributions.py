"""tn.distributions.Categorical (issue 21): log_prob and entropy with their gradients against
torch.distributions, sampling frequencies, and pytorch/examples' REINFORCE update."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tinynet as tn
from tinynet.distributions import Categorical


def compare(ours: Any, theirs: Any, rtol: float = 1e-12) -> None:
    theirs = theirs.detach().numpy()
    np.testing.assert_allclose(ours.data, theirs, rtol=rtol,
                               atol=rtol * (1 + np.abs(theirs).max(initial=0)))


@pytest.mark.parametrize("use_logits", [False, True])
def test_log_prob_and_entropy_match_torch_with_gradients(use_logits: bool) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 4)) if use_logits else rng.uniform(0.1, 1.0, size=(3, 4))
    if not use_logits:
        values[1, 2] = 0.0  # a category that cannot happen
    x, tx = tn.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    kind = "logits" if use_logits else "probs"
    m, tm = Categorical(**{kind: x}), torch.distributions.Categorical(**{kind: tx})
    actions = np.array([3, 2, 0])
    compare(m.probs, tm.probs)
    compare(m.log_prob(tn.tensor(actions)), tm.log_prob(torch.tensor(actions)))
    compare(m.entropy(), tm.entropy())
    (m.log_prob(tn.tensor(actions)).sum() + m.entropy().sum()).backward()
    (tm.log_prob(torch.tensor(actions)).sum() + tm.entropy().sum()).backward()
    compare(x.grad, tx.grad, rtol=1e-10)


def test_samples_follow_the_probabilities_and_manual_seed() -> None:
    probs = tn.tensor([[0.1, 0.6, 0.3], [1.0, 0.0, 0.0]])
    tn.manual_seed(0)
    draws = Categorical(probs).sample((20_000,))
    assert draws.shape == (20_000, 2) and draws.dtype == tn.int64
    freq = np.bincount(draws.data[:, 0], minlength=3) / 20_000
    np.testing.assert_allclose(freq, [0.1, 0.6, 0.3], atol=0.015)  # ~4 standard errors
    assert (draws.data[:, 1] == 0).all()
    tn.manual_seed(0)
    assert np.array_equal(Categorical(probs).sample((20_000,)).data, draws.data)


def test_reinforce_update_from_pytorch_examples_runs_unchanged() -> None:
    """select_action / finish_episode of pytorch/examples' reinforcement_learning/reinforce.py
    on a two-armed bandit: the policy learns to prefer the arm that pays."""
    torch, nn, F, optim = tn, tn.nn, tn.nn.functional, tn.optim
    from tinynet.distributions import Categorical as Cat

    torch.manual_seed(543)
    policy = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    optimizer = optim.Adam(policy.parameters(), lr=1e-2)
    state = torch.tensor([1.0, 0.0])
    for _ in range(60):
        probs = F.softmax(policy(state.unsqueeze(0)), dim=1)
        m = Cat(probs)
        action = m.sample()
        reward = 1.0 if action.item() == 1 else 0.0
        loss = (-m.log_prob(action) * (reward - 0.5)).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        assert F.softmax(policy(state.unsqueeze(0)), dim=1)[0, 1].item() > 0.8


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(tn.ValueRangeError, match="either `probs` or `logits`"):
        Categorical()
    with pytest.raises(tn.ValueRangeError, match="values must be in 0...2"):
        Categorical(tn.tensor([0.2, 0.3, 0.5])).log_prob(tn.tensor(3))
