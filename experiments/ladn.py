"""End-to-end training of the whole ManTra-Net for forgery localisation: FR, HF or HR (paper Sec. 4-5).

    python experiments/ladn.py --workdir=/tmp/ladn_fr                                  # cpu config, FR
    python experiments/ladn.py --workdir=/tmp/ladn_hr --config.setting=HR --config.imc_checkpoint=/tmp/imc385_cpu
    python experiments/ladn.py --workdir=DIR --config=experiments/configs/ladn.py:paper --config.setting=HR \
        --config.imc_checkpoint=IMC_WORKDIR --config.data.photos=/path/to/photos

FR trains everything from random weights; HF loads the feature extractor from an IMC checkpoint and
freezes it; HR loads it and trains it at 5e-5 while the rest trains at 1e-4. Rerunning resumes.
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root (see __init__.py)

from experiments.launch import experiment_main  # noqa: E402
from experiments.runners import run_ladn  # noqa: E402

if __name__ == "__main__":
    experiment_main(run_ladn, str(pathlib.Path(__file__).resolve().parent / "configs" / "ladn.py"))
