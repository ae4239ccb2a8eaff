"""tinynet.save / tinynet.load: round trips, refusal of pickles, errors naming the file,
and atomic writes under injected faults."""

import io
import math
import os
import pathlib
import pickle
import tempfile
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinynet as tn
import tinynet.io as tio

# ---- helpers --------------------------------------------------------------------------------


def assert_same(loaded, expected, where="obj"):
    """Exact equality: same types (Tensors come back as Tensors, arrays as arrays), dtypes,
    shapes and bytes (so NaN payloads and -0.0 count)."""
    if isinstance(expected, tn.Tensor):
        assert type(loaded) is tn.Tensor, where
        expected, loaded = expected.data, loaded.data
    if isinstance(expected, OrderedDict):
        expected = dict(expected)
    if isinstance(expected, np.ndarray):
        assert isinstance(loaded, np.ndarray), where
        assert loaded.dtype == expected.dtype and loaded.shape == expected.shape, where
        assert loaded.tobytes() == expected.tobytes(), where
        return
    assert type(loaded) is type(expected), f"{where}: {type(loaded)} != {type(expected)}"
    if isinstance(expected, np.generic):
        assert loaded.dtype == expected.dtype and loaded.tobytes() == expected.tobytes(), where
    elif isinstance(expected, dict):
        assert list(loaded) == list(expected), where
        assert [type(k) for k in loaded] == [type(k) for k in expected], where
        for key in expected:
            assert_same(loaded[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, list | tuple):
        assert len(loaded) == len(expected), where
        for i, (a, b) in enumerate(zip(loaded, expected, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(loaded), where
    else:
        assert loaded == expected and repr(loaded) == repr(expected), where


def round_trip(obj, folder):
    path = pathlib.Path(folder) / "state.npz"
    tn.save(obj, path)
    return tn.load(path)


def replace_entries(path, replacements):
    """Rebuild the zip at ``path`` with some members' bytes replaced (comment kept)."""
    with zipfile.ZipFile(path) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
        comment = zf.comment
    entries.update(replacements)
    with zipfile.ZipFile(path, "w") as zf:
        zf.comment = comment
        for name, data in entries.items():
            zf.writestr(name, data)


def make_evil_pickle_array(marker):
    """An object array whose unpickling would create ``marker``: loading must never run it."""
    evil = np.empty(1, dtype=object)
    evil[0] = CreatesFileWhenUnpickled(str(marker))
    return evil


class CreatesFileWhenUnpickled:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


# ---- round trips ----------------------------------------------------------------------------


def test_optimizer_state_dict_round_trips_with_int_keys(tmp_path):
    state = {
        "state": {0: {"momentum_buffer": np.arange(3, dtype=np.float32)},
                  1: {"momentum_buffer": np.ones((2, 2))}},
        "param_groups": [{"lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 0,
                          "betas": (0.9, 0.999), "name": None, "params": [0, 1]}],
    }
    loaded = round_trip(state, tmp_path)
    assert_same(loaded, state)
    assert all(type(k) is int for k in loaded["state"])


def test_tensors_come_back_as_tensors_and_arrays_as_arrays(tmp_path):
    weight = tn.tensor(np.random.default_rng(0).normal(size=(3, 2)), requires_grad=True)
    state = OrderedDict([("layers.0.weight", weight), ("layers.0.bias", tn.zeros(3)),
                         ("layers.2.weight", np.ones((1, 3), np.float32))])
    loaded = round_trip(state, tmp_path)
    assert type(loaded) is dict and list(loaded) == list(state)
    assert [type(v) for v in loaded.values()] == [tn.Tensor, tn.Tensor, np.ndarray]
    assert not loaded["layers.0.weight"].requires_grad
    assert_same(loaded, state)


def test_python_scalars_strings_none_and_special_floats_round_trip(tmp_path):
    state = {"int": 3, "big": 2**80, "neg": -7, "float": 0.1, "tiny": 5e-324, "negzero": -0.0,
             "inf": math.inf, "ninf": -math.inf, "nan": math.nan, "true": True, "false": False,
             "str": "héllo / wörld", "empty": "", "none": None, "list": [1, 2.5, True],
             "tuple": (1, (2, 3)), "empty_list": [], "empty_tuple": (), "empty_dict": {}}
    assert_same(round_trip(state, tmp_path), state)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int8", "int16", "int32",
                                   "int64", "uint8", "uint16", "uint32", "uint64", "bool",
                                   "complex64", "complex128"])
def test_every_dtype_and_shape_round_trips_exactly(tmp_path, dtype):
    rng = np.random.default_rng(0)
    arrays = {f"shape{i}": (rng.normal(size=shape) * 100).astype(dtype)
              for i, shape in enumerate([(), (0,), (1,), (3, 4), (2, 0, 3), (2, 3, 4, 5)])}
    arrays["scalar"] = np.dtype(dtype).type(1)
    assert_same(round_trip(arrays, tmp_path), arrays)


def test_zero_d_arrays_stay_arrays_and_numpy_scalars_stay_scalars(tmp_path):
    loaded = round_trip({"array": np.array(2.5, np.float32), "scalar": np.float16(1.5),
                         "step": np.int64(10)}, tmp_path)
    assert type(loaded["array"]) is np.ndarray and loaded["array"].shape == ()
    assert loaded["array"].dtype == np.float32
    assert type(loaded["scalar"]) is np.float16 and loaded["scalar"] == 1.5
    assert type(loaded["step"]) is np.int64 and loaded["step"] == 10


def test_non_contiguous_and_fortran_arrays_round_trip(tmp_path):
    base = np.arange(24.0).reshape(4, 6)
    state = {"strided": base[::2, ::3], "transposed": base.T, "fortran": np.asfortranarray(base)}
    assert_same(round_trip(state, tmp_path), state)


def test_keys_that_look_alike_or_contain_separators_stay_distinct(tmp_path):
    state = {0: np.array([0]), "0": np.array([1]), "[0]": np.array([2]), "a/b": np.array([3]),
             "a": {"b": np.array([4])}, "": np.array([5]), "%": np.array([6]),
             "..": np.array([7]), ".": np.array([8]), "tinynet:structure": np.array([9]),
             "[root]": np.array([10]), "file": np.array([11]), "allow_pickle": np.array([12]),
             "ünï cødé": np.array([13]), -1: np.array([14]), "%2E": np.array([15]),
             "lone \ud800 surrogate": {"\udfff": "\ud800"}}
    assert_same(round_trip(state, tmp_path), state)


def test_a_bare_array_or_list_can_be_the_whole_file(tmp_path):
    assert_same(round_trip(np.arange(5), tmp_path), np.arange(5))
    assert_same(round_trip([np.ones(2), 3], tmp_path), [np.ones(2), 3])


def test_loaded_arrays_are_writable_independent_copies(tmp_path):
    path = tmp_path / "w.npz"
    tn.save({"w": np.zeros(3), "v": np.zeros(3)}, path)
    first, second = tn.load(path), tn.load(path)
    assert type(first["w"]) is np.ndarray and first["w"].flags.writeable
    first["w"][:] = 1.0
    assert not np.shares_memory(first["w"], first["v"])
    np.testing.assert_array_equal(second["w"], 0.0)
    np.testing.assert_array_equal(first["v"], 0.0)


def test_the_path_is_used_exactly_as_given_without_appending_npz(tmp_path):
    path = tmp_path / "weights.bin"
    tn.save({"w": np.ones(2)}, path)
    assert os.listdir(tmp_path) == ["weights.bin"]
    assert_same(tn.load(str(path)), {"w": np.ones(2)})


def test_a_very_long_file_name_still_saves(tmp_path):
    path = tmp_path / ("w" * 250)
    tn.save({"v": 1}, path)
    assert tn.load(path) == {"v": 1}


def test_saving_again_replaces_the_file_and_keeps_its_permissions(tmp_path):
    path = tmp_path / "w.npz"
    tn.save({"v": 1}, path)
    os.chmod(path, 0o640)
    tn.save({"v": 2}, path)
    assert tn.load(path) == {"v": 2}
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_new_files_get_the_usual_permissions_not_mkstemps_private_ones(tmp_path):
    path = tmp_path / "w.npz"
    tn.save({"v": 1}, path)
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_files_are_plain_npz_that_numpy_reads_without_pickle(tmp_path):
    path = tmp_path / "w.npz"
    tn.save({"state": {0: {"buf": np.ones(2)}}, "lr": 0.5}, path)
    with np.load(path, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["state/[0]/buf"], [1.0, 1.0])
        assert npz[tio.STRUCTURE_ENTRY].dtype == np.uint8


def test_plain_npz_from_numpy_loads_as_a_flat_dict(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, weight=np.eye(2, dtype=np.float32), bias=np.zeros(2))
    loaded = tn.load(path)
    assert_same(loaded, {"weight": np.eye(2, dtype=np.float32), "bias": np.zeros(2)})


# ---- refusing what would need pickle, before writing ----------------------------------------


def test_saving_an_object_array_raises_before_touching_the_file(tmp_path):
    path = tmp_path / "w.npz"
    with pytest.raises(tn.DTypeError, match=r"obj\['a'\]\[0\].*object.*pickle"):
        tn.save({"a": [np.array([1, "x"], dtype=object)]}, path)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("bad, match", [
    ({"f": lambda: 0}, r"obj\['f'\] of type function"),
    ({"s": {1, 2}}, "set"),
    ({"b": b"bytes"}, "bytes"),
    ({1.5: np.ones(1)}, "keys must be str or int"),
    ({True: np.ones(1)}, "keys must be str or int"),
    ({"t": (1, object())}, r"obj\['t'\]\[1\]"),
])
def test_unstorable_values_raise_and_leave_the_previous_file_alone(tmp_path, bad, match):
    path = tmp_path / "w.npz"
    tn.save({"good": np.ones(3)}, path)
    before = path.read_bytes()
    with pytest.raises(tn.DTypeError, match=match):
        tn.save(bad, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["w.npz"]


def test_saving_a_structure_that_contains_itself_raises(tmp_path):
    loop = {"a": []}
    loop["a"].append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        tn.save(loop, tmp_path / "w.npz")
    assert os.listdir(tmp_path) == []


def test_saving_into_a_missing_folder_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tn.save({"a": 1}, tmp_path / "nope" / "w.npz")


def test_path_must_be_a_str_or_pathlike():
    with pytest.raises(TypeError, match="os.PathLike"):
        tn.save({"a": 1}, 3)
    with pytest.raises(TypeError, match="os.PathLike"):
        tn.load(None)


# ---- loading bad files ----------------------------------------------------------------------


def test_loading_a_missing_file_raises_file_not_found_with_the_path(tmp_path):
    path = tmp_path / "missing.npz"
    with pytest.raises(FileNotFoundError, match="missing.npz") as info:
        tn.load(path)
    assert info.value.filename == str(path)


def test_a_truncated_file_raises_file_format_error_naming_it(tmp_path):
    path = tmp_path / "trunc.npz"
    tn.save({"w": np.arange(1000.0), "state": {0: {"b": np.ones(10)}}}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(tn.FileFormatError, match="trunc.npz"):
        tn.load(path)


@pytest.mark.parametrize("cut", [0, 1, 10, 100, 1000, -100, -22, -1])
def test_files_cut_anywhere_raise_file_format_error(tmp_path, cut):
    path = tmp_path / "cut.npz"
    tn.save({"w": np.arange(300.0), "lr": 0.1}, path)
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(tn.FileFormatError, match="cut.npz"):
        tn.load(path)


def test_a_flipped_byte_in_array_data_is_caught_by_the_checksum(tmp_path):
    path = tmp_path / "flip.npz"
    tn.save({"w": np.zeros(1000)}, path)
    data = bytearray(path.read_bytes())
    data[4000] ^= 0xFF  # inside w's 8000 bytes of zeros
    path.write_bytes(bytes(data))
    with pytest.raises(tn.FileFormatError, match=r"flip.npz.*|corrupt"):
        tn.load(path)


def test_random_bytes_and_other_formats_raise_file_format_error(tmp_path):
    noise = tmp_path / "noise.npz"
    noise.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(tn.FileFormatError, match="noise.npz"):
        tn.load(noise)
    npy = tmp_path / "array.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(tn.FileFormatError, match="array.npy"):
        tn.load(npy)
    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(tn.FileFormatError, match="readme.txt"):
        tn.load(other_zip)


def test_file_format_error_is_a_value_error():
    assert issubclass(tn.FileFormatError, ValueError)


def test_object_array_in_a_plain_npz_is_refused_without_running_its_pickle(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.npz"
    np.savez(path, w=np.ones(2), evil=make_evil_pickle_array(marker))
    # the trap works: numpy with allow_pickle=True runs the payload
    np.load(path, allow_pickle=True)["evil"]
    assert marker.exists()
    marker.unlink()
    with pytest.raises(tn.FileFormatError, match=r"evil.npz.*(pickle|[Oo]bject)"):
        tn.load(path)
    assert not marker.exists()


def test_object_array_inside_a_tinynet_file_is_refused_without_running_its_pickle(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.npz"
    tn.save({"w": np.ones(2)}, path)
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, make_evil_pickle_array(marker), allow_pickle=True)
    replace_entries(path, {"w.npy": buffer.getvalue()})
    with pytest.raises(tn.FileFormatError, match=r"evil.npz.*allow_pickle"):
        tn.load(path)
    assert not marker.exists()


def test_a_pickle_file_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps(CreatesFileWhenUnpickled(str(marker))))
    with pytest.raises(tn.FileFormatError, match="model.pt"):
        tn.load(path)
    assert not marker.exists()


def rewrite_structure(path, text):
    """Replace the structure entry of a tinynet file with ``text``."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.frombuffer(text.encode(), np.uint8))
    replace_entries(path, {tio.STRUCTURE_ENTRY + ".npy": buffer.getvalue()})


@pytest.mark.parametrize("text, match", [
    ("{not json", "unreadable"),
    ('{"format": "tinynet", "version": 99, "root": {"kind": "none"}}', "version 99"),
    ('{"format": "tinynet", "version": 1, "root": {"kind": "array", "entry": "nope"}}',
     "missing the array entry 'nope'"),
    ('{"format": "tinynet", "version": 1, "root": {"kind": "none"}}', "does not describe"),
    ('{"format": "tinynet", "version": 1, "root": {"kind": "eval", "value": "1"}}',
     "does not understand"),
    ('{"format": "tinynet", "version": 1, "root": {"kind": "dict", "items": [[1.5, null]]}}',
     "does not understand"),
    ('{"format": "tinynet", "version": 1, "root": {"kind": "int", "value": "3"}}',
     "does not understand"),
])
def test_a_damaged_structure_entry_raises_file_format_error(tmp_path, text, match):
    path = tmp_path / "damaged.npz"
    tn.save({"w": np.ones(2)}, path)
    rewrite_structure(path, text)
    with pytest.raises(tn.FileFormatError, match=match) as info:
        tn.load(path)
    assert "damaged.npz" in str(info.value)


# ---- atomic writes under faults -------------------------------------------------------------


@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "model.npz"
    tn.save({"w": np.arange(10.0), "step": 1}, path)
    return path


def assert_untouched(path, before):
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name], "a temp file was left behind"
    assert_same(tn.load(path), {"w": np.arange(10.0), "step": 1})


NEW_STATE = {"w": np.ones(1000), "b": np.zeros(50), "step": 2}


def test_an_error_midway_through_writing_leaves_the_previous_file_intact(good_file, monkeypatch):
    before = good_file.read_bytes()
    real_write_entry = tio._write_entry
    calls = []

    def write_then_fail(zf, name, array):
        calls.append(name)
        if len(calls) == 2:  # the first entry is already in the temp file
            raise OSError("disk full (injected)")
        real_write_entry(zf, name, array)

    monkeypatch.setattr(tio, "_write_entry", write_then_fail)
    with pytest.raises(OSError, match="injected"):
        tn.save(NEW_STATE, good_file)
    assert len(calls) == 2
    assert_untouched(good_file, before)


def test_an_interrupt_midway_through_writing_leaves_the_previous_file_intact(good_file,
                                                                              monkeypatch):
    before = good_file.read_bytes()

    def interrupted(zf, name, array):
        raise KeyboardInterrupt

    monkeypatch.setattr(tio, "_write_entry", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tn.save(NEW_STATE, good_file)
    assert_untouched(good_file, before)


def test_a_failing_rename_leaves_the_previous_file_intact(good_file, monkeypatch):
    before = good_file.read_bytes()
    renamed = []

    def failing_replace(src, dst):
        renamed.append((src, dst))
        assert os.path.getsize(src) > 0  # the complete new file existed beside the old one
        raise PermissionError("rename refused (injected)")

    monkeypatch.setattr(tio.os, "replace", failing_replace)
    with pytest.raises(PermissionError, match="injected"):
        tn.save(NEW_STATE, good_file)
    assert len(renamed) == 1 and os.path.dirname(renamed[0][0]) == str(good_file.parent)
    assert_untouched(good_file, before)


def test_a_failing_fsync_leaves_the_previous_file_intact(good_file, monkeypatch):
    before = good_file.read_bytes()

    def failing_fsync(fd):
        raise OSError("I/O error (injected)")

    monkeypatch.setattr(tio.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="injected"):
        tn.save(NEW_STATE, good_file)
    assert_untouched(good_file, before)


def test_the_data_is_fsynced_before_the_rename(good_file, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(tio.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(tio.os, "replace",
                        lambda a, b: (events.append("replace"), real_replace(a, b)))
    tn.save(NEW_STATE, good_file)
    assert events[:2] == ["fsync", "replace"]
    assert_same(tn.load(good_file), NEW_STATE)


# ---- hypothesis: random nested state dicts --------------------------------------------------

DTYPES = [np.dtype(d) for d in ("float16", "float32", "float64", "int8", "int32", "int64",
                                "uint8", "uint64", "bool")]

arrays = st.sampled_from(DTYPES).flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                                     max_side=4)))
leaves = st.one_of(
    arrays,
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8),
    st.sampled_from(DTYPES).flatmap(lambda dtype: hnp.from_dtype(dtype)),
)
keys = st.one_of(st.text(max_size=6), st.integers(-5, 1000))
structures = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.dictionaries(keys, children, max_size=4),
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
    ),
    max_leaves=12,
)


@given(structures)
def test_random_nested_structures_round_trip_exactly(obj):
    with tempfile.TemporaryDirectory() as folder:
        assert_same(round_trip(obj, folder), obj)
        assert os.listdir(folder) == ["state.npz"]


def test_every_single_byte_corruption_gives_the_original_or_file_format_error(tmp_path):
    """Flip bits in every byte of a small file: each load either returns exactly what was
    saved (the byte was unchecked metadata such as a timestamp) or raises FileFormatError --
    never another exception, never different data."""
    state = {"state": {0: {"b": np.arange(3.0)}}, "lr": 0.1, "w": np.ones((2, 2), np.float32)}
    path = tmp_path / "good.npz"
    tn.save(state, path)
    data = path.read_bytes()
    corrupt = tmp_path / "corrupt.npz"
    outcomes = {"same": 0, "refused": 0}
    for position in range(len(data)):
        for mask in (0x01, 0xFF):
            damaged = bytearray(data)
            damaged[position] ^= mask
            corrupt.write_bytes(bytes(damaged))
            try:
                loaded = tn.load(corrupt)
            except tn.FileFormatError as e:
                assert "corrupt.npz" in str(e)
                outcomes["refused"] += 1
            else:
                assert_same(loaded, state, f"byte {position} ^ {mask:#x}")
                outcomes["same"] += 1
    assert outcomes["refused"] > outcomes["same"] > 0


def test_a_tinynet_file_that_lost_its_structure_entry_is_not_read_as_a_plain_npz(tmp_path):
    path = tmp_path / "lost.npz"
    tn.save({"state": {0: {"b": np.ones(2)}}}, path)
    with zipfile.ZipFile(path) as zf:
        entries = {n: zf.read(n) for n in zf.namelist() if n != tio.STRUCTURE_ENTRY + ".npy"}
        comment = zf.comment
    with zipfile.ZipFile(path, "w") as zf:
        zf.comment = comment
        for name, data in entries.items():
            zf.writestr(name, data)
    with pytest.raises(tn.FileFormatError, match="lost.npz.*structure.*missing"):
        tn.load(path)


def test_a_training_checkpoint_of_a_real_model_and_optimizer_round_trips(tmp_path):
    from tinynet import nn, optim

    tn.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = tn.tensor([[0.0, 1.0], [1.0, 0.0]])
    for _ in range(2):
        optimizer.zero_grad()
        (model(x) ** 2).mean().backward()
        optimizer.step()
    checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 2}
    loaded = round_trip(checkpoint, tmp_path)
    assert_same(loaded, checkpoint)
    assert all(type(k) is int for k in loaded["optimizer"]["state"])
    clone = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    clone.load_state_dict(loaded["model"])
    np.testing.assert_array_equal(clone(x).data, model(x).data)
