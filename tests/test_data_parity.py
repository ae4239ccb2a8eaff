"""tinynet.data against torch.utils.data: DataLoader's arguments and batches, collate,
random_split and Subset, and the ``tinynet.utils.data`` alias.

PyTorch is the oracle (``pytest.importorskip``): the same samples go through both, and the
batches must match in structure (list/tuple/dict/namedtuple), values, dtypes and shapes.
"""

from __future__ import annotations

import collections
import inspect
import math
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinynet as tn
from tinynet.data import (
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    default_collate,
    default_convert,
    random_split,
)

torch = pytest.importorskip("torch")
tud = torch.utils.data

Point = collections.namedtuple("Point", "x y")


# ---- helpers --------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A framework-neutral picture of a batch: containers keep their type, tensors become
    ("tensor", dtype name, shape, values)."""
    if isinstance(value, torch.Tensor):
        array = value.detach().numpy()
        return ("tensor", str(value.dtype).removeprefix("torch."), array.shape, array.tolist())
    if isinstance(value, tn.Tensor):
        array = value.data
        return ("tensor", str(array.dtype), array.shape, array.tolist())
    if isinstance(value, dict):
        return (type(value).__name__, {k: plain(v) for k, v in value.items()})
    if isinstance(value, tuple | list):
        return (type(value).__name__, [plain(v) for v in value])
    return value


def to_framework(value: Any, make: Any) -> Any:
    """``value`` with every numpy array leaf turned into ``make(array)`` (a framework tensor)."""
    if isinstance(value, np.ndarray):
        return make(value.copy())
    if isinstance(value, dict):
        return type(value)((k, to_framework(v, make)) for k, v in value.items())
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(to_framework(v, make) for v in value))
    if isinstance(value, tuple | list):
        return type(value)(to_framework(v, make) for v in value)
    return value


class ListDataset(Dataset):
    def __init__(self, samples: list[Any]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Any:
        return self.samples[i]


class TorchListDataset(tud.Dataset):
    def __init__(self, samples: list[Any]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Any:
        return self.samples[i]


def sample_sets() -> dict[str, list[Any]]:
    """Lists of samples of every kind default_collate handles, with numpy-array leaves."""
    rows = [np.arange(3, dtype=np.float32) + i for i in range(4)]
    return {
        "tuple of array, int, float, bool, str": [
            (rows[i], i, i / 2, i % 2 == 0, f"s{i}") for i in range(4)],
        "dict": [{"x": rows[i], "label": i, "name": f"n{i}"} for i in range(4)],
        "OrderedDict": [collections.OrderedDict([("b", rows[i]), ("a", i)]) for i in range(4)],
        "namedtuple": [Point(rows[i], float(i)) for i in range(4)],
        "list": [[i, float(i), rows[i]] for i in range(4)],
        "nested": [({"a": (rows[i], i)}, [rows[i] * 2]) for i in range(4)],
        "numpy scalars": [(np.float32(i), np.int32(i), np.bool_(i % 2)) for i in range(4)],
        "int64 and uint8 arrays": [(np.full((2, 2), i, np.int64), np.array([i], np.uint8))
                                   for i in range(4)],
        "bare arrays": rows,
        "bare strings": ["a", "b", "c", "d"],
        "bare floats": [0.5, 1.5, 2.5, 3.5],
    }


SAMPLE_SETS = sample_sets()


# ---- default_collate ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLE_SETS))
@pytest.mark.parametrize("leaves", ["numpy", "tensors"])
def test_default_collate_matches_torch(name: str, leaves: str) -> None:
    samples = SAMPLE_SETS[name]
    tn_samples, torch_samples = samples, samples
    if leaves == "tensors":
        tn_samples = [to_framework(s, tn.from_numpy) for s in samples]
        torch_samples = [to_framework(s, torch.from_numpy) for s in samples]
    assert plain(default_collate(tn_samples)) == plain(tud.default_collate(torch_samples))


@pytest.mark.parametrize("name", sorted(SAMPLE_SETS))
def test_default_convert_matches_torch(name: str) -> None:
    for sample in SAMPLE_SETS[name]:
        assert plain(default_convert(sample)) == plain(tud.default_convert(sample))


def test_tuple_samples_collate_to_a_list_as_in_torch() -> None:
    batch = default_collate([(np.ones(2), 1), (np.ones(2), 2)])
    assert type(batch) is list and len(batch) == 2


# ---- DataLoader -----------------------------------------------------------------------------


def both_tensor_datasets(n: int) -> tuple[TensorDataset, Any]:
    X = np.arange(2 * n, dtype=np.float32).reshape(n, 2)
    y = np.arange(n) * 10
    return (TensorDataset(tn.tensor(X), tn.tensor(y)),
            tud.TensorDataset(torch.tensor(X), torch.tensor(y)))


def both_loaders(n: int, **options: Any) -> tuple[list[Any], list[Any], int, int]:
    ours, theirs = both_tensor_datasets(n)
    a, b = DataLoader(ours, **options), tud.DataLoader(theirs, **options)
    return [plain(x) for x in a], [plain(x) for x in b], len(a), len(b)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 23), batch_size=st.integers(1, 9), drop_last=st.booleans())
def test_loader_batches_and_len_match_torch(n: int, batch_size: int, drop_last: bool) -> None:
    ours, theirs, len_ours, len_theirs = both_loaders(n, batch_size=batch_size,
                                                      drop_last=drop_last)
    assert ours == theirs
    assert len_ours == len_theirs == len(theirs)


@pytest.mark.parametrize("options", [
    {"batch_size": None},
    {"sampler": [4, 0, 2, 2], "batch_size": 3},
    {"sampler": [4, 0, 2], "batch_size": 2, "drop_last": True},
    {"batch_sampler": [[4, 0], [2], [1, 3, 3]]},
    {"batch_size": 2, "collate_fn": lambda batch: batch},
    {"batch_size": None, "collate_fn": lambda sample: ("got", sample)},
    {"batch_size": 2, "collate_fn": lambda batch: len(batch)},
    {"batch_size": 3, "shuffle": False, "num_workers": 0, "pin_memory": False, "timeout": 0,
     "worker_init_fn": None, "multiprocessing_context": None, "generator": None,
     "prefetch_factor": None, "persistent_workers": False, "pin_memory_device": "",
     "in_order": True},
])
def test_loader_options_give_torchs_batches(options: dict[str, Any]) -> None:
    ours, theirs, len_ours, len_theirs = both_loaders(5, **options)
    assert ours == theirs
    assert len_ours == len_theirs


@pytest.mark.parametrize("name", ["tuple of array, int, float, bool, str", "dict", "namedtuple"])
def test_loader_over_a_generic_dataset_matches_torch(name: str) -> None:
    samples = SAMPLE_SETS[name]
    ours = [plain(b) for b in DataLoader(ListDataset(samples), batch_size=3)]
    theirs = [plain(b) for b in tud.DataLoader(TorchListDataset(samples), batch_size=3)]
    assert ours == theirs


def test_loader_has_every_parameter_of_torchs_with_its_kind_and_default() -> None:
    ours = inspect.signature(DataLoader).parameters
    for name, parameter in inspect.signature(tud.DataLoader).parameters.items():
        assert name in ours, name
        assert ours[name].kind == parameter.kind, name
        assert ours[name].default == parameter.default, name
    assert list(ours)[:13] == list(inspect.signature(tud.DataLoader).parameters)[:13]


def test_positional_arguments_are_in_torchs_order() -> None:
    ours, theirs = both_tensor_datasets(6)
    sampler = [5, 1, 3]
    collate = default_collate
    a = DataLoader(ours, 2, False, sampler, None, 0, collate, False, True)
    b = tud.DataLoader(theirs, 2, False, sampler, None, 0, tud.default_collate, False, True)
    assert [plain(x) for x in a] == [plain(x) for x in b] and len(a) == len(b) == 1


@pytest.mark.parametrize("options", [
    {"num_workers": -1},
    {"timeout": -1},
    {"sampler": [0, 1], "shuffle": True},
    {"batch_sampler": [[0]], "batch_size": 2},
    {"batch_sampler": [[0]], "drop_last": True},
    {"batch_sampler": [[0]], "shuffle": True},
    {"batch_sampler": [[0]], "sampler": [0]},
    {"batch_size": None, "drop_last": True},
    {"persistent_workers": True},
    {"prefetch_factor": 2},
    {"multiprocessing_context": "fork"},
    {"batch_size": 0},
])
def test_loader_refuses_what_torch_refuses_with_num_workers_0(options: dict[str, Any]) -> None:
    ours, theirs = both_tensor_datasets(3)
    with pytest.raises(ValueError):
        tud.DataLoader(theirs, **options)
    with pytest.raises(tn.TinynetError) as info:
        DataLoader(ours, **options)
    assert "DataLoader" in str(info.value)


def test_num_workers_is_accepted_with_one_note_and_loads_in_this_process(monkeypatch) -> None:
    import tinynet.data

    monkeypatch.setattr(tinynet.data, "_workers_noted", [False])
    ours, theirs = both_tensor_datasets(7)
    options = {"batch_size": 3, "persistent_workers": True, "prefetch_factor": 2,
               "pin_memory": False, "worker_init_fn": lambda i: calls.append(i)}
    calls: list[int] = []
    with pytest.warns(UserWarning, match=r"num_workers=4 is accepted.*main process.*once"):
        loader = DataLoader(ours, num_workers=4, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second loader says nothing
        again = DataLoader(ours, num_workers=2, **options)
    expected = [plain(b) for b in tud.DataLoader(theirs, batch_size=3)]
    assert [plain(b) for b in loader] == [plain(b) for b in again] == expected
    assert calls == [] and tn.utils.data.get_worker_info() is None


def test_pin_memory_warns_that_it_has_no_effect_and_changes_nothing() -> None:
    ours, _ = both_tensor_datasets(4)
    with pytest.warns(UserWarning, match="pin_memory"):
        pinned = DataLoader(ours, batch_size=2, pin_memory=True)
    assert [plain(b) for b in pinned] == [plain(b) for b in DataLoader(ours, batch_size=2)]


def test_a_collate_fn_sees_the_samples_of_a_tensor_dataset() -> None:
    seen = []
    loader = DataLoader(both_tensor_datasets(4)[0], batch_size=3,
                        collate_fn=lambda batch: seen.append(batch) or len(batch))
    assert list(loader) == [3, 1]
    assert [len(b) for b in seen] == [3, 1] and all(isinstance(s, tuple) for s in seen[0])


def test_shuffle_with_a_sampler_over_subsets_fast_path_equals_the_generic_path() -> None:
    ours, _ = both_tensor_datasets(12)
    part = Subset(Subset(ours, list(range(11, -1, -1))), [0, 2, 4, 6, 8, 10])
    fast = list(DataLoader(part, batch_size=4, shuffle=True, seed=2))
    slow = list(DataLoader(part, batch_size=4, shuffle=True, seed=2,
                           collate_fn=default_collate))
    assert [plain(b) for b in fast] == [plain(b) for b in slow]
    assert sorted(int(v) for _, y in fast for v in y.data) == [10, 30, 50, 70, 90, 110]


# ---- random_split and Subset ----------------------------------------------------------------


def split_lengths(split: Any, n: int, lengths: list[Any]) -> Any:
    """The lengths ``split`` gives, or the exception class it raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return [len(part) for part in split(range(n), lengths)]
        except ValueError:
            return ValueError


