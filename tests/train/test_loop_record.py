"""The loop's records serialise to the dicts the checkpoints and summary.json hold."""

import dataclasses
import json

from mantra_jax.train.loop_record import LoopRecord, RunSummary, Timing

SUMMARY_KEYS = ["workdir", "steps", "first_train_loss", "last_train_loss", "val", "lr_scale", "best_step",
                "stopped", "timing", "memory", "data_state"]
TIMING_KEYS = ["compile_s", "eval_s", "write_s", "checkpoint_s", "input_wait_s", "total_s", "steps_s", "steps_run",
               "samples", "samples_per_s", "input_wait_share", "eval_and_write_share"]


def test_a_record_before_the_first_log_holds_no_last_train_loss():
    assert LoopRecord().to_dict() == {"first_train_loss": None, "last_val": None}


def test_a_record_round_trips_through_its_checkpoint_json_keeping_unknown_keys():
    saved = {"first_train_loss": 0.7, "last_val": {"loss": 0.5, "lr_scale": 1.0}, "last_train_loss": 0.6,
             "older": [1, 2]}
    record = LoopRecord.from_dict(json.loads(json.dumps(saved)))
    assert record.last_train_loss == 0.6 and record.last_val["loss"] == 0.5
    assert json.dumps(record.to_dict()) == json.dumps(saved)


def test_the_summary_serialises_to_the_summary_json_keys(tmp_path):
    timing = Timing(compile_s=1.0).report(total_s=4.0, steps_s=2.0, steps_run=2, samples=8)
    summary = RunSummary(workdir=str(tmp_path), steps=2, first_train_loss=0.7, last_train_loss=0.6, val=None,
                         lr_scale=1.0, best_step=None, stopped="done", timing=timing, memory=None, data_state=None)
    assert list(summary.to_dict()) == SUMMARY_KEYS
    assert list(timing) == TIMING_KEYS
    summary.save(tmp_path / "summary.json")
    assert json.loads((tmp_path / "summary.json").read_text()) == json.loads(json.dumps(summary.to_dict()))


def test_throughput_counts_only_the_time_not_spent_evaluating_writing_or_checkpointing():
    timing = Timing(eval_s=1.0, write_s=0.5, checkpoint_s=0.5, input_wait_s=1.0)
    report = timing.report(total_s=5.0, steps_s=4.0, steps_run=2, samples=8)
    assert report["samples_per_s"] == 4.0 and report["input_wait_share"] == 0.25
    assert report["eval_and_write_share"] == 0.3
    assert Timing().report(total_s=1.0, steps_s=1.0, steps_run=0, samples=0)["samples_per_s"] is None
    assert [f.name for f in dataclasses.fields(Timing)] == TIMING_KEYS[:5]
