"""The paper's training experiments, driven by ml_collections configs (``experiments/configs/``).

* ``run_imc385``: IMC pre-training of the feature extractor on the 385 manipulation types.
* ``run_ladn``: end-to-end localisation training in the FR / HF / HR setting (``end_to_end``).
* ``run_anomaly_ablation``: paper Table 6, the localisation network with a frozen pretrained feature
  extractor and each anomaly feature in turn (DF, ZF, FAC with 1..3 windows, the time-axis TAC), one
  sub-directory of the work directory per feature.

Everything a run writes is in its work directory (checkpoints, metrics, TensorBoard files, ``config.json``,
``summary.json``); running the same command again resumes it (or, when finished, prints its summary).
"""

from __future__ import annotations

import json
import logging
import pathlib
from typing import Any, Callable, Mapping

from mantra_jax.io.atomic import write_text_atomic

logger = logging.getLogger(__name__)


def experiment_main(runner: Callable[[Any, str], Any], config_file: str) -> None:
    """The command line of an experiment script: ``--config`` (``config_file``, preset ``cpu`` by default;
    ``--config.<field>=...`` overrides) and ``--workdir``; then ``runner(config, workdir)``.

    A bad override, a bad setting or an unusable checkpoint / work directory (``ValueError``, ``OSError``)
    ends the program with one line on stderr and status 2 (flags) or 1 (run), not a traceback.
    """
    import sys

    from absl import app, flags, logging
    from ml_collections import config_flags

    started = []
    prog = pathlib.Path(sys.argv[0]).name
    for arg in sys.argv[1:]:  # a bad preset would otherwise come back as absl's multi-line parse error
        if arg.startswith("--config=") and ":" in arg:
            from mantra_jax.train.config_blocks import PRESETS

            preset = arg.rsplit(":", 1)[1]
            if preset not in PRESETS:
                print(f"{prog}: error: bad flag: unknown preset {preset!r} in {arg}; use one of {PRESETS}",
                      file=sys.stderr)
                sys.exit(2)

    def main(argv: list[str]) -> None:
        started.append(True)
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments {argv[1:]}")
        if not flags.FLAGS["verbosity"].present:
            logging.set_verbosity(logging.ERROR)  # Orbax logs every checkpoint step at INFO, notes at WARNING
        try:
            runner(config.value, flags.FLAGS.workdir)
        except (ValueError, OSError) as e:
            print(f"{prog}: error: {e}", file=sys.stderr)
            sys.exit(1)

    try:
        flags.DEFINE_string("workdir", None, "Directory holding everything of the run.", required=True)
        config = config_flags.DEFINE_config_file("config", f"{config_file}:cpu",
                                                 "Config file and preset (cpu or paper).")
        app.run(main)
    except Exception as e:  # ml_collections raises plain errors for a bad --config.<field> override
        if started:
            raise
        print(f"{prog}: error: bad flag: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(2)


def _cfg_dict(cfg: Any) -> dict[str, Any]:
    return cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)


def setup_distributed(dist: Mapping[str, Any]) -> None:
    """``jax.distributed.initialize`` when ``dist["initialize"]`` (empty/0/-1 fields: auto-detect)."""
    if not dist.get("initialize"):
        return
    from mantra_jax.train.sharding import initialize_distributed

    initialize_distributed(dist.get("coordinator_address") or None, dist.get("num_processes") or None,
                           None if dist.get("process_id", -1) < 0 else int(dist["process_id"]))


def loop_config(train: Mapping[str, Any], progress: bool = True):
    from mantra_jax.train.loop import LoopConfig

    return LoopConfig(num_steps=int(train["num_epochs"]) * int(train["steps_per_epoch"]),
                      steps_per_epoch=int(train["steps_per_epoch"]),
                      eval_every_epochs=int(train.get("eval_every_epochs", 1)),
                      checkpoint_every_steps=int(train["checkpoint_every_steps"]), keep=int(train.get("keep", 3)),
                      keep_best=int(train.get("keep_best", 1)), patience=int(train.get("patience", 20)),
                      factor=float(train.get("factor", 0.5)), log_every_steps=int(train.get("log_every_steps", 50)),
                      seed=int(train.get("seed", 0)), progress=progress)


def _write_config(workdir: pathlib.Path, cfg: Mapping[str, Any]) -> None:
    import jax

    if jax.process_index() == 0:
        write_text_atomic(workdir / "config.json", json.dumps(cfg, indent=1, sort_keys=True, default=str) + "\n")


