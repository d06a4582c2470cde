"""``mantra report``: the page made from a run folder's files, escaping, output rules, partial runs."""

import csv
import html
import json
import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from experiments import report_fakes as fakes
from mantra_jax import cli
from mantra_jax.eval.metrics import SUMMARY_KEYS
from mantra_jax.io.outputs import read_manifest
from mantra_jax.io.thumbnails import THUMB_SIDE
from tests.report.conftest import NAMES


def _report(folder, capsys):
    code = cli.main(["report", str(folder)])
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, err


@pytest.fixture
def made(runs, tmp_path, capsys):
    """A copy of each run folder with its report made."""
    out = {}
    for kind in ("detect", "eval", "robustness"):
        dest = tmp_path / kind
        shutil.copytree(runs[kind], dest)
        code, _ = _report(dest, capsys)
        assert code == cli.EXIT_OK
        out[kind] = dest
    return out


def _page(folder):
    return (folder / "report.html").read_text(encoding="utf-8")


def _rows_script(folder, table):
    """The rows of a table's script file (report/<table>.js): a JSON array after the assignment."""
    text = (folder / "report" / f"{table}.js").read_text(encoding="utf-8")
    prefix = f'window.MANTRA_ROWS=window.MANTRA_ROWS||{{}};window.MANTRA_ROWS["{table}"]='
    assert text.startswith(prefix) and text.endswith(";\n")
    return json.loads(text[len(prefix):-2])


def _n_rows(folder, table):
    """Rows of a table in the page's HTML (the first page) and in its rows script (all rows)."""
    body = _page(folder).split(f'id="{table}"')[1].split("<tbody>")[1].split("</tbody>")[0]
    return body.count("<tr>"), len(_rows_script(folder, table))


def test_every_name_is_escaped_and_shown(made):
    assert all("Partial results" not in _page(f) for f in made.values())
    for kind in ("detect", "eval"):
        text = _page(made[kind])
        assert "a<b&c" not in text and 'quote"d' not in text  # never raw markup
        assert "a&lt;b&amp;c.png" in text and "quote&quot;d.png" in text and "x&#x27;y.png" in text
        assert "caf\u00e9 \u5199\u771f.png" in text and "=formula.png" in text  # unicode as text, no CSV guard
        assert "raw\\xe9.png" in text  # the byte of a name that is not UTF-8, shown escaped


def test_one_row_per_image_and_headline_numbers_from_metrics_json(made, runs):
    detect = _page(made["detect"])
    assert _n_rows(made["detect"], "detect-table") == (len(NAMES), len(NAMES))  # the broken file is listed as failed instead
    assert "broken.png: not a readable image" in detect
    doc = json.loads((made["eval"] / "metrics.json").read_text())
    text = _page(made["eval"])
    shown = dict(re.findall(r'data-key="(\w+)" data-v="([^"]*)">', text))
    for key in SUMMARY_KEYS:
        value = doc["metrics"][key]
        assert shown[key] == ("" if value is None else repr(float(value))), key
    rows = list(csv.DictReader((made["eval"] / "per_image.csv").open(encoding="utf-8")))
    assert _n_rows(made["eval"], "eval-table") == (len(rows), len(rows)) and len(rows) == len(NAMES)
    assert "pooled ROC AUC" in text and (made["eval"] / "report" / "roc.svg").is_file()


def test_robustness_has_one_plot_per_perturbation(made):
    doc = json.loads((made["robustness"] / "robustness.json").read_text())
    attacks = [a for a in dict.fromkeys(r["attack"] for r in doc["rows"]) if a != "none"]
    plots = sorted(p.name for p in (made["robustness"] / "report").glob("robustness_*.svg"))
    assert plots == [f"robustness_{k}.svg" for k in range(len(attacks))]
    svg = (made["robustness"] / "report" / plots[0]).read_text()
    refs = re.findall(r'href="([^"]*)"', svg)
    assert "<svg" in svg and refs and all(r.startswith("#") for r in refs)  # only references within itself


def test_no_external_resource_and_every_file_in_the_manifest(made):
    for folder in made.values():
        text = _page(folder)
        refs = re.findall(r'(?:src|href)="([^"]*)"', text)
        assert refs and all(r.startswith("report/") for r in refs), refs
        assert "http" not in text.replace("http-equiv", "")
        listed = read_manifest(folder)
        written = {p.relative_to(folder).as_posix() for p in (folder / "report").rglob("*") if p.is_file()}
        assert "report.html" in listed and written and written <= listed


def test_thumbnails_are_bounded_whatever_the_input_size(tmp_path, capsys):
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (700, 1100, 3), dtype=np.uint8)).save(big)
    fakes.make_detect_run(tmp_path / "out", [big])
    assert _report(tmp_path / "out", capsys)[0] == cli.EXIT_OK
    sizes = [Image.open(p).size for p in (tmp_path / "out" / "report").glob("*.png")]
    assert len(sizes) == 3 and all(max(s) == THUMB_SIDE for s in sizes)


