"""``from tinynet.utils.data import DataLoader, TensorDataset`` as from ``torch.utils.data``.

The same objects as ``tinynet.data`` (re-exported, not copies): see that module.
"""

from tinynet.data import (
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
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

from tinynet.sampler import (  # noqa: E402 - samplers, as torch.utils.data (issue 21)
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ += ["BatchSampler", "ConcatDataset", "IterableDataset", "RandomSampler", "Sampler",
            "SequentialSampler", "SubsetRandomSampler", "WeightedRandomSampler"]
