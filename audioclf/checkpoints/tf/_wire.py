"""Low-level decoding shared by the TensorFlow readers: varints, protobuf wire format, CRC-32C, snappy.

Every function here works on untrusted bytes: it checks each length against the buffer it reads from,
never loops without consuming input, and raises only :class:`TFCheckpointError`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from audioclf.errors import TFCheckpointError

# ---------------------------------------------------------------------------------------------------------------
# varints and protobuf wire format


def read_varint(buf: bytes, pos: int, *, max_bytes: int = 10, what: str = "varint") -> tuple[int, int]:
    """Decode an unsigned LEB128 varint at ``pos``; return ``(value, new_pos)``."""
    result = 0
    shift = 0
    end = len(buf)
    for i in range(max_bytes):
        if pos >= end:
            raise TFCheckpointError(f"truncated {what}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if i == max_bytes - 1 and max_bytes == 10 and byte > 1:
                raise TFCheckpointError(f"{what} does not fit in 64 bits")
            return result, pos
        shift += 7
    raise TFCheckpointError(f"{what} is longer than {max_bytes} bytes")


def as_int64(value: int) -> int:
    """Reinterpret a decoded varint as a two's-complement int64 (how proto int32/int64 negatives are stored)."""
    return value - (1 << 64) if value >= (1 << 63) else value


