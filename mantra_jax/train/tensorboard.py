"""TensorBoard scalar event files written (and read back) without TensorFlow.

An event file is a TFRecord stream: each record is ``uint64 length (little endian) | uint32 masked
crc32c(length bytes) | data | uint32 masked crc32c(data)``, with ``masked(c) = ((c >> 15) | (c << 17)) +
0xa282ead8 (mod 2^32)`` and crc32c the Castagnoli CRC. ``data`` is a serialized ``tensorflow.Event``
protobuf; the fields used here are hand-encoded:

    Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
    Summary { repeated Value value = 1; }
    Value   { string tag = 1; float simple_value = 2; }

The first record carries ``file_version = "brain.Event:2"``. File names contain ``tfevents`` (TensorBoard
only reads such files): ``events.out.tfevents.<unix time>.<host>.<pid>.<n>``. A resumed run opens a new
file; TensorBoard merges the files of a directory.
"""

from __future__ import annotations

import math
import os
import pathlib
import socket
import struct
import time
from typing import Any, Iterator, Mapping

FILE_VERSION = "brain.Event:2"
_MASK_DELTA = 0xA282EAD8


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``; crc32c(b"123456789") == 0xE3069283."""
    c = 0xFFFFFFFF
    for byte in data:
        c = _TABLE[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def tfrecord(data: bytes) -> bytes:
    """One TFRecord frame around ``data``."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


# ---- protobuf encoding ---------------------------------------------------------------------------------

def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 two's complement, as protobuf encodes negative int64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_event(wall_time: float, step: int, *, file_version: str | None = None,
                 scalars: Mapping[str, float] | None = None) -> bytes:
    """Serialized Event with either a file version or a Summary of scalar values."""
    out = _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3 | 0) + _varint(int(step))
    if file_version is not None:
        out += _bytes_field(3, file_version.encode())
    if scalars:
        summary = b"".join(
            _bytes_field(1, _bytes_field(1, str(tag).encode()) + _varint(2 << 3 | 5) + struct.pack("<f", float(v)))
            for tag, v in scalars.items())
        out += _bytes_field(5, summary)
    return out


# ---- writer -------------------------------------------------------------------------------------------

class EventFileWriter:
    """Appends scalar summaries to a new event file in ``logdir`` (flushed after every write)."""

    _count = 0

    def __init__(self, logdir: str | os.PathLike):
        self.logdir = pathlib.Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        EventFileWriter._count += 1
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.{EventFileWriter._count}"
        self.path = self.logdir / name
        self._file = open(self.path, "ab")
        self._write(encode_event(time.time(), 0, file_version=FILE_VERSION))

    def _write(self, event: bytes) -> None:
        self._file.write(tfrecord(event))
        self._file.flush()

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        """Writes finite ``values`` as scalars at ``step`` (NaN and infinities are skipped)."""
        finite = {k: float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))}
        if finite:
            self._write(encode_event(time.time(), step, scalars=finite))

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


# ---- reader (for tests and tools) ----------------------------------------------------------------------

def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of a serialized protobuf message."""
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = _read_varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def read_records(path: str | os.PathLike) -> list[bytes]:
    """The payloads of a TFRecord file; raises ValueError on a bad frame or CRC."""
    data = pathlib.Path(path).read_bytes()
    out, i = [], 0
    while i < len(data):
        if i + 12 > len(data):
            raise ValueError(f"{path}: truncated record header at byte {i}")
        length_bytes = data[i:i + 8]
        (length,) = struct.unpack("<Q", length_bytes)
        (crc,) = struct.unpack("<I", data[i + 8:i + 12])
        if crc != masked_crc32c(length_bytes):
            raise ValueError(f"{path}: bad length CRC at byte {i}")
        payload = data[i + 12:i + 12 + length]
        if len(payload) != length or i + 16 + length > len(data):
            raise ValueError(f"{path}: truncated record at byte {i}")
        (crc,) = struct.unpack("<I", data[i + 12 + length:i + 16 + length])
        if crc != masked_crc32c(payload):
            raise ValueError(f"{path}: bad data CRC at byte {i}")
        out.append(payload)
        i += 16 + length
    return out


def decode_event(data: bytes) -> dict[str, Any]:
    """``{"wall_time", "step", "file_version"?, "scalars": {tag: value}}`` of a serialized Event."""
    event: dict[str, Any] = {"step": 0, "scalars": {}}
    for number, _, value in _fields(data):
        if number == 1:
            event["wall_time"] = struct.unpack("<d", value)[0]
        elif number == 2:
            event["step"] = value - (1 << 64) if value >= 1 << 63 else value
        elif number == 3:
            event["file_version"] = value.decode()
        elif number == 5:
            for n, _, v in _fields(value):
                if n == 1:
                    tag, simple = None, None
                    for m, _, x in _fields(v):
                        if m == 1:
                            tag = x.decode()
                        elif m == 2:
                            simple = struct.unpack("<f", x)[0]
                    if tag is not None and simple is not None:
                        event["scalars"][tag] = simple
    return event


def read_scalars(path: str | os.PathLike) -> list[tuple[int, str, float]]:
    """All ``(step, tag, value)`` scalars of an event file, in file order."""
    return [(e["step"], tag, v) for e in map(decode_event, read_records(path)) for tag, v in e["scalars"].items()]
