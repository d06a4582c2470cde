"""The paper's training experiments, driven by ml_collections configs (``experiments/configs/``).

* ``run_imc385``: IMC pre-training of the feature extractor on the 385 manipulation types.
* ``run_ladn``: end-to-end localisation training in the FR / HF / HR setting (``end_to_end``).
* ``run_anomaly_ablation``: paper Table 6, the localisation network with a frozen pretrained feature
  extractor and each anomaly feature in turn (DF, ZF, FAC with 1..3 windows, the time-axis TAC), one
  sub-directory of the work directory per feature.

These runners are the readers of the configs' schema (``experiments/configs/blocks.py``), so they live beside
it, with the command line (``experiments/launch``): they read every setting from the config given (no defaults
of their own) and call the library's pieces (``mantra_jax.train``) with explicit arguments. What a run trains
(``fit``'s arguments: model, task, optimiser, inputs, loop settings) comes from ``imc_pieces`` and
``localisation_pieces``, which the sprint's phases (``experiments/sprint.py``) are built from too.

Everything a run writes is in its work directory (checkpoints, metrics, TensorBoard files, ``config.json``,
``summary.json``); running the same command again resumes it (or, when finished, prints its summary).
"""

from __future__ import annotations

import json
import logging
import pathlib
from typing import Any, Mapping

from mantra_jax.io.atomic import write_text_atomic

logger = logging.getLogger(__name__)


def _cfg_dict(cfg: Any) -> dict[str, Any]:
    return cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)


def setup_distributed(dist: Mapping[str, Any]) -> None:
    """Joins JAX's distributed runtime: as the launcher's environment says (``mantra_jax.distributed``),
    else when ``dist["initialize"]`` with the given fields (empty/0/-1: detected by JAX, e.g. Slurm)."""
    from mantra_jax.distributed import runtime

    if runtime.initialize_from_environment() or not dist["initialize"]:
        return
    runtime.initialize(dist["coordinator_address"] or None, dist["num_processes"] or None,
                       None if dist["process_id"] < 0 else int(dist["process_id"]))


def _built(model_config: Mapping[str, Any], model_cfg: Mapping[str, Any]):
    """The model of a checked ``model_config``, computing as the config's ``model`` block chooses
    (``kernel_grad`` / ``conv_algorithm``; the policy's defaults where a config predates them)."""
    from mantra_jax.models.compute import CHOICES, with_choices
    from mantra_jax.models.config import model_from_config

    return with_choices(model_from_config(model_config), **{k: model_cfg[k] for k in CHOICES if k in model_cfg})


def _write_config(workdir: pathlib.Path, cfg: Mapping[str, Any]) -> None:
    import jax

    if jax.process_index() == 0:
        write_text_atomic(workdir / "config.json", json.dumps(cfg, indent=1, sort_keys=True, default=str) + "\n")


def _mesh_and_check(batch_size: int):
    from mantra_jax.train import sharding

    mesh = sharding.make_mesh()
    sharding.local_batch_size(int(batch_size), mesh)
    return mesh


