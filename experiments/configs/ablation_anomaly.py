"""Anomaly-feature ablation configs (paper Table 6, experiments/ablation_anomaly.py): ``paper``, ``cpu``.

Every row trains the localisation network in the HF setting (feature extractor from imc_checkpoint,
frozen); rows differ only in the anomaly feature and its windows. Rows (name: feature, windows):

    DF: df            ZF: zf                FAC7: fac (7)
    FAC7-15: fac (7, 15)    FAC7-15-31: fac (7, 15, 31)    TAC7-15-31: time_z (7, 15, 31)

The training settings are those of configs/ladn.py (paper or cpu).
"""

from __future__ import annotations

import ml_collections

from experiments.configs import ladn

FEATURES = (
    ("DF", "df", []),
    ("ZF", "zf", []),
    ("FAC7", "fac", [7]),
    ("FAC7-15", "fac", [7, 15]),
    ("FAC7-15-31", "fac", [7, 15, 31]),
    ("TAC7-15-31", "time_z", [7, 15, 31]),
)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    arg = arg or "cpu"
    c = ladn.get_config(arg)
    c.name = f"ablation-anomaly-{arg}"
    del c.setting
    del c.model.anomaly_feature, c.model.windows  # set per row
    c.features = [{"name": n, "feature": f, "windows": w} for n, f, w in FEATURES]
    return c
