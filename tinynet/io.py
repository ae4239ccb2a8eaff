"""Saving and loading state dicts: ``tn.save(obj, path)`` and ``tn.load(path)``.

    tn.save(model.state_dict(), "model.npz")
    model.load_state_dict(tn.load("model.npz"))

What can be saved: nested dicts (str or int keys), lists and tuples holding numpy arrays,
Tensors, numpy scalars, Python ints/floats/bools/strings and None -- what ``state_dict()`` of a
model or an optimizer returns. Loading gives back the same structure, with one change:
dict/list/tuple subclasses (``OrderedDict``, namedtuples) come back as plain dicts/lists/tuples,
in the same order. Tensors come back as Tensors (so a model's ``state_dict()`` loads back as
Tensors, as ``torch.load`` gives), numpy arrays as numpy arrays. Both keep their exact dtype
and shape (0-d included), numpy scalars stay numpy scalars of their dtype, int keys stay ints,
tuples stay tuples.

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
so a hostile file cannot run code. Nor can it exhaust memory by surprise: a header's declared
size must match the bytes stored, and compressed entries (``np.savez_compressed``; ``tn.save``
never compresses) may inflate to at most ``max_inflated_bytes`` (see ``load``). Structures nest
at most ``MAX_DEPTH`` (100) containers deep, in both directions: ``save`` refuses deeper ones
with the same limit ``load`` applies, instead of a RecursionError.

Saving writes a temporary file in the same folder, flushes and fsyncs it, then renames it over
``path`` in one step: a crash or an error mid-write leaves the previous file untouched, never
half a file. ``path`` is used exactly as given (no ``.npz`` is appended, unlike ``np.savez``).

The signatures are PyTorch's, ``tn.save(obj, f)`` and ``tn.load(f, map_location=None,
pickle_module=None, *, weights_only=None, mmap=None)``, so ported scripts run unchanged: ``f``
is a path or a binary file object (``io.BytesIO``; written in place, so not atomic),
``map_location`` may only say "the CPU" (tinynet has no other device), and ``weights_only``
(``True``, ``False`` or ``None``) changes nothing, because tinynet never unpickles: every load is
as safe as ``torch.load(weights_only=True)``.
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
from typing import IO, Any, NoReturn
from urllib.parse import quote

import numpy as np

from tinynet.errors import DTypeError, FileFormatError, ValueRangeError
from tinynet.tensor import Tensor

STRUCTURE_ENTRY = "tinynet:structure"  # ':' is escaped in keys, so no array entry can clash
ROOT_ENTRY = "[root]"
FORMAT_NAME = "tinynet"
FORMAT_VERSION = 1
ZIP_COMMENT = b"tinynet"  # marks our files, so a damaged one never passes for a plain .npz
MAX_DEPTH = 100  # containers inside containers; a state dict is 2-4 deep
INFLATE_FLOOR = 64 * 2**20  # compressed entries may always inflate to 64 MiB ...
INFLATE_RATIO = 100  # ... or to 100 times the file's size, whichever is more

PathLike = str | os.PathLike
FileLike = PathLike | IO[bytes]

__all__ = ["load", "save"]


# ---- saving ---------------------------------------------------------------------------------


def save(obj: Any, f: FileLike) -> None:
    """Write ``obj`` (a state dict, see the module docstring) to ``f`` as an ``.npz`` file.

    ``f`` is a path, written atomically (temp file + fsync + rename), or a binary file object,
    written from its current position. Anything that would need pickle (object arrays,
    arbitrary Python objects, keys other than str/int) raises ``DTypeError``, and nesting
    deeper than ``MAX_DEPTH`` containers ``ValueRangeError``, naming where it sits in ``obj``,
    before any file is touched.
    """
    path = None if _is_file_object(f) else _as_path(f, "save")
    arrays: dict[str, np.ndarray] = {}
    root = _describe(obj, (), arrays, set())
    manifest = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "root": root}
    # ASCII JSON (non-ASCII as \u escapes) also carries strings that UTF-8 cannot (lone
    # surrogates); allow_nan keeps nan/inf, which Python's json reads back.
    text = json.dumps(manifest, ensure_ascii=True, allow_nan=True)
    arrays[STRUCTURE_ENTRY] = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    if path is None:
        _write_npz(f, arrays)  # type: ignore[arg-type]
    else:
        _write_atomically(path, arrays)


def _is_file_object(f: Any) -> bool:
    return hasattr(f, "write") or hasattr(f, "read")


def _as_path(path: Any, function: str) -> str:
    if not isinstance(path, str | bytes | os.PathLike):
        raise DTypeError(
            f"tinynet.{function}: f must be a path (str or os.PathLike) or a binary file object, "
            f"got {type(path).__name__}"
        )
    return os.fsdecode(os.fspath(path))


def _describe(
    obj: Any, where: tuple[Any, ...], arrays: dict[str, np.ndarray], open_ids: set[int]
) -> dict[str, Any]:
    """The JSON node for ``obj``; its arrays go into ``arrays`` under their entry names.

    ``where`` is the path of keys from the root (for entry names and error messages);
    ``open_ids`` holds the containers being described, to refuse a structure containing itself.
    """
    if isinstance(obj, Tensor | np.ndarray):
        array = obj.data if isinstance(obj, Tensor) else obj
        _check_storable(array.dtype, where)
        name = _entry_name(where)
        arrays[name] = array
        return {"kind": "tensor" if isinstance(obj, Tensor) else "array", "entry": name}
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
            raise ValueRangeError(
                f"tinynet.save: {_where(where)} contains itself; cannot save a cycle"
            )
        if len(where) >= MAX_DEPTH:
            raise ValueRangeError(
                f"tinynet.save: {_where(where)} is a container nested more than {MAX_DEPTH} "
                f"deep; tn.load refuses structures deeper than {MAX_DEPTH} containers (a state "
                "dict is a few levels deep), so flatten it first"
            )
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
    if callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "parameters", None)):
        # torch.save(model) pickles the whole module; tinynet saves only values, never code
        raise DTypeError(
            f"tinynet.save: {_where(where)} is a whole module ({type(obj).__name__}), which only "
            "pickle could store (its code with its values); tinynet never pickles. Save "
            "model.state_dict() and load it with model.load_state_dict(tn.load(path)) into a "
            "model built by your code"
        )
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
    """``('state', 0, 'buf')`` -> ``obj['state'][0]['buf']``, for error messages (the middle of
    a very deep path elided)."""
    keys = [f"[{key!r}]" for key in where]
    if len(keys) > 8:
        keys = [*keys[:3], f"...({len(keys) - 6} more)...", *keys[-3:]]
    return "obj" + "".join(keys)


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


def load(
    f: FileLike,
    map_location: Any = None,
    pickle_module: Any = None,
    *,
    weights_only: bool | None = None,
    mmap: bool | None = None,
    max_inflated_bytes: int | None = None,
    **pickle_load_args: Any,
) -> Any:
    """Read a file written by ``tn.save``; returns the saved structure with numpy arrays.

    ``f`` is a path or a binary file object. Arrays are fresh, writable copies (never
    memory-mapped). A plain ``.npz`` written by ``np.savez`` (no tinynet structure entry) loads
    as a flat dict ``{name: array}``, like ``dict(np.load(path))``. Raises
    ``FileNotFoundError`` for a missing file and ``FileFormatError`` (a ValueError) naming the
    file when it is truncated, corrupt, not an ``.npz``, holds an object array (refused, never
    unpickled) or a structure tinynet does not understand (naming where in it).

    PyTorch's arguments, for ported scripts: ``map_location`` may be None, ``"cpu"``, a
    device whose type is ``"cpu"``, a function (``lambda storage, loc: storage``, not called)
    or a dict whose targets are the CPU (arrays load into main memory; there is no other
    device);
    ``weights_only`` may be None, True or False and changes nothing, since nothing is ever
    unpickled; ``mmap`` is accepted and ignored (arrays are always read into memory);
    ``pickle_module`` and pickle's options are refused.

    ``max_inflated_bytes`` bounds what compressed entries (written by ``np.savez_compressed``,
    never by ``tn.save``) may inflate to, in total: by default ``max(64 MiB, 100 x the bytes
    stored in the file)``, so a 1.5 MiB file cannot ask for 1.5 GiB; raise it for a
    trusted file. Uncompressed entries need no limit: their declared size must match the bytes
    the file really holds.
    """
    _check_torch_arguments(map_location, pickle_module, weights_only, mmap, pickle_load_args)
    if max_inflated_bytes is not None and (
        isinstance(max_inflated_bytes, bool) or not isinstance(max_inflated_bytes, int)
        or max_inflated_bytes < 0
    ):
        raise ValueRangeError(
            f"tinynet.load: max_inflated_bytes must be a non-negative int or None, got "
            f"{max_inflated_bytes!r}"
        )
    if _is_file_object(f):
        source: Any = f
        path = f"<{type(f).__name__}>"
    else:
        source = path = _as_path(f, "load")
    try:
        zf = zipfile.ZipFile(source)
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
        _check_inflation(zf, path, max_inflated_bytes)
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
        result = _rebuild(manifest["root"], arrays, used, path, ())
    except RecursionError:  # only from a caller already deep in recursion: MAX_DEPTH is small
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


def _check_torch_arguments(map_location: Any, pickle_module: Any, weights_only: Any,
                           mmap: Any, pickle_load_args: dict[str, Any]) -> None:
    """Accept ``torch.load``'s arguments where they make sense for tinynet (see ``load``)."""
    if map_location is not None:
        if isinstance(map_location, str):
            device = map_location
        elif isinstance(getattr(map_location, "type", None), str):  # torch.device("cpu")
            device = map_location.type
        elif callable(map_location):  # lambda storage, loc: storage: everything is on the CPU
            device = "cpu"
        elif isinstance(map_location, dict):  # {"cuda:0": "cpu"}: where things go must be CPU
            targets = [str(getattr(v, "type", v)) for v in map_location.values()]
            device = next((t for t in targets if t.split(":")[0] != "cpu"), "cpu")
        else:
            raise DTypeError(
                f"tinynet.load: map_location must be None, 'cpu', a CPU device, a function or "
                f"a dict mapping to the CPU, got "
                f"{type(map_location).__name__}; tinynet files hold numpy arrays that always "
                "load into main memory, so there is nothing to remap: drop map_location"
            )
        if device.split(":")[0] != "cpu":
            raise ValueRangeError(
                f"tinynet.load: map_location={map_location!r}: tinynet runs on the CPU only; "
                "use map_location='cpu' or leave it None"
            )
    if pickle_module is not None or pickle_load_args:
        given = ["pickle_module"] * (pickle_module is not None) + sorted(pickle_load_args)
        raise DTypeError(
            f"tinynet.load: {', '.join(given)}: options of unpickling, which tinynet never does "
            "(its files hold numpy arrays and JSON); drop them"
        )
    for name, value in (("weights_only", weights_only), ("mmap", mmap)):
        if value is not None and not isinstance(value, bool):
            raise DTypeError(
                f"tinynet.load: {name} must be True, False or None, got {type(value).__name__}"
            )


