import struct

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from mantra_jax.train.tensorboard import (EventFileWriter, crc32c, masked_crc32c, read_records, read_scalars,
                                          tfrecord)


def _event_class():
    """The Event / Summary / Value messages of TensorFlow's event.proto (the fields we write), built with
    the real protobuf library so the bytes are checked by an independent parser."""
    f = descriptor_pb2.FileDescriptorProto(name="ev_test.proto", package="t", syntax="proto3")
    value = f.message_type.add(name="Value")
    value.field.add(name="tag", number=1, type=9, label=1)
    value.field.add(name="simple_value", number=2, type=2, label=1)
    summary = f.message_type.add(name="Summary")
    summary.field.add(name="value", number=1, type=11, label=3, type_name=".t.Value")
    event = f.message_type.add(name="Event")
    event.field.add(name="wall_time", number=1, type=1, label=1)
    event.field.add(name="step", number=2, type=3, label=1)
    event.field.add(name="file_version", number=3, type=9, label=1)
    event.field.add(name="summary", number=5, type=11, label=1, type_name=".t.Summary")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("t.Event"))


def test_crc32c_known_vector():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


def test_tfrecord_framing():
    data = b"hello"
    rec = tfrecord(data)
    assert struct.unpack("<Q", rec[:8])[0] == 5
    assert struct.unpack("<I", rec[8:12])[0] == masked_crc32c(rec[:8])
    assert rec[12:17] == data and struct.unpack("<I", rec[17:])[0] == masked_crc32c(data)


def test_written_events_parse_back_with_protobuf(tmp_path):
    w = EventFileWriter(tmp_path)
    w.scalars(3, {"loss": 1.25, "acc/top1": 0.5})
    w.scalars(7, {"loss": float("nan"), "other": 2.0})  # NaN skipped
    w.close()
    assert "tfevents" in w.path.name
    Event = _event_class()
    events = [Event.FromString(r) for r in read_records(w.path)]
    assert events[0].file_version == "brain.Event:2"
    assert events[1].step == 3 and {v.tag: v.simple_value for v in events[1].summary.value} == {
        "loss": 1.25, "acc/top1": 0.5}
    assert events[2].step == 7 and [v.tag for v in events[2].summary.value] == ["other"]
    assert read_scalars(w.path) == [(3, "loss", 1.25), (3, "acc/top1", 0.5), (7, "other", 2.0)]
    assert all(e.wall_time > 1e9 for e in events)


def test_float_values_are_stored_as_float32(tmp_path):
    w = EventFileWriter(tmp_path)
    w.scalars(1, {"x": 0.1})
    w.close()
    assert read_scalars(w.path)[0][2] == pytest.approx(np.float32(0.1))


def test_corrupted_file_is_detected(tmp_path):
    w = EventFileWriter(tmp_path)
    w.scalars(1, {"x": 1.0})
    w.close()
    data = bytearray(w.path.read_bytes())
    data[-6] ^= 0xFF
    w.path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="CRC"):
        read_records(w.path)
