"""``mantra eval``'s progress log after a kill mid-write: a torn tail is cut (and said, in one line) before
anything is appended, so no record is glued onto it and no finished image is predicted twice."""

from __future__ import annotations

import json

from mantra_jax import cli
from tests.cli.test_hostile_inputs import _interrupt_on_call, _mask, _pairs_csv, _png, _run, ckpt  # noqa: F401


def _setup(tmp_path, capsys, ckpt):  # noqa: F811
    rows = [(_png(tmp_path / f"t{k}.png", 30 + k), _mask(tmp_path / f"t{k}_gt.png")) for k in range(3)]
    base = ["eval", "--pairs", _pairs_csv(tmp_path / "p.csv", rows), "-c", ckpt]
    assert _run(capsys, *base, "-o", tmp_path / "whole")[0] == cli.EXIT_OK
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())["metrics"]
    return base, whole


def _all_lines_json(path):
    text = path.read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_torn_last_record_is_cut_and_only_that_image_is_redone(ckpt, tmp_path, capsys, monkeypatch):  # noqa: F811
    base, whole = _setup(tmp_path, capsys, ckpt)
    log = tmp_path / "whole" / "progress.jsonl"
    data = log.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    log.write_bytes(data[: last + (len(data) - last) // 2])  # the last record cut half-way, as by a kill
    calls = _interrupt_on_call(monkeypatch, 10**9)
    code, err = _run(capsys, *base, "-o", tmp_path / "whole")
    assert code == cli.EXIT_OK and len(calls) == 1
    notes = [line for line in err.splitlines() if line.startswith("mantra eval: progress.jsonl")]
    assert len(notes) == 1 and "dropped a torn last line" in notes[0]
    assert len(_all_lines_json(log)) == 1 + 3  # header + one record per image, none glued together
    assert json.loads((tmp_path / "whole" / "metrics.json").read_text())["metrics"] == whole
    calls.clear()
    code, err = _run(capsys, *base, "-o", tmp_path / "whole")  # finished: nothing is predicted again
    assert code == cli.EXIT_OK and calls == [] and "progress.jsonl:" not in err


def test_torn_header_from_a_crash_in_the_first_write_starts_the_log_again(ckpt, tmp_path, capsys, monkeypatch):  # noqa: F811
    base, whole = _setup(tmp_path, capsys, ckpt)
    log = tmp_path / "whole" / "progress.jsonl"
    log.write_bytes(log.read_bytes()[:25])  # only a prefix of the header line
    calls = _interrupt_on_call(monkeypatch, 10**9)
    code, err = _run(capsys, *base, "-o", tmp_path / "whole")
    assert code == cli.EXIT_OK and len(calls) == 3
    assert [line for line in err.splitlines() if line.startswith("mantra eval: progress.jsonl")] == [
        "mantra eval: progress.jsonl: its header was torn by an interrupted first write (25 bytes); "
        "starting the log again"]
    assert len(_all_lines_json(log)) == 1 + 3
    assert json.loads((tmp_path / "whole" / "metrics.json").read_text())["metrics"] == whole


def test_a_first_line_that_is_no_header_is_still_refused(ckpt, tmp_path, capsys):  # noqa: F811
    base, _ = _setup(tmp_path, capsys, ckpt)
    (tmp_path / "whole" / "progress.jsonl").write_text("something else entirely")
    code, err = _run(capsys, *base, "-o", tmp_path / "whole")
    assert code == cli.EXIT_USAGE and "not a mantra eval progress log" in err
