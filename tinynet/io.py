"""Saving and loading state dicts: ``tn.save(obj, path)`` and ``tn.load(path)``.

    tn.save(model.state_dict(), "model.npz")
    model.load_state_dict(tn.load("model.npz"))

What can be saved: nested dicts (str or int keys), lists and tuples holding numpy arrays,
Tensors, numpy scalars, Python ints/floats/bools/strings and None -- what ``state_dict()`` of a
model or an optimizer returns. Loading gives back the same structure, with two changes: Tensors
come back as numpy arrays (as ``state_dict()`` holds arrays; wrap with ``tn.tensor`` if you need
Tensors) and dict/list/tuple subclasses (``OrderedDict``, namedtuples) come back as plain
dicts/lists/tuples, in the same order. Arrays keep their exact dtype and shape (0-d included),
numpy scalars stay numpy scalars of their dtype, int keys stay ints, tuples stay tuples.

The file format is numpy's ``.npz`` (a zip of ``.npy`` files) so any numpy can read it:

- each array is one entry, named by its path in the structure: ``state/[0]/momentum_buffer``
  (str keys percent-escaped so ``/`` can only separate levels; ``[i]`` for int keys and list
  positions), the root array alone is ``[root]``;
- the entry ``tinynet:structure`` holds UTF-8 JSON (as a uint8 array) describing the nesting,
  the key types and every non-array value;
- the zip comment ``tinynet`` marks the file, so a tinynet file whose zip directory is damaged
  is refused instead of passing for a plain ``.npz``.

``tn.load`` also reads a plain ``.npz`` written by ``np.savez`` (no structure entry): it gives a
flat dict ``{name: array}``.

Nothing is ever unpickled: loading reads with ``allow_pickle=False`` and refuses object arrays,
so a hostile file cannot run code. Saving writes a temporary file in the same folder, flushes
and fsyncs it, then renames it over ``path`` in one step: a crash or an error mid-write leaves
the previous file untouched, never half a file. ``path`` is used exactly as given (no ``.npz``
is appended, unlike ``np.savez``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import tempfile
import zipfile
import zlib
from typing import IO, Any
from urllib.parse import quote

import numpy as np

from tinynet.errors import DTypeError, FileFormatError
from tinynet.tensor import Tensor

STRUCTURE_ENTRY = "tinynet:structure"  # ':' is escaped in keys, so no array entry can clash
ROOT_ENTRY = "[root]"
FORMAT_NAME = "tinynet"
FORMAT_VERSION = 1
ZIP_COMMENT = b"tinynet"  # marks our files, so a damaged one never passes for a plain .npz

PathLike = str | os.PathLike

__all__ = ["load", "save"]


# ---- saving ---------------------------------------------------------------------------------


def save(obj: Any, path: PathLike) -> None:
    """Write ``obj`` (a state dict, see the module docstring) to ``path`` as an ``.npz`` file.

    The file is written atomically (temp file + fsync + rename). Anything that would need pickle
    (object arrays, arbitrary Python objects, keys other than str/int) raises ``DTypeError``
    naming where it sits in ``obj``, before any file is touched.
    """
    path = _as_path(path, "save")
    arrays: dict[str, np.ndarray] = {}
    root = _describe(obj, (), arrays, set())
    manifest = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "root": root}
    # ASCII JSON (non-ASCII as \u escapes) also carries strings that UTF-8 cannot (lone
    # surrogates); allow_nan keeps nan/inf, which Python's json reads back.
    text = json.dumps(manifest, ensure_ascii=True, allow_nan=True)
    arrays[STRUCTURE_ENTRY] = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    _write_atomically(path, arrays)


def _as_path(path: Any, function: str) -> str:
    if not isinstance(path, str | bytes | os.PathLike):
        raise DTypeError(
            f"tinynet.{function}: path must be a str or os.PathLike, got {type(path).__name__}"
        )
    return os.fsdecode(os.fspath(path))


def _describe(
    obj: Any, where: tuple[Any, ...], arrays: dict[str, np.ndarray], open_ids: set[int]
) -> dict[str, Any]:
    """The JSON node for ``obj``; its arrays go into ``arrays`` under their entry names.

    ``where`` is the path of keys from the root (for entry names and error messages);
    ``open_ids`` holds the containers being described, to refuse a structure containing itself.
    """
    if isinstance(obj, Tensor):
        obj = obj.data
    if isinstance(obj, np.ndarray):
        _check_storable(obj.dtype, where)
        name = _entry_name(where)
        arrays[name] = obj
        return {"kind": "array", "entry": name}
    if isinstance(obj, np.generic) and not isinstance(obj, str):
        # a numpy scalar keeps its exact dtype as a 0-d entry; it comes back as a numpy scalar
        _check_storable(obj.dtype, where)
        name = _entry_name(where)
        arrays[name] = np.asarray(obj)
        return {"kind": "numpy_scalar", "entry": name}
    if obj is None:
        return {"kind": "none"}
    if isinstance(obj, bool):  # before int: bool is a subclass of int
        return {"kind": "bool", "value": obj}
    if isinstance(obj, int):
        return {"kind": "int", "value": int(obj)}
    if isinstance(obj, float):
        return {"kind": "float", "value": float(obj)}  # JSON floats round-trip exactly (repr)
    if isinstance(obj, str):
        return {"kind": "str", "value": str(obj)}
    if isinstance(obj, dict | list | tuple):
        if id(obj) in open_ids:
            raise ValueError(f"tinynet.save: {_where(where)} contains itself; cannot save a cycle")
        open_ids.add(id(obj))
        if isinstance(obj, dict):
            items = []
            for key, value in obj.items():
                key = _check_key(key, where)
                items.append([key, _describe(value, (*where, key), arrays, open_ids)])
            node = {"kind": "dict", "items": items}
        else:
            node = {
                "kind": "list" if isinstance(obj, list) else "tuple",
                "items": [_describe(v, (*where, i), arrays, open_ids) for i, v in enumerate(obj)],
            }
        open_ids.discard(id(obj))
        return node
    raise DTypeError(
        f"tinynet.save: cannot save {_where(where)} of type {type(obj).__name__}: only dicts, "
        "lists, tuples, arrays, Tensors, numbers, bools, strings and None can be stored without "
        "pickle (save its state_dict() or convert it to an array)"
    )


def _check_storable(dtype: np.dtype, where: tuple[Any, ...]) -> None:
    if dtype.hasobject:
        raise DTypeError(
            f"tinynet.save: {_where(where)} is an array of dtype {dtype}, which holds Python "
            "objects and would need pickle; convert it to a numeric array first"
        )


def _check_key(key: Any, where: tuple[Any, ...]) -> str | int:
    if isinstance(key, str):
        return str(key)
    if isinstance(key, int | np.integer) and not isinstance(key, bool | np.bool_):
        return int(key)
    raise DTypeError(
        f"tinynet.save: dict keys must be str or int, {_where(where)} has a key {key!r} of type "
        f"{type(key).__name__}"
    )


def _where(where: tuple[Any, ...]) -> str:
    """``('state', 0, 'buf')`` -> ``obj['state'][0]['buf']``, for error messages."""
    return "obj" + "".join(f"[{key!r}]" for key in where)


def _entry_name(where: tuple[Any, ...]) -> str:
    """A unique, readable zip entry name for the value at path ``where``.

    str keys are percent-escaped (so they never contain ``/ [ ] :``) with a leading ``.`` escaped
    too (no ``..`` parts for unzip tools to follow), and ``""`` becomes ``%``; ints become
    ``[i]``. Different paths therefore always give different names.
    """
    if not where:
        return ROOT_ENTRY
    parts = []
    for key in where:
        if isinstance(key, int):
            parts.append(f"[{key}]")
        elif key == "":
            parts.append("%")
        else:
            part = quote(key, safe="", errors="surrogatepass")
            parts.append("%2E" + part[1:] if part.startswith(".") else part)
    return "/".join(parts)


def _write_atomically(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Write the archive to a temp file beside ``path``, fsync it, then rename it over ``path``.

    ``os.replace`` is atomic on POSIX and Windows: readers see the old file or the new one, never
    a mix. The temp file is removed on any failure (even KeyboardInterrupt).
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"tinynet.save: the folder {folder!r} does not exist (saving to {path!r}); create it "
            "first"
        )
    mode = _file_mode(path)
    fd, temp_path = tempfile.mkstemp(
        dir=folder, prefix=f".{os.path.basename(path)[:100]}.", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "wb") as file:
            _write_npz(file, arrays)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp_path, mode)  # mkstemp makes 0o600 files; give what open() would have
        os.replace(temp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_path)
        raise
    _fsync_folder(folder)


def _write_npz(file: IO[bytes], arrays: dict[str, np.ndarray]) -> None:
    """The ``.npz`` layout of ``np.savez``: one uncompressed ``<name>.npy`` member per array.

    (``np.savez(file, **arrays)`` itself would choke on entries named ``file`` or
    ``allow_pickle``, which are its own parameters.)
    """
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.comment = ZIP_COMMENT
        for name, array in arrays.items():
            _write_entry(zf, name, array)


def _write_entry(zf: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    with zf.open(name + ".npy", mode="w", force_zip64=True) as member:
        np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def _file_mode(path: str) -> int:
    """Permission bits for the new file: the old file's, else the usual 0o666 minus umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); folders cannot be opened on Windows."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---- loading --------------------------------------------------------------------------------


