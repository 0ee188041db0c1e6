"""The TensorFlow tensor-bundle reader: format details, error handling and robustness to hostile bytes.

Synthetic bundles come from a small writer in this file (LevelDB table + BundleHeaderProto/BundleEntryProto
encoded by hand); real ones from tests/data/tf (written by TensorFlow, see scripts/make_tf_fixtures.py).
"""

from __future__ import annotations

import os
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audioclf.checkpoints.tf import _wire
from audioclf.checkpoints.tf.bundle import (
    OBJECT_GRAPH_KEY,
    TensorBundle,
    parse_object_graph,
    read_bundle,
    read_bundle_variables,
    resolve_bundle_prefix,
)
from audioclf.errors import TFCheckpointError

DATA = Path(__file__).parent / "data" / "tf"

# ---------------------------------------------------------------------------------------------------------------
# a minimal bundle writer


def varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(num: int, value: int) -> bytes:
    return varint(num << 3) + varint(value)


def f_bytes(num: int, value: bytes) -> bytes:
    return varint((num << 3) | 2) + varint(len(value)) + value


def f_fixed32(num: int, value: int) -> bytes:
    return varint((num << 3) | 5) + value.to_bytes(4, "little")


def header_proto(num_shards: int = 1, endianness: int = 0) -> bytes:
    out = f_varint(1, num_shards)
    if endianness:
        out += f_varint(2, endianness)
    return out + f_bytes(3, f_varint(1, 1))


def entry_proto(dtype: int, shape, shard_id: int, offset: int, size: int, crc: int | None, slices: bool = False) -> bytes:
    shape_msg = b"".join(f_bytes(2, f_varint(1, d)) for d in shape)
    out = f_varint(1, dtype) + f_bytes(2, shape_msg)
    if shard_id:
        out += f_varint(3, shard_id)
    if offset:
        out += f_varint(4, offset)
    out += f_varint(5, size)
    if crc is not None:
        out += f_fixed32(6, crc)
    if slices:
        out += f_bytes(7, f_bytes(1, f_varint(1, 0) + f_varint(2, 2)))
    return out


def snappy_literal(data: bytes) -> bytes:
    out = bytearray(varint(len(data)))
    for i in range(0, len(data), 256):
        chunk = data[i : i + 256]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        else:
            out.append(60 << 2)
            out.append(n)
        out += chunk
    return bytes(out)


def build_block(entries: list[tuple[bytes, bytes]], restart_interval: int = 16) -> bytes:
    out = bytearray()
    restarts = []
    prev = b""
    for i, (key, value) in enumerate(entries):
        if i % restart_interval == 0:
            shared = 0
            restarts.append(len(out))
        else:
            shared = 0
            while shared < min(len(prev), len(key)) and prev[shared] == key[shared]:
                shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        prev = key
    if not restarts:
        restarts = [0]
    for r in restarts:
        out += r.to_bytes(4, "little")
    out += len(restarts).to_bytes(4, "little")
    return bytes(out)


def write_table(path: Path, entries: list[tuple[bytes, bytes]], block_entries: int = 1000, snappy: bool = False) -> None:
    buf = bytearray()

    def emit(contents: bytes) -> tuple[int, int]:
        ctype = 0
        if snappy:
            contents, ctype = snappy_literal(contents), 1
        off = len(buf)
        buf.extend(contents)
        trailer_type = bytes([ctype])
        crc = _wire.mask_crc(_wire.crc32c(contents + trailer_type))
        buf.extend(trailer_type + crc.to_bytes(4, "little"))
        return off, len(contents)

    index_entries = []
    for i in range(0, len(entries), block_entries):
        chunk = entries[i : i + block_entries]
        off, size = emit(build_block(chunk))
        index_entries.append((chunk[-1][0] + b"\xff", varint(off) + varint(size)))
    meta_off, meta_size = emit(build_block([]))
    idx_off, idx_size = emit(build_block(index_entries, restart_interval=1))
    handles = varint(meta_off) + varint(meta_size) + varint(idx_off) + varint(idx_size)
    footer = handles + b"\0" * (40 - len(handles)) + (0xDB4775248B80FB57).to_bytes(8, "little")
    buf.extend(footer)
    path.write_bytes(bytes(buf))


