"""tinynet.data: TensorDataset, DataLoader, default_collate and the generated toy data sets."""

import math

import numpy as np
import pytest

import tinynet as tn
from tinynet.data import (
    DataLoader,
    Dataset,
    TensorDataset,
    blobs,
    circles,
    default_collate,
    logic_gate,
    spirals,
    to_tensors,
    two_moons,
)

# ---- helpers --------------------------------------------------------------------------------


def index_dataset(n: int) -> TensorDataset:
    """Sample i is (row [i, -i] as float64, label i): batches reveal which indices they hold."""
    idx = np.arange(n)
    return TensorDataset(tn.tensor(np.stack([idx, -idx], axis=1).astype(np.float64)),
                         tn.tensor(idx))


def epoch_indices(loader: DataLoader) -> list[int]:
    return [int(i) for _, labels in loader for i in labels.data]


class ListDataset(Dataset):
    """A generic (non-Tensor) dataset: forces the loader's collate path."""

    def __init__(self, samples):
        self.samples = samples

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return self.samples[i]


class Wrapped(Dataset):
    """Same samples as a TensorDataset, but reached through the generic path."""

    def __init__(self, inner):
        self.inner = inner

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        return self.inner[i]


# ---- TensorDataset --------------------------------------------------------------------------


def test_tensor_dataset_indexes_rows_of_every_tensor():
    X = np.arange(12.0).reshape(6, 2)
    y = np.arange(6) * 10
    ds = TensorDataset(tn.tensor(X), tn.tensor(y))
    assert len(ds) == 6
    x3, y3 = ds[3]
    assert isinstance(x3, tn.Tensor) and isinstance(y3, tn.Tensor)
    np.testing.assert_array_equal(x3.data, X[3])
    assert y3.item() == 30


def test_tensor_dataset_accepts_arrays_and_keeps_their_dtype():
    ds = TensorDataset(np.zeros((4, 3), np.float64), np.arange(4))
    assert ds.tensors[0].dtype == np.float64 and ds.tensors[1].dtype == np.int64


def test_tensor_dataset_with_different_first_dims_raises_naming_the_shapes():
    with pytest.raises(tn.ShapeError, match=r"first dimension.*\(5, 2\).*\(4,\)"):
        TensorDataset(tn.zeros(5, 2), tn.zeros(4))


def test_tensor_dataset_refuses_0d_tensors_and_no_tensors():
    with pytest.raises(tn.ShapeError, match="0-d"):
        TensorDataset(tn.tensor(1.0))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()


# ---- DataLoader: batching -------------------------------------------------------------------


def test_loader_without_shuffle_yields_rows_in_order_with_a_partial_last_batch():
    loader = DataLoader(index_dataset(10), batch_size=3)
    batches = list(loader)
    assert len(loader) == 4 == len(batches)
    assert [len(labels) for _, labels in batches] == [3, 3, 3, 1]
    assert epoch_indices(loader) == list(range(10))
    xb, yb = batches[1]
    assert xb.shape == (3, 2) and xb.dtype == np.float64 and yb.dtype == np.int64
    np.testing.assert_array_equal(xb.data, [[3, -3], [4, -4], [5, -5]])
    np.testing.assert_array_equal(batches[-1][0].data, [[9, -9]])


def test_loader_drop_last_drops_the_partial_batch():
    loader = DataLoader(index_dataset(10), batch_size=3, drop_last=True)
    assert len(loader) == 3
    assert [len(labels) for _, labels in loader] == [3, 3, 3]
    assert epoch_indices(loader) == list(range(9))


