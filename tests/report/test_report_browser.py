"""The reports opened from disk in headless Chromium and checked through the page itself (DevTools protocol):
no console error or failed load, one row per image, sorting orders rows, every image loaded, the numbers
shown are the run's. A screenshot of each kind goes to the test's temporary folder.

Chromium is Debian's ``chromium`` (``.ci/run`` installs it when missing, and sets MANTRA_REQUIRE_BROWSER=1
so that a missing browser fails instead of skipping)."""

import csv
import json
import os
import shutil

import pytest

from experiments.headless_chromium import Chromium, chromium_path
from mantra_jax import cli
from mantra_jax.eval.metrics import SUMMARY_KEYS
from mantra_jax.eval.robustness import METRICS
from tests.report.conftest import NAMES


def _absent(reason):
    if os.environ.get("MANTRA_REQUIRE_BROWSER", "") not in ("", "0"):
        pytest.fail(f"{reason}, and MANTRA_REQUIRE_BROWSER is set", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


if chromium_path() is None:
    _absent("no Chromium (/usr/bin/chromium or $CHROMIUM)")
try:
    import websocket  # noqa: F401
except ImportError:
    _absent("websocket-client is not installed (the test extra)")

IMAGES_LOADED = """(async () => { const imgs = [...document.images]; imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  return imgs.map(i => [i.getAttribute('src'), i.naturalWidth, i.naturalHeight]); })()"""


def _rows(table):
    return f"[...document.querySelectorAll('#{table} tbody tr')].filter(r => !r.hidden)"


def _column(page, table, key):
    """The visible rows' cells of column ``key``: [(data-v, text)]."""
    return page.evaluate(f"""(() => {{ const i = document.querySelector('#{table} th[data-key="{key}"]').cellIndex;
      return {_rows(table)}.map(r => [r.cells[i].getAttribute('data-v'), r.cells[i].textContent]); }})()""")


def _act(page, table, action):
    """Runs ``action`` (JS) and waits until the table has drawn its rows again (the first action loads the
    rows script: asynchronous)."""
    assert page.evaluate(f"""(async () => {{ const t = document.getElementById('{table}');
      const before = +(t.getAttribute('data-renders') || 0); {action};
      for (let i = 0; i < 500 && +(t.getAttribute('data-renders') || 0) === before; i++)
        await new Promise(r => setTimeout(r, 10));
      return +(t.getAttribute('data-renders') || 0) > before; }})()"""), f"{table} did not redraw after {action}"


def _click(page, table, key):
    _act(page, table, f"""document.querySelector('#{table} th[data-key="{key}"]').click()""")


def _sorted_by_click(page, table, key):
    """Clicks the header twice; returns the column's data-v values after each click."""
    out = []
    for _ in range(2):
        _click(page, table, key)
        out.append([v for v, _ in _column(page, table, key)])
    return out


def _check_sorting(page, table, key):
    up, down = _sorted_by_click(page, table, key)
    for values, direction in ((up, 1), (down, -1)):
        nums = [float(v) for v in values if v]
        assert nums == sorted(nums, reverse=direction < 0), (key, values)
        assert values[len(nums):] == [""] * (len(values) - len(nums)), "not available: always last"
    assert sorted(up) == sorted(down)


@pytest.fixture(scope="module")
def browser():
    with Chromium() as b:
        yield b


@pytest.fixture(scope="module")
def reports(runs, tmp_path_factory):
    root = tmp_path_factory.mktemp("reports")
    out = {}
    for kind in ("detect", "eval", "robustness"):
        shutil.copytree(runs[kind], root / kind)
        assert cli.main(["report", str(root / kind)]) == cli.EXIT_OK
        out[kind] = root / kind
    return out


def _open_clean(browser, folder, tmp_path, kind):
    page = browser.open(folder / "report.html")
    loaded = page.evaluate(IMAGES_LOADED)
    assert loaded and all(w > 0 and h > 0 for _, w, h in loaded), [s for s, w, _ in loaded if not w]
    assert page.problems == []
    page.screenshot(tmp_path / f"{kind}.png")
    assert (tmp_path / f"{kind}.png").stat().st_size > 1000
    return page, loaded


def test_detect_report_in_the_browser(browser, reports, tmp_path):
    page, loaded = _open_clean(browser, reports["detect"], tmp_path, "detect")
    summary = json.loads((reports["detect"] / "summary.json").read_text())
    ok = [r for r in summary["images"] if r["status"] == "ok"]
    assert page.evaluate(f"{_rows('detect-table')}.length") == len(ok) == len(NAMES)
    assert len(loaded) == 3 * len(ok)
    by_name = {r["image"].encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"): r for r in ok}
    names = [t for _, t in _column(page, "detect-table", "name")]
    for key in ("score_mean", "score_max", "score_p99"):
        for name, (v, text) in zip(names, _column(page, "detect-table", key)):
            assert float(v) == by_name[name][key] and text == f"{by_name[name][key]:.4f}"
    _check_sorting(page, "detect-table", "score_max")
    assert "broken.png" in page.evaluate("document.getElementById('detect').textContent")


def test_eval_report_in_the_browser(browser, reports, tmp_path):
    page, loaded = _open_clean(browser, reports["eval"], tmp_path, "eval")
    doc = json.loads((reports["eval"] / "metrics.json").read_text())
    shown = page.evaluate("Object.fromEntries([...document.querySelectorAll('td.metric')]"
                          ".map(td => [td.dataset.key, td.textContent]))")
    for key in SUMMARY_KEYS:
        v = doc["metrics"][key]
        assert shown[key] == (str(v) if key == "n_images" else "n/a" if v is None else f"{v:.4f}"), key
    rows = list(csv.DictReader((reports["eval"] / "per_image.csv").open(encoding="utf-8")))
    assert page.evaluate(f"{_rows('eval-table')}.length") == len(rows) == len(NAMES)
    assert len(loaded) == 4 * len(rows) + 2  # image, mask, heat map, outcome per row; ROC and PR
    by_name = {r["name"].lstrip("'"): r for r in rows}
    names = [t for _, t in _column(page, "eval-table", "name")]
    f1 = [v for v, _ in _column(page, "eval-table", "f1_fixed")]
    nums = [float(v) for v in f1 if v]
    assert nums == sorted(nums) and f1[len(nums):] == [""] * (len(f1) - len(nums))  # worst first by default
    for key in ("f1_fixed", "auc", "iou", "image_score"):
        for name, (_, text) in zip(names, _column(page, "eval-table", key)):
            want = by_name[name][key]
            assert text == ("n/a" if want == "" else f"{float(want):.4f}"), (name, key)
    _check_sorting(page, "eval-table", "auc")
    _click(page, "eval-table", "name")
    texts = [t for _, t in _column(page, "eval-table", "name")]
    assert texts == sorted(texts, key=str.lower)


def test_robustness_report_in_the_browser(browser, reports, tmp_path):
    page, loaded = _open_clean(browser, reports["robustness"], tmp_path, "robustness")
    doc = json.loads((reports["robustness"] / "robustness.json").read_text())
    attacks = {r["attack"] for r in doc["rows"]} - {"none"}
    assert len(loaded) == len(attacks)  # one plot per perturbation
    assert page.evaluate(f"{_rows('robustness-table')}.length") == len(doc["rows"])
    for key in METRICS:
        for row, (v, text) in zip(doc["rows"], _column(page, "robustness-table", key)):
            assert text == ("n/a" if row[key] is None else f"{row[key]:.4f}") and float(v) == row[key]
    _check_sorting(page, "robustness-table", "pixel_f1_fixed")


def test_the_checks_catch_a_missing_picture(browser, reports, tmp_path):
    dest = tmp_path / "broken"
    shutil.copytree(reports["eval"], dest)
    (dest / "report" / "e00002_mask.png").unlink()
    page = browser.open(dest / "report.html")
    loaded = page.evaluate(IMAGES_LOADED)
    assert [s for s, w, _ in loaded if not w] == ["report/e00002_mask.png"]
    assert any("ERR_FILE_NOT_FOUND" in p for p in page.problems)


def test_long_tables_are_paged_and_filtered(browser, tmp_path):
    from mantra_jax.report.page import PAGE_ROWS, Column, document, table

    n = 2 * PAGE_ROWS + 17
    rows = [{"name": f"img{k:04d}", "v": (k * 37) % n} for k in range(n)]
    html, script = table("t", [Column("name", "name", "text"), Column("v", "v")], rows, rows_src="t.js")
    (tmp_path / "t.html").write_text(document("t", [html]), encoding="utf-8")
    (tmp_path / "t.js").write_text(script, encoding="utf-8")
    page = browser.open(tmp_path / "t.html")
    visible = f"{_rows('t')}.map(r => r.cells[0].textContent)"
    assert page.evaluate(visible) == [r["name"] for r in rows[:PAGE_ROWS]]
    assert page.evaluate("document.querySelector('#t-pager .info').textContent") == "page 1 of 3"
    _act(page, "t", "document.querySelector('#t-pager button[data-step=\"1\"]').click()")
    assert page.evaluate(visible) == [r["name"] for r in rows[PAGE_ROWS:2 * PAGE_ROWS]]
    assert page.evaluate("document.querySelector('#t-pager .info').textContent") == "page 2 of 3"
    _act(page, "t", "const f = document.getElementById('t-filter'); f.value = 'img01'; "
                    "f.dispatchEvent(new Event('input'))")
    assert page.evaluate(visible) == [f"img{k:04d}" for k in range(100, 200)]
    _act(page, "t", "const f = document.getElementById('t-filter'); f.value = ''; f.dispatchEvent(new Event('input'))")
    _click(page, "t", "v")
    assert page.evaluate(f"{_rows('t')}.map(r => +r.cells[1].dataset.v)") == list(range(PAGE_ROWS))  # all rows
    assert page.problems == []