def test_a_users_file_is_never_overwritten(runs, tmp_path, capsys):
    for user_file in ("report.html", "report/notes.txt"):
        dest = tmp_path / user_file.replace("/", "_")
        shutil.copytree(runs["detect"], dest)
        (dest / user_file).parent.mkdir(exist_ok=True)
        (dest / user_file).write_text("mine")
        code, err = _report(dest, capsys)
        assert code == cli.EXIT_USAGE and "not written by mantra" in err and len(err.strip().splitlines()) == 1
        assert (dest / user_file).read_text() == "mine" and not (dest / "report" / "d00000_image.png").exists()
    dest = tmp_path / "again"
    shutil.copytree(runs["detect"], dest)
    assert _report(dest, capsys)[0] == cli.EXIT_OK and _report(dest, capsys)[0] == cli.EXIT_OK  # ours: replaced


@pytest.mark.parametrize("what", ["missing", "file", "empty"])
def test_a_folder_without_a_run_is_one_line_and_exit_2(tmp_path, capsys, what):
    target = tmp_path / "x"
    if what == "file":
        target.write_text("x")
    elif what == "empty":
        target.mkdir()
    code, err = _report(target, capsys)
    assert code == cli.EXIT_USAGE and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x" / "report.html").exists() and not (tmp_path / "x" / ".mantra_outputs.jsonl").exists()


def test_interrupted_runs_are_said_to_be_partial(runs, tmp_path, capsys):
    fakes.make_detect_run(tmp_path / "d", [p for p, _ in runs["photos"]], interrupted_after=2)
    fakes.make_eval_run(tmp_path / "e", runs["photos"][:3], complete=False)
    for folder in (tmp_path / "d", tmp_path / "e"):
        assert _report(folder, capsys)[0] == cli.EXIT_OK
        assert "Partial results" in _page(folder)
    assert f"2 of {len(NAMES)} image(s) processed" in _page(tmp_path / "d")


def test_an_eval_killed_before_metrics_json_is_rebuilt_from_its_progress_log(runs, tmp_path, capsys):
    from mantra_jax.eval.pairs import Pair
    from mantra_jax.eval.runner import append_record, run_pairs, start_progress

    folder = tmp_path / "killed"
    folder.mkdir()
    start_progress(folder / "progress.jsonl", {"mask_rule": "bright"})
    with open(folder / "progress.jsonl", "a", encoding="utf-8") as log:
        run = run_pairs([Pair(i, m) for i, m in runs["photos"][:3]], fakes.fake_predict,
                        on_record=lambda r: append_record(log, r))
        log.write('{"key": "torn')  # a kill mid-write
    assert _report(folder, capsys)[0] == cli.EXIT_OK
    text = _page(folder)
    assert "rebuilt from progress.jsonl" in text and _n_rows(folder, "eval-table") == (3, 3)
    shown = dict(re.findall(r'data-key="(\w+)" data-v="([^"]*)">', text))
    assert float(shown["pixel_f1_fixed"]) == run.summary["pixel_f1_fixed"]
    assert "without a saved map" in text  # these records name no map


def test_an_old_eval_folder_without_maps_still_reports(runs, tmp_path, capsys):
    dest = tmp_path / "old"
    shutil.copytree(runs["eval"], dest)
    shutil.rmtree(dest / "maps")
    assert _report(dest, capsys)[0] == cli.EXIT_OK
    text = _page(dest)
    assert f"{len(NAMES)} image(s) without a saved map" in text and "Not available" in text


def test_the_page_text_is_html_escaped_only_once():
    from mantra_jax.report.page import Column, esc, src, table

    assert esc('<a href="x">&</a>') == "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
    assert html.unescape(esc(os.fsdecode(b"a\xff"))) == "a\\xff"
    assert src("report/a b#c.png") == "report/a%20b%23c.png"
    # a name that would end a script element stays data: "<" is escaped in the rows script
    _, script = table("t", [Column("name", "name", "text")], [{"name": "</script><b>x"}], rows_src="t.js")
    assert "<" not in script and json.loads(script.split("=", 2)[2][:-2])[0]["n"] == "</script><b>x"


def test_names_recorded_in_a_run_never_lead_outside_its_folder(runs, tmp_path, capsys):
    dest = tmp_path / "d"
    shutil.copytree(runs["detect"], dest)
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "outside.png")
    doc = json.loads((dest / "summary.json").read_text())
    for r in doc["images"]:
        if r["status"] == "ok":
            r["heatmap_file"] = "../outside.png"
            r["overlay_file"] = str(tmp_path / "outside.png")
    (dest / "summary.json").write_text(json.dumps(doc))
    assert _report(dest, capsys)[0] == cli.EXIT_OK
    made = sorted(p.name for p in (dest / "report").glob("*.png"))
    assert made and all(n.endswith("_image.png") for n in made)
    assert _page(dest).count("heat map: not available") == len(NAMES)
    ev = tmp_path / "e"
    shutil.copytree(runs["eval"], ev)
    text = (ev / "per_image.csv").read_text(encoding="utf-8")
    (ev / "per_image.csv").write_text(re.sub(r'"maps/([0-9a-f]+)\.npz"', r'"maps/../maps/\1.npz"', text),
                                      encoding="utf-8")
    assert _report(ev, capsys)[0] == cli.EXIT_OK
    assert f"{len(NAMES)} image(s) without a saved map" in _page(ev)
