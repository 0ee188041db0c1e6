"""Read TensorFlow tensor bundles (``<prefix>.index`` + ``<prefix>.data-NNNNN-of-MMMMM``) without TensorFlow.

The ``.index`` file is a LevelDB-format sorted table: data blocks of prefix-compressed key/value entries, a
metaindex block, an index block and a 48-byte footer; every block carries a type byte and a masked CRC-32C. Key
``""`` holds a ``BundleHeaderProto``; every other key maps a tensor name to a ``BundleEntryProto`` that locates
its bytes in one of the data shards. The protos are decoded by hand.

On top of the raw reader, :func:`read_bundle_variables` understands TF2 object-based checkpoints (keys
``<object path>/.ATTRIBUTES/VARIABLE_VALUE`` plus the ``_CHECKPOINTABLE_OBJECT_GRAPH`` entry, whose
``TrackableObjectGraph`` gives each variable's Keras name), skips optimizer state and counters, and accepts
name-based (TF1 ``Saver``) bundles keyed by variable names.

All functions raise only :class:`~audioclf.errors.TFCheckpointError` on bad input; no allocation is sized by a
length that was not first checked against the size of the file it points into.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audioclf.checkpoints.tf._lazy import LazyArray
from audioclf.checkpoints.tf._wire import (
    as_int64,
    crc32c,
    expect_bytes,
    expect_int,
    expect_str,
    iter_fields,
    read_varint,
    snappy_decompress,
    unmask_crc,
)
from audioclf.errors import TFCheckpointError
from audioclf.limits import LIMITS

__all__ = [
    "BundleEntry",
    "BundleVariables",
    "TensorBundle",
    "read_bundle",
    "read_bundle_variables",
    "resolve_bundle_prefix",
    "parse_object_graph",
    "ObjectGraphNode",
]

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
ATTRIBUTES_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
OPTIMIZER_SLOT = "/.OPTIMIZER_SLOT/"

# An index file describes tensors, it is never large: anything beyond the limit ``tf_index_bytes``
# (:mod:`audioclf.limits`) is refused, and no block decompresses to more.
# Prefix compression lets a few bytes stand for a long key; real tables expand keys by a small factor only.
MAX_KEY_EXPANSION = 16

# DataType enum value -> (name, numpy dtype); bfloat16 is handled separately (stored as uint16).
_DTYPES: dict[int, tuple[str, str]] = {
    1: ("float32", "<f4"),
    2: ("float64", "<f8"),
    3: ("int32", "<i4"),
    4: ("uint8", "u1"),
    5: ("int16", "<i2"),
    6: ("int8", "i1"),
    8: ("complex64", "<c8"),
    9: ("int64", "<i8"),
    10: ("bool", "?"),
    14: ("bfloat16", "<u2"),
    17: ("uint16", "<u2"),
    18: ("complex128", "<c16"),
    19: ("float16", "<f2"),
    22: ("uint32", "<u4"),
    23: ("uint64", "<u8"),
}
DT_STRING = 7
_UNSUPPORTED_DTYPES = {
    0: "invalid",
    11: "qint8",
    12: "quint8",
    13: "qint32",
    15: "qint16",
    16: "quint16",
    20: "resource",
    21: "variant",
    24: "float8_e5m2",
    25: "float8_e4m3fn",
}

_DATA_NAME_RE = re.compile(r"^(?P<prefix>.*)\.data-(?P<shard>\d{5})-of-(?P<num>\d{5})$")


# ---------------------------------------------------------------------------------------------------------------
# the sorted table (.index)


def _read_file(path: Path, limit: int, what: str) -> bytes:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise TFCheckpointError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if size > limit:
        raise TFCheckpointError(f"{what} {path} is implausibly large ({size} bytes, more than the limit {limit})")
    try:
        with path.open("rb") as fh:
            return fh.read(size)
    except OSError as exc:
        raise TFCheckpointError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _block_handle(buf: bytes, pos: int, what: str) -> tuple[int, int, int]:
    offset, pos = read_varint(buf, pos, what=f"{what} offset")
    size, pos = read_varint(buf, pos, what=f"{what} size")
    return offset, size, pos


def _read_block(data: bytes, offset: int, size: int, what: str, name: str) -> bytes:
    end = len(data) - FOOTER_SIZE
    if offset > end or size > end - offset or offset + size + BLOCK_TRAILER_SIZE > end:
        raise TFCheckpointError(f"{name}: {what} block lies outside the file (truncated or corrupt index)")
    contents = data[offset : offset + size]
    ctype = data[offset + size]
    stored = int.from_bytes(data[offset + size + 1 : offset + size + 5], "little")
    actual = crc32c(data[offset : offset + size + 1])
    if unmask_crc(stored) != actual:
        raise TFCheckpointError(f"{name}: CRC mismatch in a {what} block (corrupt index file)")
    if ctype == 0:
        return contents
    if ctype == 1:
        return snappy_decompress(contents, limit=LIMITS["tf_index_bytes"])
    raise TFCheckpointError(f"{name}: unknown block compression type {ctype}")


def _block_entries(block: bytes, what: str, name: str) -> list[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise TFCheckpointError(f"{name}: {what} block too short")
    num_restarts = int.from_bytes(block[-4:], "little")
    if num_restarts > (len(block) - 4) // 4:
        raise TFCheckpointError(f"{name}: {what} block has an impossible restart count")
    limit = len(block) - 4 * (num_restarts + 1)
    entries: list[tuple[bytes, bytes]] = []
    pos = 0
    key = b""
    key_budget = MAX_KEY_EXPANSION * len(block) + 65536
    while pos < limit:
        shared, pos = read_varint(block, pos, max_bytes=5, what=f"{what} entry")
        non_shared, pos = read_varint(block, pos, max_bytes=5, what=f"{what} entry")
        value_len, pos = read_varint(block, pos, max_bytes=5, what=f"{what} entry")
        if shared > len(key):
            raise TFCheckpointError(f"{name}: corrupt {what} block (shared prefix longer than previous key)")
        if non_shared > limit - pos or value_len > limit - pos - non_shared:
            raise TFCheckpointError(f"{name}: corrupt {what} block (entry runs past the block)")
        key_budget -= shared + non_shared
        if key_budget < 0:
            raise TFCheckpointError(f"{name}: corrupt {what} block (implausibly long keys)")
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        entries.append((key, block[pos : pos + value_len]))
        pos += value_len
    return entries


def _read_table(data: bytes, name: str) -> list[tuple[bytes, bytes]]:
    if len(data) < FOOTER_SIZE:
        raise TFCheckpointError(f"{name}: too short to be a TensorFlow checkpoint index ({len(data)} bytes)")
    footer = data[-FOOTER_SIZE:]
    magic = int.from_bytes(footer[40:48], "little")
    if magic != TABLE_MAGIC:
        raise TFCheckpointError(f"{name}: not a TensorFlow checkpoint index (bad magic number)")
    _meta_off, _meta_size, pos = _block_handle(footer, 0, "metaindex handle")
    index_off, index_size, pos = _block_handle(footer, pos, "index handle")
    if pos > 40:
        raise TFCheckpointError(f"{name}: corrupt footer")
    index_block = _read_block(data, index_off, index_size, "index", name)
    entries: list[tuple[bytes, bytes]] = []
    last_key: bytes | None = None
    prev_end = 0
    for _sep, handle in _block_entries(index_block, "index", name):
        off, size, used = _block_handle(handle, 0, "block handle")
        if used != len(handle):
            raise TFCheckpointError(f"{name}: corrupt index block (bad block handle)")
        # data blocks are written in key order, one after the other: anything else is corruption
        if off < prev_end:
            raise TFCheckpointError(f"{name}: corrupt index block (data blocks overlap or are out of order)")
        prev_end = off + size + BLOCK_TRAILER_SIZE
        block = _read_block(data, off, size, "data", name)
        for key, value in _block_entries(block, "data", name):
            if last_key is not None and key <= last_key:
                raise TFCheckpointError(f"{name}: corrupt index (keys out of order)")
            last_key = key
            entries.append((key, value))
    if not entries or entries[0][0] != b"":
        raise TFCheckpointError(f"{name}: index has no bundle header entry")
    return entries


# ---------------------------------------------------------------------------------------------------------------
# BundleHeaderProto / BundleEntryProto


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor lives. ``dtype`` is the numpy name (``"float32"``, ``"bfloat16"``, ``"string"``...)."""

    key: str
    dtype: str
    dtype_enum: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None

    @property
    def num_elements(self) -> int:
        return math.prod(self.shape)


