"""``from tinynet.utils.data import DataLoader, TensorDataset`` as from ``torch.utils.data``.

The same objects as ``tinynet.data`` (re-exported, not copies): see that module.
"""

from tinynet.data import (
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    default_collate,
    default_convert,
    get_worker_info,
    random_split,
)

__all__ = [
    "DataLoader", "Dataset", "Subset", "TensorDataset", "default_collate", "default_convert",
    "random_split", "get_worker_info",
]