def load(path: PathLike) -> Any:
    """Read a file written by ``tn.save``; returns the saved structure with numpy arrays.

    Arrays are fresh, writable copies (never memory-mapped). A plain ``.npz`` written by
    ``np.savez`` (no tinynet structure entry) loads as a flat dict ``{name: array}``, like
    ``dict(np.load(path))``. Raises ``FileNotFoundError`` for a missing file and
    ``FileFormatError`` (a ValueError) naming the file when it is truncated, corrupt, not an
    ``.npz``, or holds an object array -- which is refused, never unpickled.
    """
    path = _as_path(path, "load")
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError as e:
        raise FileNotFoundError(e.errno, "tinynet.load: no such file", path) from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError,
            NotImplementedError) as e:  # NotImplementedError: an unknown zip feature/version
        raise FileFormatError(
            f"tinynet.load: {path!r} is not a readable .npz file ({e}); it may be truncated, "
            "corrupt, or written by something other than tn.save / np.savez"
        ) from e
    with zf:
        written_by_tinynet = zf.comment == ZIP_COMMENT
        arrays = _read_entries(zf, path)
    if STRUCTURE_ENTRY not in arrays:
        if written_by_tinynet:  # the zip directory itself is damaged: no checksum covers it
            raise FileFormatError(
                f"tinynet.load: {path!r} was written by tn.save but its {STRUCTURE_ENTRY!r} "
                "entry is missing; the file is corrupt"
            )
        return arrays
    if not written_by_tinynet:  # e.g. the last bytes (the comment) were cut off
        raise FileFormatError(
            f"tinynet.load: {path!r} has a {STRUCTURE_ENTRY!r} entry but lacks the zip comment "
            f"{ZIP_COMMENT!r} tn.save writes at the very end; the file is truncated or corrupt"
        )
    manifest = _read_manifest(arrays.pop(STRUCTURE_ENTRY), path)
    used: set[str] = set()
    try:
        result = _rebuild(manifest["root"], arrays, used, path)
    except RecursionError:
        raise FileFormatError(
            f"tinynet.load: {path!r} has a structure nested too deeply to rebuild"
        ) from None
    unused = sorted(set(arrays) - used)
    if unused:
        raise FileFormatError(
            f"tinynet.load: {path!r} holds entries its structure does not describe: "
            f"{unused[:5]}; the file is corrupt or was edited by hand"
        )
    return result


