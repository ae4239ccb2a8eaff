"""tn.save / tn.load hardening: PyTorch's arguments, file objects, crafted structures with
the wrong JSON types, nesting depth, and compressed entries that inflate (zip bombs)."""

from __future__ import annotations

import inspect
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinynet as tn
import tinynet.io as tio

STATE = {"w": np.arange(6.0).reshape(2, 3), "step": 3, "groups": [{"lr": 0.1}]}


def same(a: Any, b: Any) -> None:
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


def write_structure(path: Path, text: str) -> None:
    """A tinynet file holding ``{"w": ones(2)}`` whose structure entry is ``text``."""
    tn.save({"w": np.ones(2)}, path)
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.frombuffer(text.encode(), np.uint8))
    with zipfile.ZipFile(path) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
        comment = zf.comment
    entries[tio.STRUCTURE_ENTRY + ".npy"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as zf:
        zf.comment = comment
        for name, content in entries.items():
            zf.writestr(name, content)


def manifest(root: Any) -> str:
    return json.dumps({"format": "tinynet", "version": 1, "root": root})


# ---- PyTorch's arguments --------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "state.npz"
    tn.save(STATE, path)
    return path


def test_load_accepts_every_parameter_torch_load_has() -> None:
    torch = pytest.importorskip("torch")
    ours = inspect.signature(tn.load).parameters
    for name, parameter in inspect.signature(torch.load).parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in ours.values())
            continue
        assert name in ours, name
        assert ours[name].kind == parameter.kind, name
        assert ours[name].default == parameter.default, name
    assert list(inspect.signature(tn.save).parameters)[:2] == \
        list(inspect.signature(torch.save).parameters)[:2] == ["obj", "f"]


def cpu_devices() -> list[Any]:
    devices: list[Any] = [None, "cpu", "cpu:0"]
    try:
        import torch
    except ImportError:
        return devices
    return [*devices, torch.device("cpu")]


@pytest.mark.parametrize("map_location", cpu_devices(), ids=repr)
@pytest.mark.parametrize("weights_only", [None, True, False])
def test_cpu_map_locations_and_weights_only_load_the_same_state(
        saved: Path, map_location: Any, weights_only: Any) -> None:
    same(tn.load(saved, map_location=map_location, weights_only=weights_only), STATE)
    same(tn.load(saved, map_location, weights_only=weights_only, mmap=True), STATE)