def iter_fields(buf: bytes, what: str) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field_number, wire_type, value)`` of a serialized protobuf message.

    Varint and fixed fields give ints, length-delimited fields give bytes. Groups (wire types 3/4) are rejected.
    """
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = read_varint(buf, pos, what=f"{what} field key")
        field, wire = key >> 3, key & 7
        if field == 0:
            raise TFCheckpointError(f"malformed {what}: field number 0")
        value: int | bytes
        if wire == 0:
            value, pos = read_varint(buf, pos, what=f"{what} field {field}")
        elif wire == 1:
            if pos + 8 > end:
                raise TFCheckpointError(f"malformed {what}: truncated fixed64 field {field}")
            value = int.from_bytes(buf[pos : pos + 8], "little")
            pos += 8
        elif wire == 2:
            length, pos = read_varint(buf, pos, what=f"{what} field {field} length")
            if length > end - pos:
                raise TFCheckpointError(f"malformed {what}: field {field} runs past the end of the message")
            value = bytes(buf[pos : pos + length])
            pos += length
        elif wire == 5:
            if pos + 4 > end:
                raise TFCheckpointError(f"malformed {what}: truncated fixed32 field {field}")
            value = int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        else:
            raise TFCheckpointError(f"malformed {what}: unsupported wire type {wire} for field {field}")
        yield field, wire, value


def expect_int(wire: int, value: int | bytes, what: str) -> int:
    if wire != 0 or not isinstance(value, int):
        raise TFCheckpointError(f"malformed {what}: expected a varint")
    return value


def expect_bytes(wire: int, value: int | bytes, what: str) -> bytes:
    if wire != 2 or not isinstance(value, bytes):
        raise TFCheckpointError(f"malformed {what}: expected a length-delimited field")
    return value


def expect_str(wire: int, value: int | bytes, what: str) -> str:
    raw = expect_bytes(wire, value, what)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TFCheckpointError(f"malformed {what}: not UTF-8") from None


# ---------------------------------------------------------------------------------------------------------------
# CRC-32C (Castagnoli) and the LevelDB/TF mask


def _make_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table[n] = c
    return table


_TABLE_NP = _make_table()
_TABLE = [int(x) for x in _TABLE_NP]
_MASK_DELTA = 0xA282EAD8
_LANES = 4096
_SMALL = 1 << 16


def _crc_register(state: int, data: bytes | memoryview) -> int:
    """Advance the raw CRC register (no pre/post inversion) over ``data``, one byte at a time."""
    table = _TABLE
    for b in bytes(data):
        state = table[(state ^ b) & 0xFF] ^ (state >> 8)
    return state


def _crc_register_fast(state: int, data: bytes | memoryview) -> int:
    """Same as :func:`_crc_register` for large buffers: ``_LANES`` lanes in parallel with numpy.

    The register update is linear over GF(2), so ``R(s, D1 + D2) = A^|D2| R(s, D1) xor R(0, D2)`` where ``A^n``
    is the effect of ``n`` zero bytes. The lanes' raw CRCs ``R(0, D_i)`` and the 32 columns of ``A^L`` (the
    images of the basis states under ``L`` zero bytes) are computed by one vectorised loop over ``L`` steps.
    """
    arr = np.frombuffer(data, dtype=np.uint8)
    n = arr.size
    lane_len = n // _LANES
    body = lane_len * _LANES
    cols = np.ascontiguousarray(arr[:body].reshape(_LANES, lane_len).T)  # [L, lanes]
    states = np.zeros(_LANES + 32, dtype=np.uint32)
    states[_LANES:] = np.left_shift(np.uint32(1), np.arange(32, dtype=np.uint32))
    zeros = np.zeros(32, dtype=np.uint32)
    table = _TABLE_NP
    low = np.uint32(0xFF)
    eight = np.uint32(8)
    for j in range(lane_len):
        col = np.concatenate((cols[j].astype(np.uint32), zeros))
        states = table[(states ^ col) & low] ^ (states >> eight)
    lane_crcs = [int(x) for x in states[:_LANES]]
    shift_cols = [int(x) for x in states[_LANES:]]
    for crc in lane_crcs:
        shifted = 0
        bit = 0
        s = state
        while s:
            if s & 1:
                shifted ^= shift_cols[bit]
            s >>= 1
            bit += 1
        state = shifted ^ crc
    return _crc_register(state, arr[body:].tobytes())


def crc32c(data: bytes | memoryview, crc: int = 0) -> int:
    """Standard CRC-32C of ``data`` (``crc`` continues a previous result)."""
    state = crc ^ 0xFFFFFFFF
    if len(data) >= _SMALL:
        state = _crc_register_fast(state, data)
    else:
        state = _crc_register(state, data)
    return state ^ 0xFFFFFFFF


def mask_crc(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------------------------
# snappy (raw block format), for index blocks written with the generic table default

_SNAPPY_MAX_EXPANSION = 64  # a 2-byte copy emits at most 11 bytes, a 3-byte copy 64: 32x is the true bound


def snappy_decompress(src: bytes, *, limit: int) -> bytes:
    """Decode a raw snappy block. ``limit`` caps the declared uncompressed length."""
    length, pos = read_varint(src, 0, max_bytes=5, what="snappy length")
    if length > limit or length > _SNAPPY_MAX_EXPANSION * len(src) + 64:
        raise TFCheckpointError("corrupt snappy block: implausible uncompressed length")
    out = bytearray()
    end = len(src)
    while pos < end:
        tag = src[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            n = tag >> 2
            if n >= 60:
                extra = n - 59
                if pos + extra > end:
                    raise TFCheckpointError("corrupt snappy block: truncated literal length")
                n = int.from_bytes(src[pos : pos + extra], "little")
                pos += extra
            n += 1
            if n > end - pos:
                raise TFCheckpointError("corrupt snappy block: literal runs past the end")
            out += src[pos : pos + n]
            pos += n
        else:
            if kind == 1:
                if pos + 1 > end:
                    raise TFCheckpointError("corrupt snappy block: truncated copy")
                n = 4 + ((tag >> 2) & 7)
                offset = ((tag >> 5) << 8) | src[pos]
                pos += 1
            else:
                width = 2 if kind == 2 else 4
                if pos + width > end:
                    raise TFCheckpointError("corrupt snappy block: truncated copy")
                n = (tag >> 2) + 1
                offset = int.from_bytes(src[pos : pos + width], "little")
                pos += width
            if offset == 0 or offset > len(out):
                raise TFCheckpointError("corrupt snappy block: copy offset out of range")
            if len(out) + n > length:
                raise TFCheckpointError("corrupt snappy block: output longer than declared")
            start = len(out) - offset
            if offset >= n:
                out += out[start : start + n]
            else:
                for i in range(n):
                    out.append(out[start + i])
        if len(out) > length:
            raise TFCheckpointError("corrupt snappy block: output longer than declared")
    if len(out) != length:
        raise TFCheckpointError("corrupt snappy block: output shorter than declared")
    return bytes(out)