def _parse_header(value: bytes, name: str) -> int:
    num_shards = 0
    endianness = 0
    for fnum, wire, val in iter_fields(value, "bundle header"):
        if fnum == 1:
            num_shards = as_int64(expect_int(wire, val, "bundle header num_shards"))
        elif fnum == 2:
            endianness = expect_int(wire, val, "bundle header endianness")
        elif fnum == 3:
            expect_bytes(wire, val, "bundle header version")
    if endianness != 0:
        raise TFCheckpointError(f"{name}: big-endian checkpoints are not supported")
    if num_shards < 1 or num_shards > 99999:
        raise TFCheckpointError(f"{name}: invalid shard count {num_shards} in the bundle header")
    return num_shards


def _parse_shape(raw: bytes, key: str) -> tuple[int, ...]:
    dims: list[int] = []
    for fnum, wire, val in iter_fields(raw, f"shape of {key!r}"):
        if fnum == 2:
            dim = expect_bytes(wire, val, f"shape of {key!r}")
            size = 0
            for dnum, dwire, dval in iter_fields(dim, f"shape of {key!r}"):
                if dnum == 1:
                    size = as_int64(expect_int(dwire, dval, f"shape of {key!r}"))
            if size < 0:
                raise TFCheckpointError(f"tensor {key!r} has an unknown or negative dimension")
            dims.append(size)
        elif fnum == 3:
            if expect_int(wire, val, f"shape of {key!r}"):
                raise TFCheckpointError(f"tensor {key!r} has unknown rank")
    return tuple(dims)