@pytest.mark.parametrize("map_location, error, match", [
    ("cuda", tn.ValueRangeError, "CPU only"),
    ("cuda:1", tn.ValueRangeError, "CPU only"),
    ("mps", tn.ValueRangeError, "map_location='cpu'"),
    ({"cpu": "cuda:0"}, tn.ValueRangeError, "CPU only"),
    (3, tn.DTypeError, "int"),
])
def test_other_map_locations_are_refused_saying_what_to_pass(
        saved: Path, map_location: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        tn.load(saved, map_location=map_location)


@pytest.mark.parametrize("map_location", [lambda storage, location: storage,
                                          {"cuda:0": "cpu"}, {}], ids=["function", "dict", "{}"])
def test_the_load_to_cpu_idioms_are_accepted(saved: Path, map_location: Any) -> None:
    same(tn.load(saved, map_location=map_location), STATE)  # nothing to remap: all on the CPU


def test_a_cuda_torch_device_is_refused() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(tn.ValueRangeError, match="CPU only"):
        tn.load("unused.npz", map_location=torch.device("cuda"))


@pytest.mark.parametrize("kwargs, match", [
    ({"pickle_module": __import__("pickle")}, "pickle_module.*never"),
    ({"encoding": "latin1"}, "encoding.*unpickling"),
    ({"weights_only": "yes"}, "weights_only"),
    ({"mmap": 1}, "mmap"),
    ({"max_inflated_bytes": -1}, "max_inflated_bytes"),
    ({"max_inflated_bytes": 1.5}, "max_inflated_bytes"),
])
def test_pickle_options_and_bad_flags_are_refused(saved: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(tn.TinynetError, match=match):
        tn.load(saved, **kwargs)


def test_save_and_load_work_with_file_objects(saved: Path) -> None:
    buffer = io.BytesIO()
    tn.save(STATE, buffer)
    assert buffer.getvalue() == saved.read_bytes()  # the same bytes as a saved file
    buffer.seek(0)
    same(tn.load(buffer), STATE)
    with open(saved, "rb") as handle:
        same(tn.load(handle, map_location="cpu"), STATE)
    with np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["w"], STATE["w"])


def test_a_damaged_file_object_is_named_in_the_error() -> None:
    with pytest.raises(tn.FileFormatError, match="BytesIO"):
        tn.load(io.BytesIO(b"not a zip file"))


def test_torch_style_checkpoint_code_runs_unchanged(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    model = tn.nn.Linear(3, 2)
    path = tmp_path / "checkpoint.pt"
    tn.save({"model": model.state_dict(), "epoch": 4}, path)
    checkpoint = tn.load(path, map_location=torch.device("cpu"), weights_only=True)
    clone = tn.nn.Linear(3, 2)
    clone.load_state_dict(checkpoint["model"])
    np.testing.assert_array_equal(clone.weight.data, model.weight.data)
    assert checkpoint["epoch"] == 4


# ---- issue 12 item 9: structure entries of the wrong JSON type ------------------------------

WRONG_TYPES = [
    ({"kind": ["array"], "entry": "w"}, "obj: its 'kind' must be a string"),
    ({"kind": {"a": 1}}, "'kind' must be a string"),
    ({"kind": None}, "'kind' must be a string"),
    ({"kind": "array", "entry": ["w"]}, "'entry' must be a string"),
    ({"kind": "array", "entry": {"w": 1}}, "'entry' must be a string"),
    ({"kind": "numpy_scalar", "entry": 7}, "'entry' must be a string"),
    ({"kind": "numpy_scalar", "entry": "w"}, "must be 0-d"),
    ({"kind": "dict", "items": [["w", {"kind": "array", "entry": ["w"]}]]},
     r"at obj\['w'\]: its 'entry' must be a string"),
    ({"kind": "dict", "items": {"w": 1}}, "'items' must be a JSON list"),
    ({"kind": "dict", "items": [[["w"], {"kind": "none"}]]}, r"\[key, node\]"),
    ({"kind": "dict", "items": [[{"k": 1}, {"kind": "none"}]]}, r"\[key, node\]"),
    ({"kind": "dict", "items": [["w"]]}, r"\[key, node\]"),
    ({"kind": "list", "items": "abc"}, "'items' must be a JSON list"),
    ({"kind": "tuple", "items": [{"kind": "list", "items": [7]}]},
     r"at obj\[0\]\[0\]: a node must be a JSON object"),
    ({"kind": "int", "value": [1]}, "'value' must be a JSON int"),
    ({"kind": "str", "value": {"s": 1}}, "'value' must be a JSON str"),
    ([{"kind": "array", "entry": "w"}], "obj: a node must be a JSON object"),
    ("array", "a node must be a JSON object"),
    (None, "a node must be a JSON object"),
]


@pytest.mark.parametrize("root, match", WRONG_TYPES,
                         ids=[json.dumps(r)[:50] for r, _ in WRONG_TYPES])
def test_wrong_json_types_raise_file_format_error_naming_the_node(
        tmp_path: Path, root: Any, match: str) -> None:
    path = tmp_path / "crafted.npz"
    write_structure(path, manifest(root))
    with pytest.raises(tn.FileFormatError, match=match) as info:
        tn.load(path)
    assert "crafted.npz" in str(info.value) and "does not understand" in str(info.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) |
    st.sampled_from(["w", "array", "dict", "list", "tuple", "numpy_scalar", "int", "none"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["kind", "entry", "items", "value", "x"]), children, max_size=4),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(root=json_values)
def test_any_json_structure_loads_or_raises_file_format_error(tmp_path: Path, root: Any) -> None:
    """Random JSON in place of the structure: never a TypeError, KeyError or RecursionError."""
    path = tmp_path / "fuzzed.npz"
    write_structure(path, manifest(root))
    try:
        tn.load(path)
    except tn.FileFormatError:
        pass


# ---- issue 12 item 9: nesting depth ---------------------------------------------------------


def nested(depth: int, kind: str) -> Any:
    value: Any = np.arange(3.0)
    for level in range(depth):
        value = {f"k{level}": value} if kind == "dict" else [value] if kind == "list" else (
            value,)
    return value


@pytest.mark.parametrize("kind", ["dict", "list", "tuple"])
def test_structures_as_deep_as_load_accepts_round_trip(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "deep.npz"
    tn.save(nested(tio.MAX_DEPTH, kind), path)
    same(tn.load(path), nested(tio.MAX_DEPTH, kind))


@pytest.mark.parametrize("kind", ["dict", "list", "tuple"])
@pytest.mark.parametrize("depth", [tio.MAX_DEPTH + 1, 1000, 5000])
def test_saving_deeper_raises_a_clear_error_not_recursion_error(
        tmp_path: Path, kind: str, depth: int) -> None:
    path = tmp_path / "deep.npz"
    tn.save({"old": 1}, path)
    with pytest.raises(tn.ValueRangeError, match=rf"nested more than {tio.MAX_DEPTH}.*tn.load"):
        tn.save(nested(depth, kind), path)
    assert tn.load(path) == {"old": 1}  # the previous file is untouched


def test_loading_a_crafted_file_one_level_deeper_than_save_writes_is_refused(
        tmp_path: Path) -> None:
    node: dict[str, Any] = {"kind": "none"}
    for _ in range(tio.MAX_DEPTH + 1):
        node = {"kind": "list", "items": [node]}
    path = tmp_path / "deeper.npz"
    write_structure(path, manifest(node))
    with pytest.raises(tn.FileFormatError, match=rf"more than {tio.MAX_DEPTH} containers"):
        tn.load(path)


def test_loading_json_nested_far_too_deep_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "json_bomb.npz"
    text = manifest(None).replace("null", '{"kind": "list", "items": [' * 100_000
                                  + "]}" * 100_000)
    write_structure(path, text)
    with pytest.raises(tn.FileFormatError, match="json_bomb.npz"):
        tn.load(path)


def test_a_cycle_is_still_refused_as_a_value_error(tmp_path: Path) -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(tn.ValueRangeError, match="contains itself"):
        tn.save(loop, tmp_path / "cycle.npz")


# ---- the decided item: compressed entries that inflate --------------------------------------


def compressed_zeros(path: Path, nbytes: int) -> None:
    """An .npz (as np.savez_compressed writes) with one uint8 entry of ``nbytes`` zeros, written
    in chunks so the test never holds it in memory."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("w.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(
                member, {"descr": "|u1", "fortran_order": False, "shape": (nbytes,)})
            chunk = bytes(2**20)
            for start in range(0, nbytes, len(chunk)):
                member.write(chunk[: min(len(chunk), nbytes - start)])


def test_a_zip_bomb_is_refused_before_inflating_naming_the_sizes_and_the_way_out(
        tmp_path: Path) -> None:
    path = tmp_path / "bomb.npz"
    compressed_zeros(path, 200 * 2**20)
    assert os.path.getsize(path) < 2**20  # 200 MiB behind well under 1 MiB
    with pytest.raises(tn.FileFormatError,  # 200 MiB + the 128-byte .npy header
                       match=r"bomb.npz.*inflate to 209715328 bytes.*1028 times"
                             r".*max_inflated_bytes=209715328"):
        tn.load(path)


def test_max_inflated_bytes_sets_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "small_bomb.npz"
    compressed_zeros(path, 2**20)
    assert tn.load(path)["w"].shape == (2**20,)  # under the 64 MiB floor: loads by default
    with pytest.raises(tn.FileFormatError, match="limit of 524288 bytes"):
        tn.load(path, max_inflated_bytes=2**19)
    declared = 2**20 + 128  # the .npy header too
    assert tn.load(path, max_inflated_bytes=declared)["w"].sum() == 0


def test_ordinary_compressed_files_load_by_default(tmp_path: Path) -> None:
    path = tmp_path / "weights.npz"
    weights = {"w": np.random.default_rng(0).normal(size=(300, 300)), "b": np.zeros(5000)}
    np.savez_compressed(path, **weights)
    loaded = tn.load(path)
    for key, value in weights.items():
        np.testing.assert_array_equal(loaded[key], value)


def test_tinynet_files_are_stored_uncompressed_so_the_limit_never_applies(
        tmp_path: Path) -> None:
    path = tmp_path / "big.npz"
    tn.save({"w": np.zeros(2**20)}, path)
    with zipfile.ZipFile(path) as zf:
        assert {info.compress_type for info in zf.infolist()} == {zipfile.ZIP_STORED}
    assert tn.load(path, max_inflated_bytes=0)["w"].shape == (2**20,)