DTYPE_ENUMS = {
    "float32": 1, "float64": 2, "int32": 3, "uint8": 4, "int16": 5, "int8": 6,
    "int64": 9, "bool": 10, "bfloat16": 14, "float16": 19, "uint16": 17, "uint32": 22,
}  # fmt: skip


def write_bundle(
    prefix: Path,
    tensors: dict[str, np.ndarray],
    *,
    num_shards: int = 1,
    dtypes: dict[str, str] | None = None,
    strings: dict[str, list[bytes]] | None = None,
    block_entries: int = 1000,
    snappy: bool = False,
    pad: int = 0,
    endianness: int = 0,
) -> None:
    """Write ``tensors`` (numpy arrays; ``dtypes`` overrides e.g. 'bfloat16' for a uint16 array of raw bits)."""
    dtypes = dtypes or {}
    shards = [bytearray() for _ in range(num_shards)]
    values: dict[bytes, bytes] = {}
    for i, (key, arr) in enumerate(reversed(list(tensors.items()))):  # reversed: offsets not in key order
        shard = i % num_shards
        name = dtypes.get(key, arr.dtype.name)
        raw = np.ascontiguousarray(arr).tobytes()
        shards[shard] += b"\xab" * pad
        offset = len(shards[shard])
        shards[shard] += raw
        crc = _wire.mask_crc(_wire.crc32c(raw))
        values[key.encode()] = entry_proto(DTYPE_ENUMS[name], arr.shape, shard, offset, len(raw), crc)
    for key, items in (strings or {}).items():
        lengths = b"".join(varint(len(s)) for s in items)
        len32 = b"".join(len(s).to_bytes(4, "little") for s in items)
        len_crc = _wire.mask_crc(_wire.crc32c(len32)).to_bytes(4, "little")
        body = b"".join(items)
        raw = lengths + len_crc + body
        crc = _wire.crc32c(body, _wire.crc32c(len_crc, _wire.crc32c(len32)))
        offset = len(shards[0])
        shards[0] += raw
        values[key.encode()] = entry_proto(7, [len(items)] if len(items) != 1 else [], 0, offset, len(raw), _wire.mask_crc(crc))
    entries = [(b"", header_proto(num_shards, endianness))] + sorted(values.items())
    write_table(Path(str(prefix) + ".index"), entries, block_entries=block_entries, snappy=snappy)
    for i, data in enumerate(shards):
        Path(f"{prefix}.data-{i:05d}-of-{num_shards:05d}").write_bytes(bytes(data))


def table_entries(index_path: Path) -> list[tuple[bytes, bytes]]:
    from audioclf.checkpoints.tf.bundle import _read_table

    return _read_table(index_path.read_bytes(), index_path.name)


# ---------------------------------------------------------------------------------------------------------------
# primitives


def test_crc32c_known_answers():
    assert _wire.crc32c(b"123456789") == 0xE3069283
    assert _wire.crc32c(b"") == 0
    assert _wire.crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 test vector
    assert _wire.crc32c(bytes([0xFF] * 32)) == 0x62A8AB43
    for c in (0, 1, 0xE3069283, 0xFFFFFFFF):
        assert _wire.unmask_crc(_wire.mask_crc(c)) == c


def test_crc32c_parallel_path_matches_bytewise():
    rng = np.random.default_rng(0)
    for n in (1 << 16, (1 << 16) + 4095, 300_001):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        slow = _wire._crc_register(0xFFFFFFFF, data) ^ 0xFFFFFFFF
        assert _wire.crc32c(data) == slow
        assert _wire.crc32c(data[1000:], _wire.crc32c(data[:1000])) == slow


