"""Issue 26, items 1 and 2: file names that are not UTF-8, hold a carriage return or start like a
spreadsheet formula: every image processed, the summary written, each name one escaped, inert CSV cell."""

from __future__ import annotations

import csv
import io
import json
import os

from mantra_jax import cli
from mantra_jax.eval.runner import rows_csv
from tests.cli.test_hostile_inputs import _png, _run, ckpt  # noqa: F401

NAMES = ["plain.png", "=cmd|' -C calc'!A0.png", "+1.png", "-2.png", "@sum.png", "line\rbreak.png",
         "comma, \"quote\".png"]


def test_names_that_are_not_utf8_or_look_like_formulas_keep_the_summary(ckpt, tmp_path, capsys):  # noqa: F811
    folder = tmp_path / "in"
    for k, name in enumerate(NAMES):
        _png(folder / name, k)
    raw = os.path.join(os.fsencode(folder), b"caf\xe9.png")  # Latin-1 bytes: not valid UTF-8
    os.rename(_png(folder / "tmp.png", 99), raw)
    code, err = _run(capsys, "detect", folder, "-c", ckpt, "-o", tmp_path / "out")
    assert code == cli.EXIT_OK, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["complete"] and len(summary["images"]) == len(NAMES) + 1
    text = (tmp_path / "out" / "summary.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == len(NAMES) + 1  # one row per image: the \r name does not split a row
    cells = [v for r in rows for v in r.values()]
    assert not any(c.startswith(("=", "+", "@")) for c in cells)
    assert not any(c.startswith("-") and not _is_number(c) for c in cells)
    assert any("caf\\xe9.png" in c for c in cells)  # the byte kept, written escaped
    assert any(c.endswith("=cmd|' -C calc'!A0.png") for c in cells)


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def test_rows_csv_quotes_every_field_and_neutralises_formulas_but_not_numbers():
    text = rows_csv([{"name": "=1+1", "score": -0.5, "n": 3, "path": "a\rb"}], ["name", "score", "n", "path"])
    assert text == '"name","score","n","path"\n"\'=1+1","-0.5","3","a\rb"\n'


def test_entries_named_like_images_that_are_no_image_files_are_each_named_in_one_line(ckpt, tmp_path, capsys):  # noqa: F811
    folder = tmp_path / "in"
    _png(folder / "good.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    (folder / "zero.png").symlink_to("/dev/zero")
    os.mkfifo(folder / "fifo.png")
    (folder / "dir.png").mkdir()
    (folder / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    code, err = _run(capsys, "detect", folder, "-c", ckpt, "-o", tmp_path / "out")
    assert code == cli.EXIT_INPUTS_FAILED
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["stem"] for r in summary["images"]] == ["good"]
    reasons = {"loop.png": "a symbolic link loop", "zero.png": "a device (through a symbolic link), not an image",
               "fifo.png": "a FIFO, not an image", "dir.png": "a folder, not an image",
               "dangling.png": "a dangling symbolic link"}
    problems = summary["input_problems"]
    assert len(problems) == len(reasons)
    for name, reason in reasons.items():
        assert [p for p in problems if f"{name}: {reason}" in p], (name, problems)
        assert len([line for line in err.splitlines() if f"{name}: " in line]) == 1, (name, err)
