"""How fast a large report opens: a fake 5,000-image eval run folder, its report, and headless Chromium.

    python experiments/bench_report.py --images 5000 --workdir /tmp/bench_report

Makes the folder with the writers of ``mantra eval`` (``experiments.report_fakes``: no model; 48x64
photos, each with its saved map), builds ``report.html`` (``mantra report``, timed), then opens the page
from disk ``--repeats`` times, each in a fresh tab, and prints JSON lines and a summary: the page's own
navigation timing (``domContentLoaded`` and ``load`` event, milliseconds from the start of navigation),
the time until the thumbnails on screen (1280x900 window) have loaded once the table is scrolled into
view, and the first sort (loading every row's data, sorting the 5,000, drawing page one). The table shows one page of
``mantra_jax.report.page.PAGE_ROWS`` rows (the others are hidden, thumbnails lazy), which is what keeps it
fast. ``--workdir`` is reused when it already holds a run of that size.
"""

from __future__ import annotations

import json
import pathlib
import statistics
import sys
import time

from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("images", 5000, "images in the fake run")
flags.DEFINE_string("workdir", "/tmp/bench_report", "folder for the photos and the run (reused)")
flags.DEFINE_integer("repeats", 5, "page openings timed (a fresh tab each)")

FIRST_PAGE = """(async () => {
  const nav = performance.getEntriesByType('navigation')[0];
  const out = {dom_content_loaded_ms: nav.domContentLoadedEventEnd, load_ms: nav.loadEventEnd};
  const t = document.getElementById('eval-table');
  const frame = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  t.scrollIntoView(); await frame();
  let t0 = performance.now();
  const imgs = [...t.querySelectorAll('tbody img')].filter(i => i.getBoundingClientRect().top < innerHeight);
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  out.thumbnails_on_screen = imgs.length; out.thumbnails_loaded = imgs.filter(i => i.naturalWidth > 0).length;
  out.thumbnails_ms = performance.now() - t0;
  t0 = performance.now();
  t.querySelector('th[data-key="auc"]').click();  // the first sort loads every row, sorts, draws page 1
  while (!t.getAttribute('data-renders')) await new Promise(r => setTimeout(r, 5));
  await frame();
  out.first_sort_ms = performance.now() - t0;
  out.rows_after_sort = document.getElementById('eval-table-count').textContent;
  out.rows_in_dom = t.tBodies[0].rows.length;
  return out; })()"""


def _make_run(root: pathlib.Path, n: int) -> pathlib.Path:
    from experiments import report_fakes as fakes

    run = root / f"eval_{n}"
    if (run / "metrics.json").is_file():
        return run
    t0 = time.perf_counter()
    photos = fakes.write_photos(root / f"photos_{n}", [f"img{k:05d}" for k in range(n)])
    fakes.make_eval_run(run, photos)
    print(json.dumps({"made_run": str(run), "images": n, "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
    return run


def main(argv):
    del argv
    from experiments.headless_chromium import Chromium
    from mantra_jax import cli

    root = pathlib.Path(FLAGS.workdir)
    run = _make_run(root, FLAGS.images)
    t0 = time.perf_counter()
    if cli.main(["report", str(run)]) != cli.EXIT_OK:
        sys.exit("bench_report: the report could not be made")
    build_s = time.perf_counter() - t0
    page_bytes = (run / "report.html").stat().st_size
    print(json.dumps({"report_build_s": round(build_s, 1), "page_bytes": page_bytes}), flush=True)
    results = []
    with Chromium() as browser:
        for k in range(FLAGS.repeats):
            page = browser.open(run / "report.html")
            info = page.evaluate(FIRST_PAGE)
            info["wall_s"] = round(time.perf_counter() - page.t_navigate, 3)  # navigation to sorted
            info["problems"] = page.problems
            results.append(info)
            print(json.dumps({"repeat": k, **info}), flush=True)
    med = lambda key: round(statistics.median(r[key] for r in results), 1)  # noqa: E731
    summary = {"images": FLAGS.images, "rows_after_sort": results[0]["rows_after_sort"],
               "rows_in_dom": results[0]["rows_in_dom"], "page_bytes": page_bytes,
               "rows_script_bytes": (run / "report" / "eval-table.js").stat().st_size,
               "report_build_s": round(build_s, 1), "median_load_ms": med("load_ms"),
               "max_load_ms": round(max(r["load_ms"] for r in results), 1),
               "median_dom_content_loaded_ms": med("dom_content_loaded_ms"),
               "median_thumbnails_ms": med("thumbnails_ms"), "median_first_sort_ms": med("first_sort_ms"),
               "all_thumbnails_loaded": all(r["thumbnails_loaded"] == r["thumbnails_on_screen"] for r in results),
               "problems": sorted({p for r in results for p in r["problems"]})}
    print(json.dumps({"summary": summary}), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root (see __init__.py)
    from experiments.script_main import script_main

    script_main(main)