def _parse_entry(key: str, value: bytes) -> BundleEntry:
    dtype_enum = 0
    shape: tuple[int, ...] = ()
    shard_id = offset = size = 0
    crc: int | None = None
    what = f"entry for {key!r}"
    for fnum, wire, val in iter_fields(value, what):
        if fnum == 1:
            dtype_enum = expect_int(wire, val, what)
        elif fnum == 2:
            shape = _parse_shape(expect_bytes(wire, val, what), key)
        elif fnum == 3:
            shard_id = as_int64(expect_int(wire, val, what))
        elif fnum == 4:
            offset = as_int64(expect_int(wire, val, what))
        elif fnum == 5:
            size = as_int64(expect_int(wire, val, what))
        elif fnum == 6:
            if wire != 5 or not isinstance(val, int):
                raise TFCheckpointError(f"malformed {what}: crc32c is not a fixed32")
            crc = val
        elif fnum == 7:
            raise TFCheckpointError(f"tensor {key!r} is partitioned into slices; partitioned tensors are not supported")
    if shard_id < 0 or offset < 0 or size < 0:
        raise TFCheckpointError(f"malformed {what}: negative shard, offset or size")
    if dtype_enum == DT_STRING:
        dtype = "string"
    elif dtype_enum in _DTYPES:
        dtype = _DTYPES[dtype_enum][0]
    elif dtype_enum in _UNSUPPORTED_DTYPES:
        raise TFCheckpointError(f"tensor {key!r} has unsupported dtype {_UNSUPPORTED_DTYPES[dtype_enum]}")
    else:
        raise TFCheckpointError(f"tensor {key!r} has unknown dtype enum {dtype_enum}")
    entry = BundleEntry(key, dtype, dtype_enum, shape, shard_id, offset, size, crc)
    if dtype != "string":
        itemsize = np.dtype(_DTYPES[dtype_enum][1]).itemsize
        if entry.num_elements * itemsize != size:
            raise TFCheckpointError(
                f"tensor {key!r}: size {size} bytes does not match shape {list(shape)} of {dtype}"
            )
    return entry


# ---------------------------------------------------------------------------------------------------------------
# the bundle


