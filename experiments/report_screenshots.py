"""The README's report screenshots: fake detect / eval / robustness runs (``experiments.report_fakes``, no
model), their reports, and a 1500x1000 view of each in headless Chromium, scaled to 60 % and saved as
128-colour PNGs.

    python experiments/report_screenshots.py --out docs --workdir /tmp/report_shots
"""

from __future__ import annotations

import pathlib
import shutil
import sys

from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "docs", "folder of the PNGs (report_detect.png, report_eval.png, report_robustness.png)")
flags.DEFINE_string("workdir", "/tmp/report_shots", "folder for the fake runs (replaced)")

ALL_LOADED = """(async () => { const imgs = [...document.images]; imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; }))); })()"""


def main(argv):
    del argv
    from PIL import Image

    from experiments import report_fakes as fakes
    from experiments.headless_chromium import Chromium
    from mantra_jax import cli

    root = pathlib.Path(FLAGS.workdir)
    shutil.rmtree(root, ignore_errors=True)
    photos = fakes.write_photos(root / "photos", ["street", "harbour", "market", "garden", "portrait", "tower"],
                                size=(120, 160), seed=3)
    fakes.make_detect_run(root / "detect", [p for p, _ in photos])
    fakes.make_eval_run(root / "eval", photos)
    fakes.make_robustness_run(root / "robustness", photos, {"jpeg": (95, 85, 75, 65, 55), "gaussian_blur": (3, 7, 11),
                                                            "gaussian_noise": (3, 7, 11)})
    out = pathlib.Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    with Chromium(width=1500, height=1000) as browser:
        for kind in ("detect", "eval", "robustness"):
            if cli.main(["report", str(root / kind)]) != cli.EXIT_OK:
                raise SystemExit(f"report_screenshots: no report for {kind}")
            page = browser.open(root / kind / "report.html")
            page.evaluate(ALL_LOADED)
            shot = root / f"{kind}.png"
            page.screenshot(shot, full_page=False)
            if page.problems:
                raise SystemExit(f"report_screenshots: {kind}: {page.problems}")
            im = Image.open(shot).convert("RGB")
            im = im.resize((im.width * 3 // 5, im.height * 3 // 5), Image.LANCZOS).quantize(128)
            im.save(out / f"report_{kind}.png", optimize=True)
            print(f"{out / f'report_{kind}.png'}: {(out / f'report_{kind}.png').stat().st_size} bytes")


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root (see __init__.py)
    from experiments.script_main import script_main

    script_main(main)