fractions = st.lists(st.integers(0, 20), min_size=1, max_size=5).filter(
    lambda w: sum(w) > 0).map(lambda w: [x / sum(w) for x in w])


@settings(max_examples=80, deadline=None)
@given(n=st.integers(0, 60), lengths=fractions)
def test_random_split_fractional_lengths_match_torch(n: int, lengths: list[float]) -> None:
    assert split_lengths(random_split, n, lengths) == split_lengths(tud.random_split, n, lengths)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 30), lengths=st.lists(st.integers(0, 12), min_size=1, max_size=4))
def test_random_split_integer_lengths_match_torch(n: int, lengths: list[int]) -> None:
    assert split_lengths(random_split, n, lengths) == split_lengths(tud.random_split, n, lengths)


@pytest.mark.parametrize("n, lengths", [
    (10, [0.3, 0.3, 0.4]), (10, [0.1] * 10), (10, [1 / 3] * 3), (10, [0.33, 0.33, 0.34]),
    (10, [0, 1]), (7, [1.0]), (5, [0.5, 0.5]), (3, [0.25, 0.75]), (10, [0.7, 0.2]),
    (10, [1.5, -0.5]), (10, [3, 4]), (10, [3, 7]),
])
def test_random_split_documented_cases_match_torch(n: int, lengths: list[Any]) -> None:
    assert split_lengths(random_split, n, lengths) == split_lengths(tud.random_split, n, lengths)


