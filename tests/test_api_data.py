"""ConcatDataset, IterableDataset and the samplers (issue 21), against torch.utils.data where
the order is not random, and by their defining properties where it is."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tinynet as tn
from tinynet.utils import data as tud


def plain(batch: Any) -> Any:
    if isinstance(batch, list | tuple):
        return [plain(b) for b in batch]
    return np.asarray(batch).tolist()


class Squares(tud.Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        return i, i * i


def test_concat_dataset_indexes_through_its_parts_as_torch() -> None:
    torch = pytest.importorskip("torch")
    ours = tud.ConcatDataset([Squares(3), Squares(0), Squares(4)])
    theirs = torch.utils.data.ConcatDataset([Squares(3), Squares(0), Squares(4)])
    assert len(ours) == len(theirs) == 7 and ours.cumulative_sizes == theirs.cumulative_sizes
    assert [ours[i] for i in range(-7, 7)] == [theirs[i] for i in range(-7, 7)]
    loader = tud.DataLoader(ours, batch_size=3)
    expected = torch.utils.data.DataLoader(theirs, batch_size=3)
    assert [plain(b) for b in loader] == [plain(b) for b in expected]
    with pytest.raises(IndexError):
        ours[7]
    with pytest.raises(tn.ValueRangeError, match="should not exceed dataset length 7"):
        ours[-8]
    with pytest.raises(tn.ValueRangeError, match="empty"):
        tud.ConcatDataset([])


class Countdown(tud.IterableDataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self) -> Any:
        return iter((float(i), i % 2) for i in range(self.n, 0, -1))

    def __len__(self) -> int:
        return self.n


@pytest.mark.parametrize("options", [{"batch_size": 3}, {"batch_size": 3, "drop_last": True},
                                     {"batch_size": None}, {"batch_size": 7},
                                     {"batch_size": 2, "num_workers": 0}])
def test_iterable_datasets_batch_in_stream_order_as_torch(options: dict) -> None:
    torch = pytest.importorskip("torch")

    class TorchCountdown(torch.utils.data.IterableDataset):
        def __init__(self, n: int) -> None:
            self.n = n

        def __iter__(self) -> Any:
            return iter((float(i), i % 2) for i in range(self.n, 0, -1))

        def __len__(self) -> int:
            return self.n

    ours = tud.DataLoader(Countdown(7), **options)
    theirs = torch.utils.data.DataLoader(TorchCountdown(7), **options)
    assert [plain(b) for b in ours] == [plain(b) for b in theirs]
    assert len(ours) == len(theirs)


def test_iterable_datasets_refuse_shuffle_and_samplers() -> None:
    with pytest.raises(tn.ValueRangeError, match="IterableDataset: expected unspecified shuffle"):
        tud.DataLoader(Countdown(3), shuffle=True)
    with pytest.raises(TypeError, match="IterableDataset"):
        Countdown(3)[0]


def test_sequential_and_batch_samplers_match_torch() -> None:
    torch = pytest.importorskip("torch")
    for drop_last in (False, True):
        ours = tud.BatchSampler(tud.SequentialSampler(range(10)), 4, drop_last)
        theirs = torch.utils.data.BatchSampler(
            torch.utils.data.SequentialSampler(range(10)), 4, drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)
    loader = tud.DataLoader(Squares(10), batch_sampler=tud.BatchSampler(
        tud.SequentialSampler(range(10)), 3, drop_last=True))
    expected = torch.utils.data.DataLoader(Squares(10), batch_size=3, drop_last=True)
    assert [plain(b) for b in loader] == [plain(b) for b in expected]


def test_random_sampler_permutes_each_epoch_reproducibly() -> None:
    sampler = tud.RandomSampler(range(20), generator=tn.Generator().manual_seed(1))
    first, second = list(sampler), list(sampler)
    assert sorted(first) == sorted(second) == list(range(20)) and first != second
    again = tud.RandomSampler(range(20), generator=tn.Generator().manual_seed(1))
    assert list(again) == first
    tn.manual_seed(3)
    a = list(tud.RandomSampler(range(20)))
    tn.manual_seed(3)
    assert list(tud.RandomSampler(range(20))) == a  # the global stream without a generator


def test_random_sampler_num_samples_and_replacement() -> None:
    more = list(tud.RandomSampler(range(5), num_samples=12, generator=0))
    assert len(more) == 12 and sorted(more[:10]) == sorted(list(range(5)) * 2)
    drawn = list(tud.RandomSampler(range(5), replacement=True, num_samples=200, generator=0))
    assert len(drawn) == 200 and set(drawn) == set(range(5))
    with pytest.raises(tn.ValueRangeError, match="num_samples should be a positive integer"):
        tud.RandomSampler(range(5), num_samples=0)
    loader = tud.DataLoader(Squares(8), batch_size=3, sampler=tud.RandomSampler(Squares(8)))
    assert sorted(x for b in loader for x in plain(b)[0]) == list(range(8))


def test_subset_random_sampler_and_weighted_sampler() -> None:
    indices = [3, 7, 11, 19]
    sampler = tud.SubsetRandomSampler(indices, generator=5)
    assert sorted(sampler) == indices and len(sampler) == 4
    weights = [0.0, 1.0, 3.0]
    draws = np.array(list(tud.WeightedRandomSampler(weights, 40_000, generator=2)))
    assert 0 not in draws
    assert abs((draws == 2).mean() - 0.75) < 0.015  # 3 / (1 + 3), about 7 standard errors
    no_repeat = list(tud.WeightedRandomSampler([1, 1, 1, 0], 3, replacement=False,
                                               generator=2))
    assert sorted(no_repeat) == [0, 1, 2]
    with pytest.raises(tn.ValueRangeError, match="without replacement from 3 nonzero"):
        tud.WeightedRandomSampler([1, 1, 1, 0], 4, replacement=False)