def test_snappy_decoder():
    assert _wire.snappy_decompress(snappy_literal(b"hello world" * 40), limit=10_000) == b"hello world" * 40
    # literal "ab", then a 1-byte-offset copy of 8 bytes at distance 2 (overlapping)
    assert _wire.snappy_decompress(b"\x0a\x04ab\x11\x02", limit=100) == b"ab" * 5
    # literal "abc", then a 2-byte-offset copy of 3 bytes at distance 3
    assert _wire.snappy_decompress(b"\x06\x08abc\x0a\x03\x00", limit=100) == b"abcabc"
    for bad in (b"\x0a\x04ab\x11\x05", b"\x05\x04ab", b"\x02\x04ab\x11\x02", b"\x80", b"\x03\xf8"):
        with pytest.raises(TFCheckpointError):
            _wire.snappy_decompress(bad, limit=100)
    with pytest.raises(TFCheckpointError, match="implausible"):
        _wire.snappy_decompress(varint(10**9) + b"\x00a", limit=1 << 30)


def test_varint_bounds():
    assert _wire.read_varint(b"\xac\x02", 0) == (300, 2)
    with pytest.raises(TFCheckpointError):
        _wire.read_varint(b"\x80\x80", 0)
    with pytest.raises(TFCheckpointError):
        _wire.read_varint(b"\xff" * 11, 0)
    with pytest.raises(TFCheckpointError):
        _wire.read_varint(b"\xff" * 9 + b"\x02", 0)


# ---------------------------------------------------------------------------------------------------------------
# synthetic bundles


def _all_dtypes() -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    f32 = rng.standard_normal((3, 4)).astype(np.float32)
    bf_bits = (f32.view(np.uint32) >> 16).astype(np.uint16)
    tensors = {
        "a/f32": f32,
        "a/f16": rng.standard_normal((5,)).astype(np.float16),
        "a/f64": rng.standard_normal((2, 2, 2)),
        "a/bf16": bf_bits,
        "b/i8": np.array([-128, 0, 127], np.int8),
        "b/i16": np.array([-30000, 5], np.int16),
        "b/i32": np.arange(-3, 3, dtype=np.int32).reshape(2, 3),
        "b/i64": np.array(2**40 + 3, dtype=np.int64),
        "b/u8": np.array([0, 255], np.uint8),
        "c/bool": np.array([True, False, True]),
        "c/empty": np.zeros((0, 4), np.float32),
    }
    expected = dict(tensors)
    expected["a/bf16"] = (bf_bits.astype(np.uint32) << 16).view(np.float32)
    return tensors, {"a/bf16": "bfloat16"}, expected


@pytest.mark.parametrize(
    "num_shards,block_entries,snappy,pad",
    [(1, 1000, False, 0), (3, 2, False, 7), (2, 1, True, 0), (4, 3, True, 64)],
)
def test_roundtrip_dtypes_shards_blocks(tmp_path, num_shards, block_entries, snappy, pad):
    tensors, dtypes, expected = _all_dtypes()
    write_bundle(
        tmp_path / "model.ckpt", tensors, num_shards=num_shards, dtypes=dtypes,
        block_entries=block_entries, snappy=snappy, pad=pad,
        strings={"s": [b"hello", b"", b"x" * 300]},
    )  # fmt: skip
    got = read_bundle(tmp_path / "model.ckpt")
    assert set(got) == set(expected) | {"s"}
    for key, want in expected.items():
        assert got[key].dtype == (np.float32 if key == "a/bf16" else want.dtype), key
        assert got[key].shape == want.shape, key
        np.testing.assert_array_equal(got[key], want)
    assert list(got["s"]) == [b"hello", b"", b"x" * 300]
    bundle = TensorBundle(tmp_path / "model.ckpt")
    assert bundle.num_shards == num_shards