def test_random_split_warns_like_torch_for_an_empty_split() -> None:
    with pytest.warns(UserWarning, match="index 1 is 0"):
        random_split(range(3), [0.9, 0.1])
    with pytest.warns(UserWarning, match="index 1 is 0"):
        tud.random_split(range(3), [0.9, 0.1])


def test_random_split_returns_disjoint_subsets_covering_the_dataset() -> None:
    ours, _ = both_tensor_datasets(10)
    parts = random_split(ours, [0.5, 0.3, 0.2], generator=np.random.default_rng(0))
    assert all(type(p) is Subset for p in parts) and [len(p) for p in parts] == [5, 3, 2]
    labels = sorted(int(part[i][1].item()) for part in parts for i in range(len(part)))
    assert labels == list(range(0, 100, 10))
    assert sorted(i for p in parts for i in p.indices) == list(range(10))


def test_random_split_follows_its_generator_and_manual_seed() -> None:
    def indices(**kw: Any) -> list[list[int]]:
        return [p.indices for p in random_split(range(20), [5, 15], **kw)]

    assert indices(generator=3) == indices(generator=np.random.default_rng(3)) \
        == indices(generator=3)
    tn.manual_seed(1)
    first = indices()
    tn.manual_seed(1)
    assert indices() == first != indices()