def _read_entries(zf: zipfile.ZipFile, path: str) -> dict[str, np.ndarray]:
    """Every ``.npy`` member as an array, read with ``allow_pickle=False``."""
    arrays: dict[str, np.ndarray] = {}
    for info in zf.infolist():
        if not info.filename.endswith(".npy"):
            raise FileFormatError(
                f"tinynet.load: {path!r} is a zip file but not an .npz: member "
                f"{info.filename!r} is not a .npy array"
            )
        name = info.filename[: -len(".npy")]
        if name in arrays:
            raise FileFormatError(f"tinynet.load: {path!r} holds the entry {name!r} twice")
        _check_declared_size(zf, info, name, path)
        try:
            with zf.open(info) as member:
                arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
        except ValueError as e:
            # numpy refuses object arrays here, before reading any pickle bytes
            raise FileFormatError(
                f"tinynet.load: refusing entry {name!r} of {path!r}: {e}. tinynet never "
                "unpickles (unpickling can run arbitrary code); files from tn.save hold only "
                "numeric arrays"
            ) from e
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error, NotImplementedError,
                RuntimeError) as e:  # RuntimeError: the zip claims the member is encrypted
            raise FileFormatError(
                f"tinynet.load: entry {name!r} of {path!r} is corrupt or truncated ({e})"
            ) from e
    return arrays