@pytest.mark.parametrize("n, batch_size", [(12, 4), (12, 12), (5, 8), (1, 1), (0, 3)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_loader_len_matches_the_number_of_batches(n, batch_size, drop_last):
    loader = DataLoader(index_dataset(n), batch_size=batch_size, drop_last=drop_last)
    expected = n // batch_size if drop_last else math.ceil(n / batch_size)
    assert len(loader) == expected == len(list(loader))


def test_default_batch_size_is_one():
    batches = list(DataLoader(index_dataset(3)))
    assert [b[0].shape for b in batches] == [(1, 2)] * 3


def test_batches_are_copies_so_editing_them_leaves_the_dataset_alone():
    ds = index_dataset(4)
    xb, _ = next(iter(DataLoader(ds, batch_size=4)))
    xb.data[...] = 99.0
    np.testing.assert_array_equal(ds.tensors[0].data[:, 0], [0, 1, 2, 3])


def test_batches_of_data_that_requires_grad_keep_the_graph():
    X = tn.tensor(np.arange(8.0).reshape(4, 2), requires_grad=True)
    loader = DataLoader(TensorDataset(X), batch_size=2, shuffle=True, seed=0)
    (xb,) = next(iter(loader))
    (xb * 3).sum().backward()
    rows_with_grad = sorted(np.flatnonzero(X.grad.data[:, 0]))
    assert len(rows_with_grad) == 2
    np.testing.assert_array_equal(X.grad.data[rows_with_grad], 3.0)


# ---- DataLoader: shuffling ------------------------------------------------------------------


def test_shuffle_visits_every_index_exactly_once_per_epoch_in_a_new_order():
    loader = DataLoader(index_dataset(50), batch_size=7, shuffle=True, seed=3)
    first, second = epoch_indices(loader), epoch_indices(loader)
    assert sorted(first) == list(range(50)) == sorted(second)
    assert first != list(range(50))
    assert first != second


def test_shuffle_with_the_same_seed_repeats_the_same_epochs():
    a = DataLoader(index_dataset(30), batch_size=4, shuffle=True, seed=11)
    b = DataLoader(index_dataset(30), batch_size=4, shuffle=True, seed=11)
    c = DataLoader(index_dataset(30), batch_size=4, shuffle=True, seed=12)
    epochs_a = [epoch_indices(a) for _ in range(3)]
    assert epochs_a == [epoch_indices(b) for _ in range(3)]
    assert epochs_a[0] != epoch_indices(c)


def test_shuffle_with_a_generator_follows_that_generator():
    loader = DataLoader(index_dataset(20), batch_size=5, shuffle=True,
                        generator=np.random.default_rng(5))
    assert epoch_indices(loader) == list(np.random.default_rng(5).permutation(20))


def test_shuffle_without_seed_is_reproducible_with_manual_seed():
    loader = DataLoader(index_dataset(40), batch_size=6, shuffle=True)
    tn.manual_seed(123)
    run1 = [epoch_indices(loader), epoch_indices(loader)]
    tn.manual_seed(123)
    run2 = [epoch_indices(loader), epoch_indices(loader)]
    tn.manual_seed(124)
    run3 = [epoch_indices(loader), epoch_indices(loader)]
    assert run1 == run2 and run1 != run3
    assert run1[0] != run1[1]


def test_shuffle_with_drop_last_drops_a_different_sample_each_epoch():
    loader = DataLoader(index_dataset(10), batch_size=3, shuffle=True, drop_last=True, seed=0)
    epochs = [epoch_indices(loader) for _ in range(20)]
    assert all(len(e) == 9 and len(set(e)) == 9 for e in epochs)
    assert len({frozenset(range(10)) - frozenset(e) for e in epochs}) > 1


def test_tensor_dataset_fast_path_matches_the_generic_collate_path():
    X, y = two_moons(37, seed=0)
    ds = TensorDataset(*to_tensors(X, y))
    fast = list(DataLoader(ds, batch_size=8, shuffle=True, seed=4))
    slow = list(DataLoader(Wrapped(ds), batch_size=8, shuffle=True, seed=4))
    assert len(fast) == len(slow) == 5
    for (fx, fy), (sx, sy) in zip(fast, slow, strict=True):
        assert fx.dtype == sx.dtype and fy.dtype == sy.dtype
        np.testing.assert_array_equal(fx.data, sx.data)
        np.testing.assert_array_equal(fy.data, sy.data)


def test_a_tensor_dataset_subclass_with_its_own_getitem_is_used():
    class Doubled(TensorDataset):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return x * 2, y

    (xb, _), = DataLoader(Doubled(tn.tensor([[1.0], [2.0]]), tn.tensor([0, 1])), batch_size=2)
    np.testing.assert_array_equal(xb.data, [[2.0], [4.0]])


# ---- DataLoader: arguments ------------------------------------------------------------------


def test_loader_rejects_bad_arguments_with_clear_errors():
    ds = index_dataset(4)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(TypeError, match="batch_size"):
        DataLoader(ds, batch_size=2.0)
    with pytest.raises(ValueError, match="not both"):
        DataLoader(ds, shuffle=True, seed=1, generator=np.random.default_rng(1))
    with pytest.raises(TypeError, match="seed="):
        DataLoader(ds, shuffle=True, generator=3)
    with pytest.raises(TypeError, match="__len__"):
        DataLoader(object())


# ---- default_collate ------------------------------------------------------------------------


def test_generic_dataset_of_arrays_and_numbers_is_collated_like_pytorch():
    samples = [(np.full(3, i, np.float32), i, float(i) / 2, i % 2 == 0) for i in range(5)]
    xb, ib, fb, bb = next(iter(DataLoader(ListDataset(samples), batch_size=5)))
    assert xb.shape == (5, 3) and xb.dtype == np.float32
    assert ib.dtype == np.int64 and fb.dtype == np.float64 and bb.dtype == np.bool_
    np.testing.assert_array_equal(ib.data, range(5))
    np.testing.assert_array_equal(fb.data, [0, 0.5, 1, 1.5, 2])
    np.testing.assert_array_equal(bb.data, [True, False, True, False, True])


def test_collate_keeps_dicts_lists_strings_and_single_tensors():
    batch = default_collate([{"x": tn.tensor([1.0, 2.0]), "name": "a"},
                             {"x": tn.tensor([3.0, 4.0]), "name": "b"}])
    assert batch["name"] == ["a", "b"]
    np.testing.assert_array_equal(batch["x"].data, [[1, 2], [3, 4]])
    as_list = default_collate([[1, 2.0], [3, 4.0]])
    assert isinstance(as_list, list) and as_list[0].dtype == np.int64
    single = default_collate([tn.tensor(1.0), tn.tensor(2.0)])
    assert isinstance(single, tn.Tensor) and single.shape == (2,)


def test_collate_of_different_shapes_raises_shape_error():
    with pytest.raises(tn.ShapeError, match=r"sample 1 has \(3,\)"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(tn.ShapeError, match="number of fields"):
        default_collate([(1, 2), (1,)])


def test_collate_of_unbatchable_values_raises_dtype_error():
    with pytest.raises(tn.DTypeError, match="NoneType"):
        default_collate([None, None])


# ---- logic gates ----------------------------------------------------------------------------

GATES = {
    "and": lambda a, b: a and b,
    "or": lambda a, b: a or b,
    "nand": lambda a, b: not (a and b),
    "nor": lambda a, b: not (a or b),
    "xor": lambda a, b: a != b,
}


@pytest.mark.parametrize("name", sorted(GATES))
def test_logic_gate_is_the_truth_table_of_the_boolean_function(name):
    X, y = logic_gate(name)
    assert X.shape == (4, 2) and X.dtype == np.float64 and y.shape == (4,) and y.dtype == np.int64
    np.testing.assert_array_equal(X, [[0, 0], [0, 1], [1, 0], [1, 1]])
    expected = [int(GATES[name](bool(a), bool(b))) for a, b in X]
    np.testing.assert_array_equal(y, expected)


def test_xor_truth_table():
    X, y = logic_gate("XOR")
    assert {(int(a), int(b)): int(t) for (a, b), t in zip(X, y, strict=True)} == {
        (0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 0,
    }


def test_unknown_gate_lists_the_known_ones():
    with pytest.raises(ValueError, match="and, nand, nor, or, xor"):
        logic_gate("xnor")


# ---- generated 2-d data sets ----------------------------------------------------------------

GENERATORS = {
    "two_moons": (lambda n, seed: two_moons(n, noise=0.1, seed=seed), 2),
    "circles": (lambda n, seed: circles(n, noise=0.05, seed=seed), 2),
    "spirals2": (lambda n, seed: spirals(n, noise=0.1, seed=seed), 2),
    "spirals3": (lambda n, seed: spirals(n, noise=0.1, classes=3, turns=1.5, seed=seed), 3),
    "blobs": (lambda n, seed: blobs(n, centers=4, seed=seed), 4),
}


@pytest.mark.parametrize("name", sorted(GENERATORS))
@pytest.mark.parametrize("n", [7, 100])
def test_generated_data_has_documented_shapes_dtypes_and_balanced_labels(name, n):
    make, classes = GENERATORS[name]
    X, y = make(n, 0)
    assert X.shape == (n, 2) and X.dtype == np.float64 and np.isfinite(X).all()
    assert y.shape == (n,) and y.dtype == np.int64
    counts = np.bincount(y, minlength=classes)
    assert len(counts) == classes and counts.max() - counts.min() <= 1 and counts.sum() == n


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generated_data_is_reproducible_from_a_seed(name):
    make, _ = GENERATORS[name]
    X1, y1 = make(50, 7)
    X2, y2 = make(50, 7)
    X3, _ = make(50, 8)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generated_data_without_seed_follows_manual_seed(name):
    make, _ = GENERATORS[name]
    tn.manual_seed(9)
    X1, _ = make(30, None)
    tn.manual_seed(9)
    X2, _ = make(30, None)
    X3, _ = make(30, None)
    np.testing.assert_array_equal(X1, X2)
    assert not np.array_equal(X2, X3)


def test_generated_rows_are_shuffled_not_sorted_by_class():
    _, y = two_moons(100, seed=0)
    assert not (np.all(np.diff(y) >= 0) or np.all(np.diff(y) <= 0))


def test_as_tensors_gives_default_float_inputs_and_int64_labels():
    X, y = two_moons(20, seed=1, as_tensors=True)
    assert isinstance(X, tn.Tensor) and X.dtype == np.float32 and X.shape == (20, 2)
    assert isinstance(y, tn.Tensor) and y.dtype == np.int64
    np.testing.assert_array_equal(X.data, two_moons(20, seed=1)[0].astype(np.float32))
    old = tn.get_default_dtype()
    tn.set_default_dtype(tn.float64)
    try:
        Xg, _ = logic_gate("and", as_tensors=True)
        assert Xg.dtype == np.float64
    finally:
        tn.set_default_dtype(old)


def test_two_moons_and_circles_match_scikit_learn_without_noise():
    datasets = pytest.importorskip("sklearn.datasets")

    def rows(X, y):  # compare as sets of labelled points: the shuffles differ
        table = np.column_stack([y, X])
        return table[np.lexsort(table.T[::-1])]

    for n in (9, 40):
        ours = two_moons(n, noise=0.0, seed=0)
        theirs = datasets.make_moons(n, noise=None, shuffle=False)
        np.testing.assert_allclose(rows(*ours), rows(*theirs), rtol=0, atol=1e-12)
        ours = circles(n, noise=0.0, factor=0.3, seed=0)
        theirs = datasets.make_circles(n, noise=None, factor=0.3, shuffle=False)
        np.testing.assert_allclose(rows(*ours), rows(*theirs), rtol=0, atol=1e-12)


def test_circles_without_noise_lie_on_their_two_radii():
    X, y = circles(60, noise=0.0, factor=0.4, seed=0)
    radius = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(radius[y == 0], 1.0, rtol=1e-12)
    np.testing.assert_allclose(radius[y == 1], 0.4, rtol=1e-12)


def test_spiral_arms_without_noise_follow_their_angle_formula():
    classes, turns = 3, 1.5
    X, y = spirals(90, noise=0.0, classes=classes, turns=turns, seed=0)
    r = np.hypot(X[:, 0], X[:, 1])
    assert r.min() > 0 and r.max() == pytest.approx(1.0)
    expected = 2 * np.pi * (turns * r + y / classes)
    difference = np.angle(np.exp(1j * (np.arctan2(X[:, 1], X[:, 0]) - expected)))
    np.testing.assert_allclose(difference, 0.0, atol=1e-9)


def test_blobs_with_given_centres_gather_around_them_in_d_dimensions():
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0]])
    X, y = blobs(2000, centers=centres, std=0.5, seed=0)
    assert X.shape == (2000, 3) and y.dtype == np.int64
    for k in range(2):
        np.testing.assert_allclose(X[y == k].mean(axis=0), centres[k], atol=0.1)
        np.testing.assert_allclose(X[y == k].std(axis=0), 0.5, rtol=0.1)
    X0, y0 = blobs(10, centers=centres, std=0.0, seed=0)
    np.testing.assert_array_equal(X0, centres[y0])


def test_data_set_arguments_are_validated():
    with pytest.raises(ValueError, match="noise"):
        two_moons(10, noise=-0.1)
    with pytest.raises(ValueError, match="at least 2"):
        circles(1)
    with pytest.raises(ValueError, match="factor"):
        circles(10, factor=1.0)
    with pytest.raises(ValueError, match="classes"):
        spirals(10, classes=0)
    with pytest.raises(ValueError, match="std"):
        blobs(10, std=-1.0)
    with pytest.raises(tn.ShapeError, match=r"\(k, d\)"):
        blobs(10, centers=np.zeros(3))


def test_a_training_loop_over_generated_data_runs_end_to_end():
    X, y = logic_gate("xor", as_tensors=True)
    loader = DataLoader(TensorDataset(X, y), batch_size=2, shuffle=True, seed=0)
    seen = [yb for _, yb in loader for yb in yb.data]
    assert sorted(seen) == [0, 0, 1, 1]


# ---- the 8x8 digits shipped with tinynet -----------------------------------------------------


def test_load_digits_reads_the_packaged_copy_without_pickle_or_scikit_learn():
    images, target = tn.data.load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.float64
    assert target.shape == (1797,) and target.dtype == np.int64
    assert images.min() == 0 and images.max() == 16 and np.all(images == np.round(images))
    assert sorted(np.unique(target)) == list(range(10))
    assert np.bincount(target).min() >= 170  # about 180 of each digit
    with np.load(tn.data.DIGITS_FILE, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["images", "target"]
    x, y = tn.data.load_digits(as_tensors=True)
    assert x.dtype == tn.get_default_dtype() and y.dtype == np.int64
    np.testing.assert_array_equal(x.data, images.astype(x.dtype))


def test_load_digits_is_scikit_learns_data_set():
    datasets = pytest.importorskip("sklearn.datasets")
    images, target = tn.data.load_digits()
    theirs = datasets.load_digits()
    np.testing.assert_array_equal(images, theirs.images)
    np.testing.assert_array_equal(images.reshape(-1, 64), theirs.data)
    np.testing.assert_array_equal(target, theirs.target)
