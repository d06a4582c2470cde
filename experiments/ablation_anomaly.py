"""Paper Table 6: anomaly-detection features compared with the same frozen pretrained feature extractor.

Trains the localisation network once per feature (DF, ZF, FAC with the 7x7, 7+15 and 7+15+31 windows, and
the time-axis TAC = the release's ``time_z``), each in ``--workdir/<name>``, all from the same IMC
checkpoint (frozen, HF setting) and the same data; prints and writes (``table6.txt``) the validation F1
per forgery kind. Rerunning resumes the unfinished rows.

    python experiments/imc385.py --workdir=/tmp/imc385_cpu
    python experiments/ablation_anomaly.py --workdir=/tmp/table6 --config.imc_checkpoint=/tmp/imc385_cpu
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root (see __init__.py)

from experiments.launch import experiment_main  # noqa: E402
from experiments.runners import run_anomaly_ablation  # noqa: E402

if __name__ == "__main__":
    experiment_main(run_anomaly_ablation, str(pathlib.Path(__file__).resolve().parent / "configs" / "ablation_anomaly.py"))