def test_name_based_bundle_skips_optimizer_and_counters(tmp_path):
    w = np.ones((2, 2), np.float32)
    write_bundle(
        tmp_path / "m",
        {
            "model/dense/kernel": w,
            "model/dense/kernel/Adam": w,
            "model/dense/kernel/Adam_1": w,
            "Adam/iter": np.array(3, np.int64),
            "global_step": np.array(3, np.int64),
        },
    )
    bv = read_bundle_variables(tmp_path / "m")
    assert not bv.object_based and bv.kind == "keras"
    assert list(bv.variables) == ["model/dense/kernel"]
    assert sorted(bv.ignored) == ["Adam/iter", "global_step", "model/dense/kernel/Adam", "model/dense/kernel/Adam_1"]


def _object_graph(nodes) -> bytes:
    """nodes: list of (children [(id, name)], attributes [(full_name, key)], slot_ids)."""
    out = b""
    for children, attrs, slots in nodes:
        msg = b"".join(f_bytes(1, f_varint(1, cid) + f_bytes(2, name.encode())) for cid, name in children)
        msg += b"".join(
            f_bytes(2, f_bytes(1, b"VARIABLE_VALUE") + f_bytes(2, full.encode()) + f_bytes(3, key.encode()))
            for full, key in attrs
        )
        msg += b"".join(f_bytes(3, f_varint(1, 1) + f_bytes(2, b"m") + f_varint(3, s)) for s in slots)
        out += f_bytes(1, msg)
    return out


def test_object_based_bundle_uses_object_graph(tmp_path):
    k = "model/a..b/w.Sx/.ATTRIBUTES/VARIABLE_VALUE"
    slot = "model/a..b/w.Sx/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE"
    graph = _object_graph(
        [
            ([(1, "model"), (3, "optimizer"), (4, "save_counter")], [], []),
            ([(2, "a.b")], [], []),
            ([], [("scope/a.b/w/x", k)], []),
            ([(5, "iter")], [], [5]),
            ([], [("save_counter", "save_counter/.ATTRIBUTES/VARIABLE_VALUE")], []),
            ([], [("Adam/m", slot)], []),
        ]
    )
    w = np.arange(4, dtype=np.float32)
    write_bundle(
        tmp_path / "ckpt-1",
        {k: w, slot: w, "save_counter/.ATTRIBUTES/VARIABLE_VALUE": np.array(1, np.int64)},
        strings={OBJECT_GRAPH_KEY: [graph]},
    )
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\nall_model_checkpoint_paths: "ckpt-1"\n')
    bv = read_bundle_variables(tmp_path)
    assert bv.object_based and bv.kind == "keras"
    assert list(bv.variables) == ["scope/a.b/w/x"]
    assert set(bv.ignored) == {OBJECT_GRAPH_KEY, slot, "save_counter/.ATTRIBUTES/VARIABLE_VALUE"}
    # without the object graph: unescaped object path
    bv = read_bundle_variables(tmp_path, use_object_graph=False)
    assert bv.kind == "object_path" and list(bv.variables) == ["model/a.b/w/x"]
    nodes = parse_object_graph(graph)
    assert nodes[0].children == [(1, "model"), (3, "optimizer"), (4, "save_counter")]
    with pytest.raises(TFCheckpointError):
        parse_object_graph(_object_graph([([(9, "x")], [], [])]))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(endianness=1), "big-endian"),
        (dict(num_shards=0), "shard count"),
    ],
)
def test_bad_headers(tmp_path, kwargs, match):
    write_bundle(tmp_path / "m", {"w": np.ones(2, np.float32)}, **{k: v for k, v in kwargs.items() if k != "num_shards"})
    if "num_shards" in kwargs:
        write_table(tmp_path / "m.index", [(b"", header_proto(0))])
    with pytest.raises(TFCheckpointError, match=match):
        read_bundle(tmp_path / "m")


