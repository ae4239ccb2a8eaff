"""Optimizers with PyTorch's names, arguments and update rules: ``tn.optim.SGD``,
``tn.optim.Adam``. Read ``optimizer.py`` for parameter groups and state, then ``sgd.py``."""

from tinynet.optim.adam import Adam
from tinynet.optim.optimizer import Optimizer
from tinynet.optim.sgd import SGD

__all__ = ["SGD", "Adam", "Optimizer"]
