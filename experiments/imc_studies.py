"""The paper's Section 3 studies: train every column of Table 2, 3, 4 or 5 and print the table.

    python experiments/imc_studies.py --study=backbone --workdir=/tmp/studies        # cpu preset
    python experiments/imc_studies.py --study=width_depth --workdir=DIR \
        --config=experiments/configs/imc_studies.py:paper --config.data.photos=PHOTOS \
        --config.cameras.folder=KCMI_FOLDER

--study: backbone (Table 2), first_layer (Table 3), hierarchy (Table 4), width_depth (Table 5). Each
column trains for the config's budget in WORKDIR/<study>/<column> (resumable; a finished column is only
read back), then the table is printed with our numbers beside the paper's and written to
WORKDIR/<study>/table.txt. See mantra_jax/train/imc_studies.py and experiments/configs/imc_studies.py.
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
    from mantra_jax.eval.camera_probe import camera_by_pattern, camera_folders
    from mantra_jax.io.atomic import write_text_atomic
    from mantra_jax.train import imc_studies as st

    cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    study = st.get_study(STUDY.value or cfg["study"])
    cams = cfg["cameras"]
    cameras = None
    if cams["folder"]:
        cameras = (camera_by_pattern(cams["folder"], cams["pattern"]) if cams["pattern"]
                   else camera_folders(cams["folder"]))
    else:
        print("imc_studies: no --config.cameras.folder: the KCMI row stays empty")
    t = cfg["train"]
    budget = st.Budget(steps=int(t["steps"]), batch_size=int(t["batch_size"]), learning_rate=float(t["learning_rate"]),
                       hierarchy_weight=float(t["hierarchy_weight"]), eval_every_steps=int(t["eval_every_steps"]),
                       log_every_steps=int(t["log_every_steps"]), seed=int(t["seed"]), progress=bool(cfg["progress"]))
    out = pathlib.Path(workdir) / study.name
    start = time.perf_counter()
    results = st.run_study(study, workdir=out, budget=budget, width_divisor=int(cfg["width_divisor"]),
                           data=cfg["data"], train_records=int(cfg["train_records"]), cameras=cameras,
                           probe_crop=int(cams["crop"]), probe_k=int(cams["k"]), probe_seed=int(cams["seed"]),
                           only=[s.strip() for s in cfg["only"].split(",") if s.strip()])
    table = st.format_study(study, results)
    note = (f"ours / paper (accuracies in %); widths / {cfg['width_divisor']}, {budget.steps} steps of "
            f"{budget.batch_size} per column; {time.perf_counter() - start:.0f} s")
    print("\n" + table + "\n" + note)
    write_text_atomic(out / "table.txt", table + "\n" + note + "\n")
    return results


if __name__ == "__main__":
    experiment_main(run, os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "imc_studies.py"))