def _single_entry_bundle(tmp_path: Path, value: bytes, data: bytes = b"\0" * 16) -> Path:
    write_table(tmp_path / "m.index", [(b"", header_proto(1)), (b"w", value)])
    (tmp_path / "m.data-00000-of-00001").write_bytes(data)
    return tmp_path / "m"


@pytest.mark.parametrize(
    "value,match",
    [
        (entry_proto(1, [2], 0, 0, 8, None, slices=True), "partitioned"),
        (entry_proto(99, [2], 0, 0, 8, None), "unknown dtype"),
        (entry_proto(21, [2], 0, 0, 8, None), "unsupported dtype variant"),
        (entry_proto(1, [3], 0, 0, 8, None), "does not match shape"),
        (entry_proto(1, [2], 1, 0, 8, None), "shard 1"),
        (entry_proto(1, [4], 0, 4, 16, None), "past the end"),
        (entry_proto(1, [2], 0, -1, 8, None), "negative"),
        (f_bytes(1, b"x"), "expected a varint"),
        (b"\x0a\xff", "truncated|runs past"),
    ],
)
def test_bad_entries(tmp_path, value, match):
    prefix = _single_entry_bundle(tmp_path, value)
    with pytest.raises(TFCheckpointError, match=match):
        read_bundle(prefix)


def test_resolve_source_forms(tmp_path):
    write_bundle(tmp_path / "model.ckpt", {"w": np.ones(2, np.float32)})
    p = str(tmp_path / "model.ckpt")
    assert resolve_bundle_prefix(p) == p
    assert resolve_bundle_prefix(p + ".index") == p
    assert resolve_bundle_prefix(p + ".data-00000-of-00001") == p
    assert resolve_bundle_prefix(tmp_path) == p  # single *.index
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "/elsewhere/run/model.ckpt"\n')
    assert resolve_bundle_prefix(tmp_path) == p  # absolute path from another machine: same base name here
    write_bundle(tmp_path / "other", {"w": np.ones(2, np.float32)})
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "other"\n')
    assert resolve_bundle_prefix(tmp_path) == str(tmp_path / "other")
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "gone"\n')
    with pytest.raises(TFCheckpointError, match="gone"):
        resolve_bundle_prefix(tmp_path)
    (tmp_path / "checkpoint").write_text("nothing useful\n")
    with pytest.raises(TFCheckpointError, match="model_checkpoint_path"):
        resolve_bundle_prefix(tmp_path)
    (tmp_path / "checkpoint").unlink()
    with pytest.raises(TFCheckpointError, match="several checkpoints"):
        resolve_bundle_prefix(tmp_path)
    with pytest.raises(TFCheckpointError, match="no TensorFlow checkpoint"):
        resolve_bundle_prefix(tmp_path / "nope")
    with pytest.raises(TFCheckpointError, match="does not exist"):
        resolve_bundle_prefix(tmp_path / "nope.index")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TFCheckpointError, match="no TensorFlow checkpoint"):
        resolve_bundle_prefix(empty)


# ---------------------------------------------------------------------------------------------------------------
# corrupt real (TensorFlow-written) bundles

FIXTURE_PREFIX = DATA / "w2v2_cls_group" / "keras" / "weights"


@pytest.fixture
def bundle_copy(tmp_path) -> Path:
    for f in FIXTURE_PREFIX.parent.iterdir():
        if f.name.startswith("weights."):
            shutil.copy(f, tmp_path / f.name)
    return tmp_path / "weights"


def test_fixture_bundle_reads(bundle_copy):
    got = read_bundle(bundle_copy)
    assert OBJECT_GRAPH_KEY in got and len(got) == 51
    assert all(v.dtype == np.float32 for k, v in got.items() if k != OBJECT_GRAPH_KEY)


