"""Data-pipeline throughput: IMC and forgery samples per second, and the per-type manipulation costs.

Measures, on the patch bank of one split (a photo folder, or scikit-image's photos by default):

* ``direct``: samples/s of ``source[i]`` in a plain loop (one core, no grain);
* ``loader``: samples/s of ``make_loader`` batches for each worker count in ``--workers`` (0 = in-process),
  after one warm-up batch (the start-up time, process spawn included, is reported apart);
* forgery cost per kind (ms per sample, direct);
* the catalogue's per-type cost on one patch (``time_types``), slowest first.

Prints one JSON document (and writes it to ``--out`` when given). Example:

    python experiments/bench_data.py --samples=64 --workers=0,1,2 --out=/tmp/bench_data.json
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import sys
import tempfile
import time
from typing import Any

import numpy as np
from absl import flags

from mantra_jax.data.forgeries import FORGERY_KINDS
from mantra_jax.data.forgery_source import ForgerySource
from mantra_jax.data.imc_source import IMCSource
from mantra_jax.data.patches import PatchBank
from mantra_jax.data.pipeline import make_loader

FLAGS = flags.FLAGS
flags.DEFINE_string("photos", None, "Photo folder (recursive); default: scikit-image's bundled photos.")
flags.DEFINE_enum("split", "train", ["train", "validation", "test"], "Split whose patches are used.")
flags.DEFINE_integer("samples", 64, "Samples timed per measurement (rounded up to whole batches).")
flags.DEFINE_integer("batch_size", 16, "Batch size of the loader measurements.")
flags.DEFINE_list("workers", ["0", "1", str(os.cpu_count() or 1)], "Worker counts to measure (0 = in-process).")
flags.DEFINE_integer("type_repeats", 3, "Timed repeats per manipulation type.")
flags.DEFINE_integer("kind_samples", 8, "Samples timed per forgery kind.")
flags.DEFINE_integer("seed", 0, "Seed of the sources and loaders.")
flags.DEFINE_string("out", None, "Write the JSON here too (atomically).")


def _direct_rate(source: Any, count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        source[i]
    return count / (time.perf_counter() - start)


def _loader_rate(source: Any, batch_size: int, samples: int, workers: int, seed: int) -> dict[str, float]:
    start = time.perf_counter()
    iterator = iter(make_loader(source, batch_size=batch_size, seed=seed, num_epochs=None, worker_count=workers))
    next(iterator)
    startup = time.perf_counter() - start
    batches = max(1, -(-samples // batch_size))
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    elapsed = time.perf_counter() - start
    if hasattr(iterator, "close"):
        iterator.close()
    return {"workers": workers, "samples_per_s": batches * batch_size / elapsed, "startup_s": startup}


def _kind_costs(bank: PatchBank, count: int, seed: int) -> dict[str, float]:
    costs = {}
    for kind in FORGERY_KINDS:
        source = ForgerySource(bank, bank.split, seed=seed, mix={kind: 1.0}, num_records=count)
        costs[kind] = 1000.0 / _direct_rate(source, count)
    return costs


def _write_atomic(path: str, text: str) -> None:
    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, target)


def main(argv: list[str]) -> None:
    del argv
    from mantra_jax.manipulations import time_types

    workers = [int(w) for w in FLAGS.workers]
    start = time.perf_counter()
    bank = PatchBank.build(FLAGS.photos, FLAGS.split)
    bank_s = time.perf_counter() - start
    count = max(FLAGS.samples, 1)
    report: dict[str, Any] = {
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "settings": {"photos": FLAGS.photos or "skimage", "split": FLAGS.split, "samples": count,
                     "batch_size": FLAGS.batch_size, "seed": FLAGS.seed},
        "bank": {"patches": len(bank), "photos": len(bank.keys), "build_s": bank_s},
    }
    for name, source in (("imc", IMCSource(bank, FLAGS.split, seed=FLAGS.seed)),
                         ("forgery", ForgerySource(bank, FLAGS.split, seed=FLAGS.seed))):
        report[name] = {"direct_samples_per_s": _direct_rate(source, count),
                        "loader": [_loader_rate(source, FLAGS.batch_size, count, w, FLAGS.seed) for w in workers]}
    report["forgery"]["ms_per_kind"] = _kind_costs(bank, FLAGS.kind_samples, FLAGS.seed)
    table = time_types(bank.patches[0], FLAGS.type_repeats)
    slowest = sorted(table, key=lambda item: -item[1])
    report["types"] = {
        "image": list(bank.patches[0].shape),
        "mean_ms": 1000.0 * float(np.mean([s for _, s in table])),
        "slowest_first_ms": [[n, 1000.0 * s] for n, s in slowest],
    }
    text = json.dumps(report, indent=1)
    print(text)
    if FLAGS.out:
        _write_atomic(FLAGS.out, text)


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root (see __init__.py)
    from experiments.script_main import script_main

    script_main(main)
