import json

from mantra_jax.train.tensorboard import read_scalars
from mantra_jax.train.writers import MetricWriter, format_table, read_jsonl


def test_metrics_go_to_jsonl_and_tensorboard(tmp_path):
    w = MetricWriter(tmp_path)
    w.write(1, "train", {"loss": 2.0})
    w.write(2, "val", {"loss": 1.5, "auc": float("nan")})
    w.close()
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert [(r["step"], r["split"], r["loss"]) for r in rows] == [(1, "train", 2.0), (2, "val", 1.5)]
    assert rows[1]["auc"] is None  # NaN written as null: the file stays valid JSON
    (val_file,) = (tmp_path / "tensorboard" / "val").iterdir()
    assert read_scalars(val_file) == [(2, "loss", 1.5)]


def test_truncate_after_drops_later_steps(tmp_path):
    w = MetricWriter(tmp_path)
    for s in range(1, 5):
        w.write(s, "train", {"loss": float(s)})
    w.truncate_after(2)
    w.write(3, "train", {"loss": 30.0})
    w.close()
    assert [(r["step"], r["loss"]) for r in read_jsonl(tmp_path / "metrics.jsonl")] == [(1, 1.0), (2, 2.0), (3, 30.0)]


def test_disabled_writer_writes_nothing(tmp_path):
    w = MetricWriter(tmp_path / "x", enabled=False)
    w.write(1, "train", {"loss": 1.0})
    assert not (tmp_path / "x").exists()


def test_format_table_aligns_columns_and_marks_missing():
    text = format_table({"a": {"loss": 1.23456}, "bb": {"loss": None, "f1": float("nan")}}, ["loss", "f1"])
    lines = text.splitlines()
    assert len({len(line) for line in lines}) == 1
    assert "1.2346" in lines[2] and "-" in lines[3] and "nan" in lines[3]
    json.dumps(text)
