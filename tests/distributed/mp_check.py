"""Run under the launcher (or alone) by the multi-process tests; prints one ``RESULT <json>`` line per process.

    mp_check.py RUNS_JSON

RUNS_JSON: a list of ``[task, workdir, overrides]`` (task ``imc`` or ``ladn``; overrides the config fields
the test sets, ``{"train.batch_size": 8}``). For each, the latest periodic checkpoint of the work directory
is restored into this topology as the training loop restores it (state and input iterator), and the result
holds digests of its params and batch statistics, its step, the input state and the example keys of this
process's part of the batch that comes next.
An example's key is the SHA-1 of its image bytes and label (or mask), so equal keys mean equal examples.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))  # the repository root

from mantra_jax.distributed import runtime  # noqa: E402

runtime.initialize_from_environment()

import jax  # noqa: E402
import numpy as np  # noqa: E402


def config(task: str, overrides: dict):
    from experiments.configs import imc385, ladn

    cfg = (imc385 if task == "imc" else ladn).get_config("cpu")
    for dotted, value in overrides.items():
        node = cfg
        *path, last = dotted.split(".")
        for name in path:
            node = node[name]
        node[last] = value
    return cfg.to_dict()


def inputs(task: str, cfg: dict):
    from mantra_jax.train.inputs import forgery_inputs, imc_inputs

    batch = int(cfg["train"]["batch_size"])
    if task == "imc":
        return imc_inputs(cfg["data"], batch, val_dir=cfg["data"]["val_dir"])
    return forgery_inputs(cfg["data"], batch)


def example_keys(batch: dict) -> list[str]:
    other = batch["label"] if "label" in batch else batch["mask"]
    return [hashlib.sha1(np.ascontiguousarray(batch["image"][i]).tobytes()
                         + np.ascontiguousarray(other[i]).tobytes()).hexdigest()[:16]
            for i in range(len(batch["image"]))]


def digest(tree) -> str:
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        h.update(np.ascontiguousarray(np.asarray(getattr(leaf, "addressable_data", lambda i: leaf)(0))).tobytes())
    return h.hexdigest()


def restore(task: str, workdir: str, cfg: dict) -> dict:
    from mantra_jax.models.compute import for_platform
    from mantra_jax.models.config import check_config, model_from_config
    from mantra_jax.train import sharding
    from mantra_jax.train.checkpoints import TrainCheckpoints
    from mantra_jax.train.end_to_end import end_to_end_setting
    from mantra_jax.train.optimizer import adam
    from mantra_jax.train.state import create_train_state, init_variables

    tr = cfg["train"]
    if task == "imc":
        model_config = check_config({"kind": "imc", "variant": cfg["model"]["variant"], "num_classes": 385,
                                     "dtype": cfg["model"]["dtype"]})
        tx = adam(float(tr["learning_rate"]))
    else:
        model_config = check_config({"kind": "mantranet", "variant": cfg["model"]["variant"],
                                     "anomaly_feature": cfg["model"]["anomaly_feature"], "dtype": cfg["model"]["dtype"],
                                     "windows": [int(w) for w in cfg["model"]["windows"]]})
        tx = end_to_end_setting(cfg["setting"], float(tr["learning_rate"]), float(tr["featex_learning_rate"]),
                                learning_rates=dict(tr.get("learning_rates") or {})).tx
    mesh = sharding.make_mesh()
    model = for_platform(model_from_config(model_config), mesh.devices.flat[0].platform)
    state = sharding.replicate(create_train_state(init_variables(model, int(tr["seed"])), tx, int(tr["seed"])), mesh)
    train, _ = inputs(task, cfg)
    iterator = iter(train)
    ckpt = TrainCheckpoints(workdir)
    state, _ = ckpt.restore(state, data_iterator=iterator, model_config=model_config)
    ckpt.close()
    return {"params": digest(state.params), "batch_stats": digest(state.batch_stats),
            "step": int(np.asarray(state.step.addressable_data(0))), "data_state": iterator.get_state(),
            "next_keys": example_keys(next(iterator))}


def main(argv: list[str]) -> None:
    results = [restore(task, workdir, config(task, overrides)) for task, workdir, overrides in json.loads(argv[1])]
    print("RESULT " + json.dumps({"runs": results, "process": jax.process_index(), "processes": jax.process_count(),
                                  "devices": jax.device_count()}), flush=True)


if __name__ == "__main__":
    main(sys.argv)
