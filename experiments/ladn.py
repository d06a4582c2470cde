"""End-to-end training of the whole ManTra-Net for forgery localisation: FR, HF or HR (paper Sec. 4-5).

    python experiments/ladn.py --workdir=/tmp/ladn_fr                                  # cpu config, FR
    python experiments/ladn.py --workdir=/tmp/ladn_hr --config.setting=HR --config.imc_checkpoint=/tmp/imc385_cpu
    python experiments/ladn.py --workdir=DIR --config=experiments/configs/ladn.py:paper --config.setting=HR \
        --config.imc_checkpoint=IMC_WORKDIR --config.data.photos=/path/to/photos

FR trains everything from random weights; HF loads the feature extractor from an IMC checkpoint and
freezes it; HR loads it and trains it at 5e-5 while the rest trains at 1e-4. Rerunning resumes.
"""

from __future__ import annotations

import os

from mantra_jax.train.experiments import experiment_main, run_ladn

if __name__ == "__main__":
    experiment_main(run_ladn, os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "ladn.py"))