def imc_model_config(model: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(level, checked model config)`` of the IMC classifier of a config's ``model`` block: its level
    (HL0..HL5) and its class count follow each other (Table 4; neither set: HL5, 385 classes)."""
    from mantra_jax.models.config import check_config
    from mantra_jax.train.hierarchy_levels import resolve_level

    level, num_classes = resolve_level(model["hierarchy_level"], model["num_classes"])
    return level, check_config({"kind": "imc", "variant": model["variant"], "num_classes": num_classes,
                                "dtype": model["dtype"]})


def imc_pieces(cfg: Mapping[str, Any], val_dir: pathlib.Path | None = None) -> dict[str, Any]:
    """``fit``'s arguments of an IMC pre-training run of ``cfg`` (its ``model``, ``data``, ``train`` blocks
    and ``progress``): ``model``, ``model_config``, ``task``, ``tx``, ``train_data``, ``eval_data``,
    ``config`` (the LoopConfig) and ``mesh``. ``val_dir``: the prepared fixed validation set's folder (None:
    synthesised; ``mantra_jax.train.inputs.imc_inputs``)."""
    from mantra_jax.distributed.runtime import primary_first
    from mantra_jax.train.hierarchy_levels import level_task
    from mantra_jax.train.inputs import imc_inputs
    from mantra_jax.train.loop import LoopConfig
    from mantra_jax.train.optimizer import adam

    level, model_config = imc_model_config(cfg["model"])
    mesh = _mesh_and_check(cfg["train"]["batch_size"])
    # the fixed validation set is prepared (written once) by process 0 before the others read it
    train_data, val_data = primary_first("imc385 fixed sets", lambda: imc_inputs(
        cfg["data"], int(cfg["train"]["batch_size"]), val_dir=val_dir))
    return {"model": _built(model_config, cfg["model"]), "model_config": model_config,
            "task": level_task(level, hierarchy_weight=float(cfg["train"]["hierarchy_weight"])),
            "tx": adam(float(cfg["train"]["learning_rate"])), "train_data": train_data, "eval_data": val_data,
            "config": LoopConfig.from_config(cfg["train"], cfg["progress"]), "mesh": mesh}


def run_imc385(config: Any, workdir: str | pathlib.Path, name: str = "imc385") -> dict[str, Any]:
    """IMC pre-training (see the module docstring). Returns the run summary. ``name``: the progress label."""
    from mantra_jax.train.loop import train

    cfg = _cfg_dict(config)
    setup_distributed(cfg["distributed"])
    workdir = pathlib.Path(workdir)
    _write_config(workdir, cfg)
    # an absolute val_dir stays as it is
    return train(**imc_pieces(cfg, val_dir=workdir / cfg["data"]["val_dir"]), workdir=workdir, name=name)


def pretrained_params(directory: str, variant: str) -> dict[str, Any]:
    """The params of an IMC (or ManTra-Net) checkpoint of ``variant`` (any ``load_model`` path)."""
    from mantra_jax.io.checkpoints import load_model

    if not directory:
        raise ValueError("this setting needs a pretrained feature extractor: set --config.imc_checkpoint to an "
                         "IMC-385 work directory (experiments/imc385.py) or another checkpoint")
    _, variables, cfg = load_model(directory)
    if cfg["variant"] != variant:
        raise ValueError(f"{directory} holds variant {cfg['variant']!r}, this run builds {variant!r}")
    return variables["params"]


def localisation_model_config(model: Mapping[str, Any], anomaly_feature: str | None,
                              windows: list[int] | None) -> dict[str, Any]:
    """The checked ManTra-Net config of a config's ``model`` block (variant, dtype) with ``anomaly_feature``
    and ``windows`` (None: the model's defaults)."""
    from mantra_jax.models.config import check_config

    model_cfg = {"kind": "mantranet", "variant": model["variant"], "anomaly_feature": anomaly_feature,
                 "dtype": model["dtype"]}
    if windows:
        model_cfg["windows"] = [int(w) for w in windows]
    return check_config(model_cfg)


def end_to_end(train_cfg: Mapping[str, Any], setting: str):
    """The end-to-end setting ``setting`` (FR / HF / HR: optimiser, frozen groups; ``mantra_jax.train.end_to_end``)
    at a ``train`` block's learning rates."""
    from mantra_jax.train.end_to_end import end_to_end_setting

    return end_to_end_setting(setting, float(train_cfg["learning_rate"]), float(train_cfg["featex_learning_rate"]),
                              learning_rates=dict(train_cfg.get("learning_rates") or {}))


def localisation_pieces(cfg: Mapping[str, Any], *, setting: str, anomaly_feature: str | None,
                        windows: list[int] | None, pretrained: Mapping[str, Any] | None = None,
                        variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``fit``'s arguments of a localisation run of ``cfg`` (``model``, ``data``, ``train`` blocks,
    ``progress``, and ``imc_checkpoint`` where the setting loads a feature extractor and ``pretrained`` is
    None) in ``setting``: ``model``, ``model_config``, ``task``, ``tx``, ``frozen``, ``train_data``,
    ``eval_data``, ``config``, ``mesh`` and ``init_variables``: ``variables`` when given (e.g. a resumed
    run's), else a fresh init whose ``Featex`` is ``pretrained``'s where the setting loads one."""
    from mantra_jax.train.end_to_end import load_pretrained_featex
    from mantra_jax.train.inputs import forgery_inputs
    from mantra_jax.train.loop import LoopConfig
    from mantra_jax.train.state import init_variables
    from mantra_jax.train.tasks import localisation_task

    model_config = localisation_model_config(cfg["model"], anomaly_feature, windows)
    model = _built(model_config, cfg["model"])
    tr = cfg["train"]
    e2e = end_to_end(tr, setting)
    loop_cfg = LoopConfig.from_config(tr, cfg["progress"])
    if variables is None:
        if e2e.pretrained and pretrained is None:  # a missing checkpoint is reported before any compile
            pretrained = pretrained_params(cfg["imc_checkpoint"], model_config["variant"])
        variables = init_variables(model, loop_cfg.seed)
        if e2e.pretrained:
            variables = {**variables, "params": load_pretrained_featex(variables["params"], pretrained)}
    mesh = _mesh_and_check(tr["batch_size"])
    train_data, val_data = forgery_inputs(cfg["data"], int(tr["batch_size"]))
    return {"model": model, "model_config": model_config, "task": localisation_task(), "tx": e2e.tx,
            "frozen": e2e.frozen, "train_data": train_data, "eval_data": val_data, "config": loop_cfg, "mesh": mesh,
            "init_variables": variables}


def _localisation_run(cfg: Mapping[str, Any], workdir: pathlib.Path, *, setting: str, anomaly_feature: str,
                      windows: list[int] | None, name: str, pretrained: Mapping[str, Any] | None) -> dict[str, Any]:
    from mantra_jax.train.loop import train

    return train(**localisation_pieces(cfg, setting=setting, anomaly_feature=anomaly_feature, windows=windows,
                                       pretrained=pretrained), workdir=workdir, name=name)


def run_ladn(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    """End-to-end localisation training in ``config.setting`` (FR, HF or HR)."""
    cfg = _cfg_dict(config)
    setup_distributed(cfg["distributed"])
    workdir = pathlib.Path(workdir)
    _write_config(workdir, cfg)
    return _localisation_run(cfg, workdir, setting=cfg["setting"], anomaly_feature=cfg["model"]["anomaly_feature"],
                             windows=cfg["model"]["windows"] or None, name=f"ladn-{cfg['setting']}",
                             pretrained=None)


def run_anomaly_ablation(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    """Paper Table 6: one HF run per entry of ``config.features`` (name, anomaly feature, windows) in
    ``workdir/<name>``; returns ``{name: summary}`` and prints the F1 table."""
    from mantra_jax.train.writers import format_table

    cfg = _cfg_dict(config)
    setup_distributed(cfg["distributed"])
    workdir = pathlib.Path(workdir)
    _write_config(workdir, cfg)
    pretrained = pretrained_params(cfg["imc_checkpoint"], cfg["model"]["variant"])
    results = {}
    for row in cfg["features"]:
        results[row["name"]] = _localisation_run(cfg, workdir / row["name"], setting="HF",
                                                 anomaly_feature=row["feature"], windows=row.get("windows") or None,
                                                 name=f"ablation-{row['name']}", pretrained=pretrained)
    from mantra_jax.data.forgeries import FORGERY_KINDS

    columns = [f"f1/{k}" for k in FORGERY_KINDS] + ["f1/overall", "auc", "loss"]
    table = format_table({name: (s.get("val") or {}) for name, s in results.items()}, columns,
                         row_header="anomaly feature")
    print("\nValidation F1 (paper Table 6 layout)\n" + table)
    import jax

    if jax.process_index() == 0:
        write_text_atomic(workdir / "table6.txt", table + "\n")
    return results