def _mesh_and_check(batch_size: int):
    from mantra_jax.train import sharding

    mesh = sharding.make_mesh()
    sharding.local_batch_size(int(batch_size), mesh)
    return mesh


def run_imc385(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    """IMC pre-training (see the module docstring). Returns the run summary."""
    from mantra_jax.io.checkpoints import check_config, model_from_config
    from mantra_jax.train.inputs import imc_inputs
    from mantra_jax.train.loop import train
    from mantra_jax.train.optimizer import adam
    from mantra_jax.train.hierarchy_levels import level_task, resolve_level

    cfg = _cfg_dict(config)
    setup_distributed(cfg.get("distributed", {}))
    workdir = pathlib.Path(workdir)
    _write_config(workdir, cfg)
    # the classifier's level (HL0..HL5) and its class count follow each other (Table 4)
    level, num_classes = resolve_level(cfg["model"].get("hierarchy_level"), cfg["model"].get("num_classes"))
    model_config = check_config({"kind": "imc", "variant": cfg["model"]["variant"], "num_classes": num_classes})
    mesh = _mesh_and_check(cfg["train"]["batch_size"])
    train_data, val_data = imc_inputs(cfg["data"], int(cfg["train"]["batch_size"]))
    return train(model=model_from_config(model_config), model_config=model_config,
                 task=level_task(level, hierarchy_weight=float(cfg["train"].get("hierarchy_weight", 0.0))),
                 tx=adam(float(cfg["train"]["learning_rate"])), train_data=train_data, eval_data=val_data,
                 workdir=workdir, config=loop_config(cfg["train"], cfg.get("progress", True)), mesh=mesh,
                 name="imc385")


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


def _localisation_run(cfg: Mapping[str, Any], workdir: pathlib.Path, *, setting: str, anomaly_feature: str,
                      windows: list[int] | None, name: str, pretrained: Mapping[str, Any] | None) -> dict[str, Any]:
    from mantra_jax.io.checkpoints import check_config, model_from_config
    from mantra_jax.train.end_to_end import end_to_end_setting, load_pretrained_featex
    from mantra_jax.train.inputs import forgery_inputs
    from mantra_jax.train.loop import train
    from mantra_jax.train.state import init_variables
    from mantra_jax.train.tasks import localisation_task

    model_cfg = {"kind": "mantranet", "variant": cfg["model"]["variant"], "anomaly_feature": anomaly_feature}
    if windows:
        model_cfg["windows"] = [int(w) for w in windows]
    model_config = check_config(model_cfg)
    model = model_from_config(model_config)
    tr = cfg["train"]
    e2e = end_to_end_setting(setting, float(tr["learning_rate"]), float(tr.get("featex_learning_rate", 5e-5)))
    loop_cfg = loop_config(tr, cfg.get("progress", True))
    variables = init_variables(model, loop_cfg.seed)
    if e2e.pretrained:
        if pretrained is None:
            pretrained = pretrained_params(cfg.get("imc_checkpoint", ""), model_config["variant"])
        variables = {**variables, "params": load_pretrained_featex(variables["params"], pretrained)}
    mesh = _mesh_and_check(tr["batch_size"])
    train_data, val_data = forgery_inputs(cfg["data"], int(tr["batch_size"]))
    return train(model=model, model_config=model_config, task=localisation_task(), tx=e2e.tx,
                 train_data=train_data, eval_data=val_data, workdir=workdir, config=loop_cfg,
                 init_variables=variables, frozen=e2e.frozen, mesh=mesh, name=name)


def run_ladn(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    """End-to-end localisation training in ``config.setting`` (FR, HF or HR)."""
    cfg = _cfg_dict(config)
    setup_distributed(cfg.get("distributed", {}))
    workdir = pathlib.Path(workdir)
    _write_config(workdir, cfg)
    return _localisation_run(cfg, workdir, setting=cfg["setting"], anomaly_feature=cfg["model"]["anomaly_feature"],
                             windows=cfg["model"].get("windows") or None, name=f"ladn-{cfg['setting']}",
                             pretrained=None)


def run_anomaly_ablation(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
    """Paper Table 6: one HF run per entry of ``config.features`` (name, anomaly feature, windows) in
    ``workdir/<name>``; returns ``{name: summary}`` and prints the F1 table."""
    from mantra_jax.train.writers import format_table

    cfg = _cfg_dict(config)
    setup_distributed(cfg.get("distributed", {}))
    workdir = pathlib.Path(workdir)
    _write_config(workdir, cfg)
    pretrained = pretrained_params(cfg.get("imc_checkpoint", ""), cfg["model"]["variant"])
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
