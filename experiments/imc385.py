"""IMC-385 pre-training of the manipulation-trace feature extractor (paper Sec. 3).

    python experiments/imc385.py --workdir=/tmp/imc385_cpu                 # cpu config (default)
    python experiments/imc385.py --workdir=DIR --config=experiments/configs/imc385.py:paper \
        --config.data.photos=/path/to/pristine/photos

Everything goes to --workdir (checkpoints/, best/, metrics.jsonl, tensorboard/, config.json, summary.json);
the same command resumes an interrupted run. The best checkpoint feeds experiments/ladn.py (HF/HR) and
experiments/ablation_anomaly.py through --config.imc_checkpoint=DIR.
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root (see __init__.py)

from experiments.launch import experiment_main  # noqa: E402
from experiments.runners import run_imc385  # noqa: E402

if __name__ == "__main__":
    experiment_main(run_imc385, str(pathlib.Path(__file__).resolve().parent / "configs" / "imc385.py"))
