"""The paper's Section 3 studies: train every column of Table 2, 3, 4 or 5 and print the table.

    python experiments/imc_studies.py --study=backbone --workdir=/tmp/studies        # cpu preset
    python experiments/imc_studies.py --study=width_depth --workdir=DIR \
        --config=experiments/configs/imc_studies.py:paper --config.data.photos=PHOTOS \
        --config.cameras.folder=KCMI_FOLDER

--study: backbone (Table 2), first_layer (Table 3), hierarchy (Table 4), width_depth (Table 5). Each
column trains for the config's budget in WORKDIR/<study>/<column> (resumable; a finished column is only
read back), then the table is printed with our numbers beside the paper's and written to
WORKDIR/<study>/table.txt. See experiments/studies.py and experiments/configs/imc_studies.py.
"""

from __future__ import annotations

import os
import pathlib
import sys
import time

from absl import flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root

from experiments.launch import experiment_main  # noqa: E402

STUDY = flags.DEFINE_enum("study", None, ["backbone", "first_layer", "hierarchy", "width_depth"],
                          "Which table to rerun (overrides --config.study).")


def run(config, workdir: str) -> dict:
    from experiments import studies
    from mantra_jax.io.atomic import write_text_atomic

    study = studies.get_study(STUDY.value or config.study)
    out = pathlib.Path(workdir) / study.name
    start = time.perf_counter()
    results = studies.run_study(study, config, out)
    table = studies.format_study(study, results)
    steps = "/".join(sorted({str(r["steps"]) for r in results.values()}, key=int))  # as trained
    note = (f"ours / paper (accuracies in %); widths / {config.width_divisor}, {steps} steps of "
            f"{config.train.batch_size} per column; {time.perf_counter() - start:.0f} s")
    print("\n" + table + "\n" + note)
    write_text_atomic(out / "table.txt", table + "\n" + note + "\n")
    return results


if __name__ == "__main__":
    experiment_main(run, os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "imc_studies.py"))