def test_truncated_index(bundle_copy):
    index = Path(str(bundle_copy) + ".index")
    raw = index.read_bytes()
    for cut in (len(raw) - 1, len(raw) // 2, 47, 0):
        index.write_bytes(raw[:cut])
        with pytest.raises(TFCheckpointError, match="bad magic|too short"):
            read_bundle(bundle_copy)
    # a truncated file whose tail still ends in a valid-looking footer
    index.write_bytes(raw[:100] + raw[-48:])
    with pytest.raises(TFCheckpointError, match="outside the file|CRC"):
        read_bundle(bundle_copy)


def test_wrong_magic(bundle_copy):
    index = Path(str(bundle_copy) + ".index")
    raw = bytearray(index.read_bytes())
    raw[-1] ^= 0xFF
    index.write_bytes(bytes(raw))
    with pytest.raises(TFCheckpointError, match="not a TensorFlow checkpoint index"):
        read_bundle(bundle_copy)


def test_index_block_crc_mismatch(bundle_copy):
    index = Path(str(bundle_copy) + ".index")
    raw = bytearray(index.read_bytes())
    raw[20] ^= 0x01
    index.write_bytes(bytes(raw))
    with pytest.raises(TFCheckpointError, match="CRC mismatch in a data block"):
        read_bundle(bundle_copy)


def test_tensor_crc_mismatch(bundle_copy):
    bundle = TensorBundle(bundle_copy)
    entry = bundle.entries["wav2vec2/encoder/layer/0/attention/q_proj/kernel/.ATTRIBUTES/VARIABLE_VALUE"]
    data = bundle.shard_path(0)
    raw = bytearray(data.read_bytes())
    raw[entry.offset + 5] ^= 0x10
    data.write_bytes(bytes(raw))
    with pytest.raises(TFCheckpointError, match="CRC mismatch for tensor 'wav2vec2/encoder/layer/0/attention/q_proj"):
        read_bundle(bundle_copy)
    # with verification off the corrupt bytes are returned
    got = read_bundle(bundle_copy, verify_crc=False)
    assert got[entry.key].shape == entry.shape


def test_object_graph_crc_mismatch(bundle_copy):
    bundle = TensorBundle(bundle_copy)
    entry = bundle.entries[OBJECT_GRAPH_KEY]
    data = bundle.shard_path(entry.shard_id)
    raw = bytearray(data.read_bytes())
    raw[entry.offset + entry.size - 3] ^= 0x01
    data.write_bytes(bytes(raw))
    with pytest.raises(TFCheckpointError, match="CRC mismatch for string tensor"):
        read_bundle_variables(bundle_copy)


def test_missing_and_truncated_data_shard(bundle_copy):
    data = Path(str(bundle_copy) + ".data-00000-of-00001")
    raw = data.read_bytes()
    data.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(TFCheckpointError, match="past the end of weights.data-00000-of-00001"):
        read_bundle(bundle_copy)
    data.unlink()
    with pytest.raises(TFCheckpointError, match="missing checkpoint data file weights.data-00000-of-00001"):
        read_bundle(bundle_copy)


def test_error_messages_are_one_line(bundle_copy):
    Path(str(bundle_copy) + ".index").write_bytes(b"\n" * 100)
    with pytest.raises(TFCheckpointError) as info:
        read_bundle(bundle_copy)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------------------------
# hostile input: only TFCheckpointError, bounded time and memory

_SMALL_PREFIX = DATA / "hubert_base" / "v1" / "model.ckpt"
_SMALL_INDEX = Path(str(_SMALL_PREFIX) + ".index").read_bytes()
_SMALL_DATA = Path(str(_SMALL_PREFIX) + ".data-00000-of-00001").read_bytes()
_OBJ_INDEX = Path(str(FIXTURE_PREFIX) + ".index").read_bytes()
_OBJ_DATA = Path(str(FIXTURE_PREFIX) + ".data-00000-of-00001").read_bytes()
_FUZZ = settings(
    max_examples=60,
    deadline=3000,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _mutate(raw: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    buf = bytearray(raw)
    for kind, pos, val in ops:
        if not buf:
            break
        pos %= len(buf)
        if kind == 0:
            buf[pos] ^= 1 << (val % 8)
        elif kind == 1:
            buf[pos] = val % 256
        elif kind == 2:
            del buf[pos : pos + 1 + val % 64]
        elif kind == 3:
            buf[pos:pos] = bytes([val % 256]) * (1 + val % 16)
        else:
            del buf[pos:]
    return bytes(buf)


_ops = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=6)


def _read_all(prefix: Path, budget: int) -> None:
    """Read the bundle every way; only TFCheckpointError may escape; peak allocation stays under ``budget``."""
    tracemalloc.start()
    try:
        for verify in (True, False):
            try:
                read_bundle(prefix, verify_crc=verify)
            except TFCheckpointError as exc:
                assert "\n" not in str(exc)
            try:
                read_bundle_variables(prefix, verify_crc=verify)
            except TFCheckpointError:
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < budget, peak


def _write(dir_: Path, name: str, index: bytes, data: bytes) -> Path:
    prefix = dir_ / name
    Path(str(prefix) + ".index").write_bytes(index)
    Path(str(prefix) + ".data-00000-of-00001").write_bytes(data)
    return prefix


@_FUZZ
@given(index=st.binary(max_size=4096), data=st.binary(max_size=1024), magic=st.booleans())
def test_fuzz_random_bytes(tmp_path_factory, index, data, magic):
    if magic:  # get past the magic check so the footer/blocks are exercised
        index = index + bytes(40 - min(len(index), 40)) + (0xDB4775248B80FB57).to_bytes(8, "little")
    prefix = _write(tmp_path_factory.mktemp("rnd"), "r", index, data)
    _read_all(prefix, 8 << 20)


@_FUZZ
@given(index_ops=_ops, data_ops=st.one_of(st.none(), _ops), which=st.booleans())
def test_fuzz_mutated_fixture_bytes(tmp_path_factory, index_ops, data_ops, which):
    index, data = (_OBJ_INDEX, _OBJ_DATA) if which else (_SMALL_INDEX, _SMALL_DATA)
    index = _mutate(index, index_ops)
    if data_ops is not None:
        data = _mutate(data, data_ops)
    prefix = _write(tmp_path_factory.mktemp("mut"), "m", index, data)
    _read_all(prefix, 8 << 20)


_SMALL_ENTRIES = table_entries(Path(str(_SMALL_PREFIX) + ".index"))


@_FUZZ
@given(
    picks=st.lists(st.tuples(st.integers(0, len(_SMALL_ENTRIES) - 1), _ops), min_size=1, max_size=4),
    extra=st.lists(st.tuples(st.binary(max_size=12), st.binary(max_size=40)), max_size=3),
)
def test_fuzz_mutated_entries_with_valid_crcs(tmp_path_factory, picks, extra):
    """Well-formed tables (valid block CRCs) whose header/entry protos and keys are mutated."""
    entries = dict(_SMALL_ENTRIES)
    keys = list(entries)
    for idx, ops in picks:
        key = keys[idx]
        entries[key] = _mutate(entries[key], ops)
    for key, value in extra:
        entries[key] = value
    ordered = sorted(entries.items())
    d = tmp_path_factory.mktemp("ent")
    write_table(d / "e.index", ordered, block_entries=7)
    (d / "e.data-00000-of-00001").write_bytes(_SMALL_DATA)
    _read_all(d / "e", 8 << 20)


def test_huge_declared_sizes_do_not_allocate(tmp_path):
    """Entries claiming terabytes, or string tensors claiming billions of elements, fail before allocating."""
    for value in (
        entry_proto(1, [1 << 40], 0, 0, 4 << 40, None),
        entry_proto(7, [1 << 40], 0, 0, 16, None),
        entry_proto(1, [1 << 62, 1 << 62], 0, 0, 16, None),
    ):
        prefix = _single_entry_bundle(tmp_path, value)
        _read_all(prefix, 1 << 20)
    # a string tensor whose first length is enormous
    prefix = _single_entry_bundle(tmp_path, entry_proto(7, [], 0, 0, 16, None), data=varint(1 << 60) + bytes(15))
    with pytest.raises(TFCheckpointError):
        read_bundle(prefix)


def test_overlapping_tensors_are_rejected(tmp_path):
    """Many entries pointing at the same bytes would multiply memory use: TF never writes that."""
    data = bytes(4000)
    entries = [(b"", header_proto(1))] + [
        (f"w{i:04d}".encode(), entry_proto(1, [1000], 0, 0, 4000, None)) for i in range(50)
    ]
    write_table(tmp_path / "m.index", entries)
    (tmp_path / "m.data-00000-of-00001").write_bytes(data)
    with pytest.raises(TFCheckpointError, match="tensors overlap"):
        read_bundle(tmp_path / "m")
    with pytest.raises(TFCheckpointError, match="tensors overlap"):
        read_bundle_variables(tmp_path / "m")


def test_prefix_compression_bomb_is_rejected(tmp_path):
    """Entries that each re-use a long shared prefix for 3 bytes of input would expand quadratically."""
    long_key = b"k" * 60000
    block = bytearray(varint(0) + varint(len(long_key)) + varint(0) + long_key)
    for _ in range(20000):
        block += varint(len(long_key)) + varint(1) + varint(0) + b"x"
    block += (0).to_bytes(4, "little") + (1).to_bytes(4, "little")
    buf = bytearray(block)
    buf += b"\x00" + _wire.mask_crc(_wire.crc32c(bytes(block) + b"\x00")).to_bytes(4, "little")
    index = build_block([(b"\xff", varint(0) + varint(len(block)))], restart_interval=1)
    idx_off = len(buf)
    buf += index + b"\x00" + _wire.mask_crc(_wire.crc32c(index + b"\x00")).to_bytes(4, "little")
    handles = varint(0) + varint(0) + varint(idx_off) + varint(len(index))
    buf += handles + bytes(40 - len(handles)) + (0xDB4775248B80FB57).to_bytes(8, "little")
    (tmp_path / "m.index").write_bytes(bytes(buf))
    with pytest.raises(TFCheckpointError, match="implausibly long keys"):
        read_bundle(tmp_path / "m")


def test_out_of_order_data_blocks_are_rejected(tmp_path):
    write_bundle(tmp_path / "m", {f"w{i}": np.ones(2, np.float32) for i in range(6)}, block_entries=2)
    entries = table_entries(tmp_path / "m.index")
    assert len(entries) == 7
    raw = (tmp_path / "m.index").read_bytes()
    # rebuild the index block listing the first data block twice
    from audioclf.checkpoints.tf.bundle import _block_entries, _read_block

    footer = raw[-48:]
    _meta_off, pos = _wire.read_varint(footer, 0)
    _meta_size, pos = _wire.read_varint(footer, pos)
    idx_off, pos = _wire.read_varint(footer, pos)
    idx_size, _ = _wire.read_varint(footer, pos)
    index_entries = _block_entries(_read_block(raw, idx_off, idx_size, "index", "m"), "index", "m")
    bad_index = build_block([index_entries[0], (b"zz", index_entries[0][1])], restart_interval=1)
    buf = bytearray(raw[:idx_off])
    new_off = len(buf)
    buf += bad_index + b"\x00" + _wire.mask_crc(_wire.crc32c(bad_index + b"\x00")).to_bytes(4, "little")
    handles = varint(0) + varint(0) + varint(new_off) + varint(len(bad_index))
    buf += handles + bytes(40 - len(handles)) + footer[40:]
    (tmp_path / "m.index").write_bytes(bytes(buf))
    with pytest.raises(TFCheckpointError, match="overlap or are out of order"):
        read_bundle(tmp_path / "m")