def _check_declared_size(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str,
                         path: str) -> None:
    """Refuse an entry whose header declares more (or less) data than the entry holds, before
    numpy allocates it: a 600-byte file claiming 10^11 floats would otherwise ask for 745 GiB.
    (Object arrays are left to ``read_array``, which refuses them.)"""
    try:
        with zf.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            else:  # 3.0 adds only UTF-8 field names of structured dtypes: never written here
                raise ValueError(f".npy format version {version} is not supported")
            offset = member.tell()
    except (ValueError, zipfile.BadZipFile, EOFError, OSError, zlib.error, NotImplementedError,
            RuntimeError) as e:
        raise FileFormatError(
            f"tinynet.load: entry {name!r} of {path!r} has a corrupt or unsupported .npy header "
            f"({e})"
        ) from e
    if dtype.hasobject:
        return
    declared = math.prod(shape) * dtype.itemsize
    stored = info.file_size - offset
    if declared != stored:
        raise FileFormatError(
            f"tinynet.load: entry {name!r} of {path!r} declares shape {shape} of {dtype} "
            f"({declared} bytes) but holds {stored} bytes of data; the file is corrupt"
        )


def _read_manifest(entry: np.ndarray, path: str) -> dict[str, Any]:
    try:
        if entry.dtype != np.uint8 or entry.ndim != 1:
            raise ValueError(f"expected a 1-d uint8 array, got {entry.dtype} {entry.shape}")
        manifest = json.loads(entry.tobytes().decode("utf-8"))
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise ValueError("not a tinynet structure description")
    except (ValueError, RecursionError) as e:  # JSON and Unicode errors are ValueErrors
        raise FileFormatError(
            f"tinynet.load: the {STRUCTURE_ENTRY!r} entry of {path!r} is unreadable ({e})"
        ) from e
    version = manifest.get("version")
    if version != FORMAT_VERSION:
        raise FileFormatError(
            f"tinynet.load: {path!r} uses tinynet file format version {version!r}, this tinynet "
            f"reads version {FORMAT_VERSION}; upgrade tinynet to load it"
        )
    if "root" not in manifest:
        raise FileFormatError(f"tinynet.load: the structure of {path!r} has no root")
    return manifest


def _rebuild(node: Any, arrays: dict[str, np.ndarray], used: set[str], path: str) -> Any:
    """The inverse of ``_describe``: a JSON node -> the saved value."""
    kind = node.get("kind") if isinstance(node, dict) else None
    if kind in ("array", "numpy_scalar"):
        name = node.get("entry")
        if name not in arrays:
            raise FileFormatError(
                f"tinynet.load: {path!r} is missing the array entry {name!r} its structure "
                "refers to; the file is corrupt"
            )
        used.add(name)
        return arrays[name] if kind == "array" else arrays[name][()]
    value_types = {"bool": bool, "int": int, "float": float, "str": str}
    if kind in value_types and type(node.get("value")) is value_types[kind]:
        return node["value"]
    if kind == "none":
        return None
    if kind == "dict" and isinstance(node.get("items"), list) and all(
        _is_key_value_pair(item) for item in node["items"]
    ):
        return {key: _rebuild(value, arrays, used, path) for key, value in node["items"]}
    if kind in ("list", "tuple") and isinstance(node.get("items"), list):
        values = [_rebuild(item, arrays, used, path) for item in node["items"]]
        return values if kind == "list" else tuple(values)
    raise FileFormatError(
        f"tinynet.load: {path!r} has a structure node tinynet does not understand: "
        f"{str(node)[:200]}"
    )


def _is_key_value_pair(item: Any) -> bool:
    """A dict item in the structure is ``[key, node]`` with a str or int (not bool) key."""
    return isinstance(item, list) and len(item) == 2 and type(item[0]) in (str, int)
