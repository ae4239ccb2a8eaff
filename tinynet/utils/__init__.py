"""``tinynet.utils``: PyTorch's ``torch.utils`` paths, for scripts ported from PyTorch.

``tinynet.utils.data`` is ``tinynet.data`` under the name ``torch.utils.data`` has.
"""

from tinynet.utils import data

__all__ = ["data"]
