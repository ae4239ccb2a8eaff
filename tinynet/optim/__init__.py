"""Optimizers and learning-rate schedules with PyTorch's names, arguments and update rules:
``tn.optim.SGD``, ``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad``, ``Adadelta``,
``tn.optim.lr_scheduler``.
Read ``optimizer.py`` for parameter groups and state, then ``sgd.py``."""

from tinynet.optim import lr_scheduler
from tinynet.optim.adagrad import Adagrad
from tinynet.optim.adam import Adam, AdamW
from tinynet.optim.optimizer import Optimizer
from tinynet.optim.rmsprop import RMSprop
from tinynet.optim.sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]

from tinynet.optim.adadelta import Adadelta  # noqa: E402 - issue 21's last names

__all__ += ["Adadelta"]