def _check_inflation(zf: zipfile.ZipFile, path: str, limit: int | None) -> None:
    """Refuse compressed entries that would inflate past ``limit`` bytes in total (the default
    is ``max(INFLATE_FLOOR, INFLATE_RATIO * stored bytes)``), before inflating any.

    A member's declared size bounds what reading it can produce (zipfile stops there and
    checks the CRC), so checking the declared sizes is enough.
    """
    infos = zf.infolist()
    stored = sum(info.compress_size for info in infos)
    inflated = sum(info.file_size for info in infos if info.compress_type != zipfile.ZIP_STORED)
    if limit is None:
        limit = max(INFLATE_FLOOR, INFLATE_RATIO * stored)
    if inflated > limit:
        raise FileFormatError(
            f"tinynet.load: {path!r} holds compressed entries that inflate to {inflated} bytes "
            f"from {stored} stored ({inflated / max(stored, 1):.0f} times more), over the limit "
            f"of {limit} bytes that guards against zip bombs; if you trust this file, pass "
            f"max_inflated_bytes={inflated}"
        )


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


_VALUE_TYPES = {"bool": bool, "int": int, "float": float, "str": str}


def _rebuild(node: Any, arrays: dict[str, np.ndarray], used: set[str], path: str,
             where: tuple[Any, ...]) -> Any:
    """The inverse of ``_describe``: a JSON node -> the saved value.

    Every field is type-checked, so a crafted file gets a ``FileFormatError`` naming the node
    (``obj['state'][0]``) and the field, never a ``TypeError`` from deep inside; ``where`` is
    the node's path from the root, and containers nest at most ``MAX_DEPTH`` deep.
    """
    if not isinstance(node, dict):
        _not_understood(path, where, node, "a node must be a JSON object with a 'kind'")
    kind = node.get("kind")
    if not isinstance(kind, str):
        _not_understood(path, where, node, "its 'kind' must be a string")
    if kind in ("array", "tensor", "numpy_scalar"):
        name = node.get("entry")
        if not isinstance(name, str):
            _not_understood(path, where, node, "its 'entry' must be a string naming an array")
        if name not in arrays:
            raise FileFormatError(
                f"tinynet.load: {path!r} is missing the array entry {name!r} its structure "
                f"refers to at {_where(where)}; the file is corrupt"
            )
        used.add(name)
        if kind == "array":
            return arrays[name]
        if kind == "tensor":
            return Tensor._make(arrays[name])
        if arrays[name].ndim != 0:
            _not_understood(path, where, node, f"a numpy_scalar's entry {name!r} must be 0-d, "
                                               f"it has shape {arrays[name].shape}")
        return arrays[name][()]
    if kind in _VALUE_TYPES:
        if type(node.get("value")) is not _VALUE_TYPES[kind]:
            _not_understood(path, where, node, f"a {kind} node's 'value' must be a JSON {kind}")
        return node["value"]
    if kind == "none":
        return None
    if kind not in ("dict", "list", "tuple"):
        _not_understood(path, where, node, f"unknown kind {kind!r}")
    if len(where) >= MAX_DEPTH:
        raise FileFormatError(
            f"tinynet.load: {path!r} has a structure nested more than {MAX_DEPTH} containers "
            f"deep (at {_where(where)}); tn.save never writes one"
        )
    items = node.get("items")
    if not isinstance(items, list):
        _not_understood(path, where, node, f"a {kind} node's 'items' must be a JSON list")
    if kind == "dict":
        result = {}
        for item in items:
            if not _is_key_value_pair(item):
                _not_understood(path, where, node, "each dict item must be [key, node] with a "
                                                   f"str or int key, got {str(item)[:80]}")
            key, value = item
            result[key] = _rebuild(value, arrays, used, path, (*where, key))
        return result
    values = [_rebuild(item, arrays, used, path, (*where, i)) for i, item in enumerate(items)]
    return values if kind == "list" else tuple(values)


def _not_understood(path: str, where: tuple[Any, ...], node: Any, problem: str) -> NoReturn:
    raise FileFormatError(
        f"tinynet.load: {path!r} has a structure node tinynet does not understand at "
        f"{_where(where)}: {problem}; got {str(node)[:200]}"
    )


def _is_key_value_pair(item: Any) -> bool:
    """A dict item in the structure is ``[key, node]`` with a str or int (not bool) key."""
    return isinstance(item, list) and len(item) == 2 and type(item[0]) in (str, int)