def test_a_torch_generator_is_refused_naming_what_to_pass_instead() -> None:
    with pytest.raises(tn.DTypeError, match=r"random_split: generator.*Generator.*default_rng"):
        random_split(range(10), [0.5, 0.5], generator=torch.Generator().manual_seed(42))


def test_random_split_refuses_negative_lengths_where_torch_returns_overlapping_subsets() -> None:
    overlapping = tud.random_split(range(10), [-1, 11])
    assert [len(p) for p in overlapping] == [9, 1]  # torch's documented-nowhere answer
    with pytest.raises(tn.ValueRangeError, match="non-negative"):
        random_split(range(10), [-1, 11])


@pytest.mark.parametrize("lengths, error", [
    ("ab", tn.DTypeError), (None, tn.DTypeError), ([1, "a"], tn.DTypeError),
    ([2.5, 7.5], tn.ValueRangeError), ([3, 3], tn.ValueRangeError),
])
def test_random_split_bad_lengths_raise_tinynet_errors(lengths: Any, error: type) -> None:
    with pytest.raises(error, match="random_split"):
        random_split(range(10), lengths)


def test_subset_indexes_like_torchs_subset() -> None:
    ours, theirs = both_tensor_datasets(6)
    mine, torchs = Subset(ours, [5, 0, 3]), tud.Subset(theirs, [5, 0, 3])
    assert len(mine) == len(torchs) == 3
    for i in range(3):
        assert plain(list(mine[i])) == plain(list(torchs[i]))
    assert plain(list(mine[[2, 0]])) == plain(list(torchs[[2, 0]]))
    assert plain(list(mine[-1])) == plain(list(torchs[-1]))


# ---- the tinynet.utils.data alias -----------------------------------------------------------


def test_utils_data_is_torch_utils_data_s_path_to_the_same_objects() -> None:
    from tinynet.utils.data import DataLoader as Loader
    from tinynet.utils.data import Dataset as Base
    from tinynet.utils.data import TensorDataset as Tensors
    from tinynet.utils.data import random_split as split

    assert (Loader, Base, Tensors, split) == (DataLoader, Dataset, TensorDataset, random_split)
    assert tn.utils.data.Subset is Subset and tn.utils.data.default_collate is default_collate
    import tinynet.utils.data as alias

    assert set(alias.__all__) <= set(dir(tud))


def test_a_ported_torch_loop_runs_with_only_the_import_changed() -> None:
    from tinynet.utils.data import DataLoader as Loader
    from tinynet.utils.data import TensorDataset as Tensors
    from tinynet.utils.data import random_split as split

    X = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    y = (X.sum(1) > 0).astype(np.int64)
    train, test = split(Tensors(tn.tensor(X), tn.tensor(y)), [0.8, 0.2],
                        generator=np.random.default_rng(0))
    seen = 0
    for xb, yb in Loader(train, batch_size=16, shuffle=True, num_workers=0, drop_last=False):
        assert xb.shape[1:] == (3,) and xb.dtype == np.float32 and yb.dtype == np.int64
        seen += len(yb)
    assert seen == 40 and len(test) == 10
    assert math.ceil(40 / 16) == len(Loader(train, batch_size=16))
