"""The benchmark loop: masks at image size, failures and skips recorded, outputs written."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from mantra_jax.eval.pairs import Pair
from mantra_jax.eval.runner import ROW_COLUMNS, json_safe, rows_csv, run_pairs, write_results
from tests.eval.test_robustness import bench, redness  # noqa: F401 (fixture)


def test_run_pairs_scores_each_image_with_the_metrics_module(bench):  # noqa: F811
    run = run_pairs(bench, redness)
    assert run.summary["n_images"] == 3 and run.summary["pixel_auc"] == 1.0
    assert run.summary["image_auc"] == 1.0
    assert [r["forged"] for r in run.rows] == [True, True, False]
    assert all(r["mask_size_matches"] for r in run.rows) and not run.failed and not run.skipped


def test_unreadable_images_are_recorded_and_skipped(bench, tmp_path):  # noqa: F811
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    run = run_pairs([*bench, Pair(bad, None)], redness)
    assert run.summary["n_images"] == 3
    assert len(run.failed) == 1 and "bad.png" in run.failed[0]["reason"]


def test_mismatched_masks_are_resized_or_skipped(bench, tmp_path):  # noqa: F811
    small = tmp_path / "small_gt.png"
    Image.fromarray(np.full((16, 20), 255, np.uint8)).save(small)
    pairs = [Pair(bench[0].image, small)]
    resized = run_pairs(pairs, redness)
    assert resized.rows[0]["mask_size_matches"] is False and resized.rows[0]["forged_fraction"] == 1.0
    skipped = run_pairs(pairs, redness, on_mismatch="skip")
    assert skipped.summary["n_images"] == 0 and "16x20" in skipped.skipped[0]["reason"]


def test_transform_is_applied_to_image_and_mask(bench):  # noqa: F811
    flip = lambda image, mask, k: (image[:, ::-1].copy(), None if mask is None else mask[:, ::-1].copy())  # noqa: E731
    assert run_pairs(bench, redness, transform=flip).summary["pixel_auc"] == 1.0
    wrong = lambda image, mask, k: (image[:, ::-1].copy(), mask)  # noqa: E731
    assert run_pairs(bench, redness, transform=wrong).summary["pixel_auc"] < 1.0


def test_write_results_writes_json_csv_and_markdown(bench, tmp_path):  # noqa: F811
    run = run_pairs(bench, redness)
    write_results(tmp_path / "out", run, {"checkpoint": "x"}, name="toy")
    doc = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert doc["metrics"]["pixel_auc"] == 1.0 and doc["run"]["checkpoint"] == "x"
    assert "pixel_auc" in doc["conventions"]
    rows = list(csv.DictReader((tmp_path / "out" / "per_image.csv").open()))
    assert len(rows) == 3 and tuple(rows[0]) == ROW_COLUMNS and rows[2]["auc"] == ""
    assert (tmp_path / "out" / "metrics.md").read_text().startswith("| benchmark |")


def test_json_safe_and_rows_csv_handle_nan_and_numpy_scalars():
    assert json_safe({"a": float("nan"), "b": [np.float32(0.5), np.int64(3), np.bool_(True)]}) == \
        {"a": None, "b": [0.5, 3, True]}
    assert rows_csv([{"x": float("nan"), "y": 0.1234567891}], ("x", "y")) == '"x","y"\n"","0.123457"\n'


def test_records_through_json_resume_to_the_same_run_without_predicting_again(bench):  # noqa: F811
    logged = []
    whole = run_pairs(bench, redness, on_record=logged.append)
    done = {r["key"]: json.loads(json.dumps(r)) for r in logged[:2]}  # as read back from a progress log
    calls = []

    def counting(image):
        calls.append(1)
        return redness(image)
    resumed = run_pairs(bench, counting, done=done)
    assert len(calls) == len(bench) - 2
    assert resumed.summary == whole.summary
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.rows] == \
        [{k: v for k, v in r.items() if k != "seconds"} for r in whole.rows]


def test_a_progress_log_write_on_a_full_disk_names_the_log_and_the_cause(tmp_path):
    import errno

    from mantra_jax.eval.runner import append_record

    class FullLog:
        name = str(tmp_path / "progress.jsonl")

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self):
            pass

    with pytest.raises(OSError, match=r"cannot write .*progress\.jsonl: no space left on the device; the images"):
        append_record(FullLog(), {"key": "k"})