def _decode_key(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TFCheckpointError(f"{name}: tensor name is not UTF-8") from None


class TensorBundle:
    """An opened tensor bundle. ``prefix`` is the path without ``.index``."""

    def __init__(self, prefix: str | os.PathLike[str], *, verify_crc: bool = True) -> None:
        self.prefix = str(prefix)
        self.verify_crc = verify_crc
        index_path = Path(self.prefix + ".index")
        name = index_path.name
        data = _read_file(index_path, LIMITS["tf_index_bytes"], "checkpoint index")
        table = _read_table(data, name)
        self.num_shards = _parse_header(table[0][1], name)
        self.entries: dict[str, BundleEntry] = {}
        for raw_key, value in table[1:]:
            key = _decode_key(raw_key, name)
            entry = _parse_entry(key, value)
            if entry.shard_id >= self.num_shards:
                raise TFCheckpointError(
                    f"tensor {key!r} refers to shard {entry.shard_id} but the bundle has {self.num_shards}"
                )
            self.entries[key] = entry
        self._shard_sizes: dict[int, int] = {}

    def shard_path(self, shard_id: int) -> Path:
        return Path(f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}")

    def _shard_size(self, shard_id: int) -> int:
        if shard_id not in self._shard_sizes:
            path = self.shard_path(shard_id)
            try:
                self._shard_sizes[shard_id] = path.stat().st_size
            except OSError:
                raise TFCheckpointError(f"missing checkpoint data file {path.name}") from None
        return self._shard_sizes[shard_id]

    def keys(self) -> list[str]:
        return list(self.entries)

    def check_layout(self) -> None:
        """Check that every tensor lies inside its data file and that no two tensors share bytes.

        Together these bound the total bytes any full read can produce by the size of the data files.
        """
        by_shard: dict[int, list[BundleEntry]] = {}
        for entry in self.entries.values():
            if entry.size:
                by_shard.setdefault(entry.shard_id, []).append(entry)
        for shard_id, entries in sorted(by_shard.items()):
            shard_size = self._shard_size(shard_id)
            path = self.shard_path(shard_id)
            entries.sort(key=lambda e: e.offset)
            end = 0
            for entry in entries:
                if entry.offset > shard_size or entry.size > shard_size - entry.offset:
                    raise TFCheckpointError(
                        f"tensor {entry.key!r} lies past the end of {path.name} (truncated data file?)"
                    )
                if entry.offset < end:
                    raise TFCheckpointError(f"tensors overlap in {path.name} (corrupt index)")
                end = entry.offset + entry.size

    def _read_bytes(self, entry: BundleEntry) -> bytes:
        shard_size = self._shard_size(entry.shard_id)
        path = self.shard_path(entry.shard_id)
        if entry.offset > shard_size or entry.size > shard_size - entry.offset:
            raise TFCheckpointError(
                f"tensor {entry.key!r} lies past the end of {path.name} (truncated data file?)"
            )
        try:
            with path.open("rb") as fh:
                fh.seek(entry.offset)
                raw = fh.read(entry.size)
        except OSError as exc:
            raise TFCheckpointError(f"cannot read {path.name}: {exc.strerror or exc}") from None
        if len(raw) != entry.size:
            raise TFCheckpointError(f"tensor {entry.key!r}: short read from {path.name}")
        return raw

    def lazy(self, key: str) -> LazyArray:
        """The tensor ``key`` as a :class:`~._lazy.LazyArray` (read by :meth:`read` when used)."""
        entry = self.entries[key]
        dtype = np.float32 if entry.dtype == "bfloat16" else (object if entry.dtype == "string" else
                                                              np.dtype(_DTYPES[entry.dtype_enum][1]).newbyteorder("="))
        return LazyArray(entry.shape, dtype, lambda: self.read(key))

    def read(self, key: str) -> np.ndarray:
        """The tensor ``key`` as a numpy array (bfloat16 widened to float32, DT_STRING as an object array)."""
        entry = self.entries.get(key)
        if entry is None:
            raise TFCheckpointError(f"no tensor named {key!r} in {Path(self.prefix).name}")
        raw = self._read_bytes(entry)
        if entry.dtype == "string":
            return self._decode_strings(entry, raw)
        if self.verify_crc and entry.crc32c is not None and unmask_crc(entry.crc32c) != crc32c(raw):
            raise TFCheckpointError(f"CRC mismatch for tensor {key!r} (corrupt data file)")
        arr = np.frombuffer(raw, dtype=np.dtype(_DTYPES[entry.dtype_enum][1]))
        if entry.dtype == "bfloat16":
            arr = (arr.astype(np.uint32) << np.uint32(16)).view(np.float32)
        elif entry.dtype == "bool":
            arr = arr.view(np.uint8).astype(bool)
        else:
            arr = arr.astype(arr.dtype.newbyteorder("="), copy=True)
        return arr.reshape(entry.shape)

    def _decode_strings(self, entry: BundleEntry, raw: bytes) -> np.ndarray:
        n = entry.num_elements
        # each element needs at least one length byte, plus the 4-byte length checksum
        if n > len(raw):
            raise TFCheckpointError(f"string tensor {entry.key!r} is truncated")
        pos = 0
        lengths: list[int] = []
        for _ in range(n):
            length, pos = read_varint(raw, pos, what=f"string length in {entry.key!r}")
            lengths.append(length)
        if pos + 4 > len(raw):
            raise TFCheckpointError(f"string tensor {entry.key!r} is truncated")
        len_crc_stored = int.from_bytes(raw[pos : pos + 4], "little")
        header = b"".join(
            x.to_bytes(4, "little") if x <= 0xFFFFFFFF else x.to_bytes(8, "little") for x in lengths
        )
        pos += 4
        if sum(lengths) != len(raw) - pos:
            raise TFCheckpointError(f"string tensor {entry.key!r}: lengths do not match its size")
        if self.verify_crc:
            if unmask_crc(len_crc_stored) != crc32c(header):
                raise TFCheckpointError(f"CRC mismatch for the lengths of string tensor {entry.key!r}")
            if entry.crc32c is not None:
                full = crc32c(raw[pos:], crc32c(raw[pos - 4 : pos], crc32c(header)))
                if unmask_crc(entry.crc32c) != full:
                    raise TFCheckpointError(f"CRC mismatch for string tensor {entry.key!r}")
        out = np.empty(n, dtype=object)
        for i, length in enumerate(lengths):
            out[i] = raw[pos : pos + length]
            pos += length
        return out.reshape(entry.shape)


# ---------------------------------------------------------------------------------------------------------------
# resolving the SOURCE forms


def _parse_checkpoint_state(path: Path) -> str:
    text = _read_file(path, 1 << 20, "checkpoint state file").decode("utf-8", "replace")
    match = re.search(r'^\s*model_checkpoint_path\s*:\s*"((?:[^"\\]|\\.)*)"', text, re.MULTILINE)
    if not match:
        raise TFCheckpointError(f"{path} does not name a checkpoint (no model_checkpoint_path)")
    value = match.group(1).encode("latin-1", "backslashreplace").decode("unicode_escape", "replace")
    return value


def resolve_bundle_prefix(source: str | os.PathLike[str]) -> str:
    """Turn a SOURCE into a bundle prefix.

    Accepts ``<prefix>.index``, a ``<prefix>.data-XXXXX-of-YYYYY`` file, a bare prefix, or a directory holding a
    ``checkpoint`` state file (the prefix it names; if that prefix is gone and the directory holds exactly one
    ``*.index``, that one).
    """
    path = Path(source)
    text = str(source)
    if path.is_dir():
        state = path / "checkpoint"
        indexes = sorted(path.glob("*.index"))
        if state.is_file():
            named = _parse_checkpoint_state(state)
            prefix = Path(named) if os.path.isabs(named) else path / named
            if Path(str(prefix) + ".index").is_file():
                return str(prefix)
            # the state file may name an absolute path from another machine: try its base name here
            local = path / Path(named).name
            if Path(str(local) + ".index").is_file():
                return str(local)
            if len(indexes) == 1:
                return str(indexes[0])[: -len(".index")]
            raise TFCheckpointError(f"{state} names checkpoint {named!r}, but {Path(named).name}.index is not in {path}")
        if len(indexes) == 1:
            return str(indexes[0])[: -len(".index")]
        if not indexes:
            raise TFCheckpointError(f"no TensorFlow checkpoint (*.index or 'checkpoint' file) in {path}")
        raise TFCheckpointError(f"{path} holds several checkpoints and no 'checkpoint' file says which to use")
    if text.endswith(".index"):
        if not path.is_file():
            raise TFCheckpointError(f"checkpoint index {path} does not exist")
        return text[: -len(".index")]
    data_match = _DATA_NAME_RE.match(text)
    if data_match and path.is_file():
        return data_match.group("prefix")
    if Path(text + ".index").is_file():
        return text
    raise TFCheckpointError(f"no TensorFlow checkpoint at {source} (expected {path.name}.index)")


def read_bundle(
    source: str | os.PathLike[str], *, verify_crc: bool = True, include_strings: bool = True
) -> dict[str, np.ndarray]:
    """Every tensor of the bundle at ``source`` (prefix, ``.index`` path or directory), keyed as stored."""
    bundle = TensorBundle(resolve_bundle_prefix(source), verify_crc=verify_crc)
    bundle.check_layout()
    out: dict[str, np.ndarray] = {}
    for key, entry in bundle.entries.items():
        if entry.dtype == "string" and not include_strings:
            continue
        out[key] = bundle.read(key)
    return out


# ---------------------------------------------------------------------------------------------------------------
# TF2 object graph


@dataclass
class ObjectGraphNode:
    children: list[tuple[int, str]] = field(default_factory=list)  # (node_id, local_name)
    attributes: list[tuple[str, str, str]] = field(default_factory=list)  # (name, full_name, checkpoint_key)
    slot_variable_ids: list[int] = field(default_factory=list)


def parse_object_graph(raw: bytes) -> list[ObjectGraphNode]:
    """Decode a serialized ``TrackableObjectGraph`` (the fields needed to name variables)."""
    nodes: list[ObjectGraphNode] = []
    for fnum, wire, val in iter_fields(raw, "object graph"):
        if fnum != 1:
            continue
        node = ObjectGraphNode()
        for nnum, nwire, nval in iter_fields(expect_bytes(wire, val, "object graph node"), "object graph node"):
            if nnum == 1:
                node_id, local = 0, ""
                for rnum, rwire, rval in iter_fields(expect_bytes(nwire, nval, "object reference"), "object reference"):
                    if rnum == 1:
                        node_id = as_int64(expect_int(rwire, rval, "object reference"))
                    elif rnum == 2:
                        local = expect_str(rwire, rval, "object reference")
                node.children.append((node_id, local))
            elif nnum == 2:
                name = full_name = ckpt_key = ""
                for anum, awire, aval in iter_fields(expect_bytes(nwire, nval, "serialized tensor"), "serialized tensor"):
                    if anum == 1:
                        name = expect_str(awire, aval, "serialized tensor")
                    elif anum == 2:
                        full_name = expect_str(awire, aval, "serialized tensor")
                    elif anum == 3:
                        ckpt_key = expect_str(awire, aval, "serialized tensor")
                node.attributes.append((name, full_name, ckpt_key))
            elif nnum == 3:
                for snum, swire, sval in iter_fields(expect_bytes(nwire, nval, "slot variable"), "slot variable"):
                    if snum == 3:
                        node.slot_variable_ids.append(as_int64(expect_int(swire, sval, "slot variable")))
        nodes.append(node)
    if not nodes:
        raise TFCheckpointError("the checkpoint object graph is empty")
    for node in nodes:
        for child, _ in node.children:
            if not 0 <= child < len(nodes):
                raise TFCheckpointError("the checkpoint object graph refers to a node that does not exist")
    return nodes


_NON_MODEL_ROOT_CHILDREN = {"optimizer", "save_counter", "step", "global_step", "epoch", "iterations"}
_COUNTER_NAMES = {"save_counter", "global_step", "step", "iter", "iterations", "epoch", "_counter"}


def _unescape_component(name: str) -> str:
    # trackable_utils.escape_local_name: "." -> "..", "/" -> ".S"
    out = []
    i = 0
    while i < len(name):
        if name[i] == "." and i + 1 < len(name) and name[i + 1] in ".S":
            out.append("." if name[i + 1] == "." else "/")
            i += 2
        else:
            out.append(name[i])
            i += 1
    return "".join(out)


def _split_object_key(key: str) -> list[str]:
    """``a/b..c/.ATTRIBUTES/VARIABLE_VALUE`` -> ``["a", "b.c"]`` (escaped components restored)."""
    path = key[: -len(ATTRIBUTES_SUFFIX)]
    return [_unescape_component(c) for c in path.split("/")] if path else []


@dataclass
class BundleVariables:
    """Model variables of a bundle. ``variables`` maps the best available name to the array: the Keras variable
    name (``<model scope>/wav2vec2/encoder/layers.0/.../kernel``) when the object graph or the keys carry it,
    otherwise the object path (``wav2vec2/encoder/layer/0/.../kernel``). ``kind`` says which:
    ``"keras"`` or ``"object_path"``. ``ignored`` lists the checkpoint keys skipped (optimizer state, counters,
    the object graph itself)."""

    variables: dict[str, np.ndarray]
    ignored: list[str]
    kind: str
    object_based: bool
    prefix: str


def _optimizer_node_ids(nodes: list[ObjectGraphNode]) -> set[int]:
    """Nodes reachable only through an ``optimizer`` edge, plus every slot variable."""
    slots: set[int] = set()
    for node in nodes:
        slots.update(i for i in node.slot_variable_ids if 0 <= i < len(nodes))
    # nodes reachable from the root without passing an optimizer-ish edge
    model_side: set[int] = {0}
    stack = [0]
    while stack:
        nid = stack.pop()
        for child, local in nodes[nid].children:
            if local in _NON_MODEL_ROOT_CHILDREN or child in model_side or child in slots:
                continue
            model_side.add(child)
            stack.append(child)
    return {i for i in range(len(nodes)) if i not in model_side} | slots


def read_bundle_variables(
    source: str | os.PathLike[str], *, verify_crc: bool = True, use_object_graph: bool = True, lazy: bool = False
) -> BundleVariables:
    """Model variables of an object-based or name-based bundle, with optimizer state and counters skipped. With
    ``lazy`` the variables are :class:`~._lazy.LazyArray` objects: a tensor's bytes are read (and CRC-checked) only when
    it is used, so tensors a model does not need are never read."""
    prefix = resolve_bundle_prefix(source)
    bundle = TensorBundle(prefix, verify_crc=verify_crc)
    bundle.check_layout()
    ignored: list[str] = []
    variables: dict[str, np.ndarray] = {}
    object_based = OBJECT_GRAPH_KEY in bundle.entries or any(k.endswith(ATTRIBUTES_SUFFIX) for k in bundle.entries)

    if not object_based:
        for key, entry in bundle.entries.items():
            leaf = key.rsplit("/", 1)[-1]
            if entry.dtype == "string" or leaf in _COUNTER_NAMES or _is_optimizer_name(key):
                ignored.append(key)
                continue
            variables[key[:-2] if key.endswith(":0") else key] = bundle.lazy(key) if lazy else bundle.read(key)
        return BundleVariables(variables, ignored, "keras", False, prefix)

    full_names: dict[str, str] = {}
    skip_keys: set[str] = set()
    if use_object_graph and OBJECT_GRAPH_KEY in bundle.entries:
        graph = bundle.read(OBJECT_GRAPH_KEY)
        if graph.size != 1 or not isinstance(graph.reshape(-1)[0], bytes):
            raise TFCheckpointError("the checkpoint object graph entry is not a single string")
        nodes = parse_object_graph(graph.reshape(-1)[0])
        optimizer_ids = _optimizer_node_ids(nodes)
        for nid, node in enumerate(nodes):
            for attr_name, full_name, ckpt_key in node.attributes:
                if nid in optimizer_ids:
                    skip_keys.add(ckpt_key)
                elif attr_name == "VARIABLE_VALUE" and full_name:
                    full_names[ckpt_key] = full_name
    if OBJECT_GRAPH_KEY in bundle.entries:
        ignored.append(OBJECT_GRAPH_KEY)

    use_keras_names = bool(full_names)
    for key, entry in bundle.entries.items():
        if key == OBJECT_GRAPH_KEY:
            continue
        if (
            key in skip_keys
            or OPTIMIZER_SLOT in key
            or not key.endswith(ATTRIBUTES_SUFFIX)
            or entry.dtype == "string"
        ):
            ignored.append(key)
            continue
        parts = _split_object_key(key)
        if not parts or parts[0] in _NON_MODEL_ROOT_CHILDREN or parts[-1] in _COUNTER_NAMES:
            ignored.append(key)
            continue
        if use_keras_names:
            name = full_names.get(key)
            if name is None:
                ignored.append(key)
                continue
            if name.endswith(":0"):
                name = name[:-2]
        else:
            name = "/".join(parts)
        if name in variables:
            raise TFCheckpointError(f"two checkpoint tensors map to the same variable name {name!r}")
        variables[name] = bundle.lazy(key) if lazy else bundle.read(key)
    return BundleVariables(variables, ignored, "keras" if use_keras_names else "object_path", True, prefix)


def _is_optimizer_name(name: str) -> bool:
    """Name-based checkpoints: Adam/AdamW/SGD slot and hyper-parameter variables."""
    first = name.split("/", 1)[0]
    if first in {"Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl", "optimizer"}:
        return True
    return bool(re.search(r"/(Adam|AdamW|Momentum|RMSProp|Adagrad|Ftrl)(_\d+)?$", name))
