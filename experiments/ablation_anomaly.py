"""Paper Table 6: anomaly-detection features compared with the same frozen pretrained feature extractor.

Trains the localisation network once per feature (DF, ZF, FAC with the 7x7, 7+15 and 7+15+31 windows, and
the time-axis TAC = the release's ``time_z``), each in ``--workdir/<name>``, all from the same IMC
checkpoint (frozen, HF setting) and the same data; prints and writes (``table6.txt``) the validation F1
per forgery kind. Rerunning resumes the unfinished rows.

    python experiments/imc385.py --workdir=/tmp/imc385_cpu
    python experiments/ablation_anomaly.py --workdir=/tmp/table6 --config.imc_checkpoint=/tmp/imc385_cpu
"""

from __future__ import annotations

import os

from mantra_jax.train.experiments import experiment_main, run_anomaly_ablation

if __name__ == "__main__":
    experiment_main(run_anomaly_ablation, os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "ablation_anomaly.py"))
