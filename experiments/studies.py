"""The paper's Section 3 studies of the feature extractor (Tables 2-5) as data, a runner and a printer.

| study         | table | columns (rows of ``STUDIES``)                           | trained at |
|---------------|-------|---------------------------------------------------------|------------|
| ``backbone``  | 2     | IMC-VGG, IMC-ResNet, IMC-DnCNN (first layer plain 3x3)  | HL0 (7)    |
| ``first_layer``| 3    | Conv2D 3x3, Conv2D 5x5, BayarConv2D, SRMConv2D, Combined| HL0 (7)    |
| ``hierarchy`` | 4     | IMC-VGG + combined at HL0 ... HL5                       | each level |
| ``width_depth``| 5    | Baseline, Wider, Deeper, W&D (+ combined first layer)   | HL5 (385)  |

A study is a loop over IMC configs: ``run_study`` gives each column an imc385 config (``column_config``:
the study config's data and train blocks, the column's variant and level) and trains it with
``experiments.runners.run_imc385`` in ``workdir/<column>`` (the library's loop: checkpoints, resumable; a
finished column is not retrained), then scores the best checkpoint with the loop's evaluation
(``mantra_jax.train.loop_actions.evaluate_variables``): the metrics on the fixed validation set (shared by
the columns) at the column's level and every coarser one (``hierarchy_levels``), the same on a fixed sample
of training-split records ("Train Acc."), and the camera-model probe (the KCMI row) on a folder of photos
grouped by camera (``mantra_jax.eval.camera_probe``). ``format_study`` prints the paper's layout,
each cell ``ours / paper`` in percent (counts as numbers).

Sizes are ours to choose: a ``width_divisor`` divides every width of the backbones (1: the paper's), so a
CPU run keeps each table's structure at a fraction of the compute.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from typing import Any, Callable, Mapping, Sequence

from mantra_jax.io.atomic import write_text_atomic
from mantra_jax.train.hierarchy_levels import level_classes

ROW_RESULT = "study_row.json"


@dataclasses.dataclass(frozen=True)
class Column:
    """One trained model: ``label`` (the paper's column header), ``variant`` (a study variant name without
    divisor, see ``mantra_jax.models.variants``), ``level`` (HL0..HL5) and the paper's numbers by row key."""

    label: str
    variant: str
    level: str
    paper: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Study:
    """``rows``: (key, label) of the printed rows; keys are ``convs``, ``params``, ``filters``, ``kernel``,
    ``receptive_field``, ``train/<level>/top<k>``, ``val/<level>/top<k>``, ``kcmi``."""

    name: str
    table: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, str], ...]


def _acc(level: str, k: int = 1, split: str = "val") -> str:
    return f"{split}/{level}/top{k}"


_T2 = ((("convs", "#Conv2D"), ("params", "#Param."), (_acc("HL0", split="train"), "IMC-7 Train Acc."),
        (_acc("HL0"), "IMC-7 Valid Acc."), ("kcmi", "KCMI Test Acc")))
_T3 = ((("filters", "#Filters"), ("kernel", "Kernel Size"), (_acc("HL0", split="train"), "IMC-7 Train Acc."),
        (_acc("HL0"), "IMC-7 Valid Acc."), ("kcmi", "KCMI Test Acc.")))
_HL = ("HL0", "HL1", "HL2", "HL3", "HL4", "HL5")
_PAPER_CLASSES = (7, 25, 49, 96, 185, 385)
_T4_VALID = ((93.4, 95.1, 96.1, 96.3, 96.3, 96.2), (None, 85.1, 85.7, 85.4, 85.5, 85.7),
             (None, None, 77.5, 79.6, 78.9, 79.2), (None, None, None, 72.4, 72.7, 73.2),
             (None, None, None, None, 53.4, 63.3), (None, None, None, None, None, 47.3))
_T4_KCMI = (57.2, 62.7, 71.9, 78.4, 82.0, 82.6)
_T5 = (("convs", "#Conv2D"), ("receptive_field", "#Receptive Field"),
       *((_acc("HL5", k), f"IMC-385 Top-{k}") for k in (1, 3, 5, 10)), ("kcmi", "KCMI Test Acc"))


def _paper(rows: Sequence[tuple[str, str]], values: Sequence[Any]) -> dict[str, Any]:
    return {key: v for (key, _), v in zip(rows, values) if v is not None}


STUDIES: dict[str, Study] = {s.name: s for s in (
    Study("backbone", "Table 2", (
        Column("IMC-VGG", "imc-vgg", "HL0", _paper(_T2, (11, 487_000, 94.5, 92.1, 55.1))),
        Column("IMC-ResNet", "imc-resnet", "HL0", _paper(_T2, (14, 465_000, 94.3, 90.8, 48.1))),
        Column("IMC-DnCNN", "imc-dncnn", "HL0", _paper(_T2, (12, 482_000, 94.7, 91.2, 49.4)))), _T2),
    Study("first_layer", "Table 3", (
        Column("Conv2D 3x3", "imc-vgg+plain3", "HL0", _paper(_T3, (16, 3, 94.5, 92.1, 55.1))),
        Column("Conv2D 5x5", "imc-vgg+plain5", "HL0", _paper(_T3, (16, 5, 94.9, 92.5, 55.2))),
        Column("BayarConv2D", "imc-vgg+bayar", "HL0", _paper(_T3, (3, 5, 93.8, 92.0, 49.9))),
        Column("SRMConv2D", "imc-vgg+srm", "HL0", _paper(_T3, (3, 5, 95.2, 93.1, 57.1))),
        Column("Combined", "imc-vgg+combined", "HL0", _paper(_T3, ("10+3+3", 5, 95.5, 93.4, 57.2)))), _T3),
    Study("hierarchy", "Table 4", tuple(
        Column(hl, "imc-vgg+combined", hl,
               {**{_acc(ev): _T4_VALID[j][i] for j, ev in enumerate(_HL) if _T4_VALID[j][i] is not None},
                "kcmi": _T4_KCMI[i]})
        for i, (hl, n) in enumerate(zip(_HL, _PAPER_CLASSES))),
        tuple((_acc(hl), f"IMC-{n} Valid. Acc. ({level_classes(hl)} here)") for hl, n in zip(_HL, _PAPER_CLASSES))
        + (("kcmi", "KCMI Test Acc."),)),
    Study("width_depth", "Table 5", (
        Column("Baseline", "imc-vgg+combined", "HL5", _paper(_T5, (11, 23, 47.3, 66.5, 75.3, 85.8, 82.6))),
        Column("Wider(W)", "imc-vgg-wider+combined", "HL5", _paper(_T5, (11, 23, 48.6, 69.9, 79.5, 90.7, 83.1))),
        Column("Deeper(D)", "imc-vgg-deeper+combined", "HL5", _paper(_T5, (14, 29, 45.7, 69.8, 79.4, 92.5, 83.0))),
        Column("W&D", "imc-vgg-wd+combined", "HL5", _paper(_T5, (14, 29, 51.8, 72.0, 81.1, 93.1, 83.6)))), _T5),
)}

PERCENT_ROWS = ("train/", "val/", "kcmi")


def get_study(name: str) -> Study:
    try:
        return STUDIES[name]
    except KeyError:
        raise ValueError(f"unknown study {name!r}; known: {', '.join(STUDIES)}") from None


def column_dir(column: Column) -> str:
    """A folder name for a column (its label, filesystem-safe)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in column.label)


def variant_name(column: Column, width_divisor: int) -> str:
    return column.variant if width_divisor == 1 else f"{column.variant}/{int(width_divisor)}"


def architecture(column: Column, width_divisor: int = 1) -> dict[str, Any]:
    """The column's static rows (``mantra_jax.models.backbones.imc_architecture`` of its variant)."""
    from mantra_jax.models.backbones import imc_architecture
    from mantra_jax.models.variants import get_variant

    return imc_architecture(get_variant(variant_name(column, width_divisor)).featex, level_classes(column.level))


def column_config(config: Mapping[str, Any], column: Column, val_dir: pathlib.Path) -> dict[str, Any]:
    """The imc385 config (experiments/configs/imc385.py's schema) training ``column``: the study config's
    ``progress``, ``distributed``, ``data`` (the validation set read from ``val_dir``) and ``train`` blocks,
    and a model block of the column's variant at the config's ``width_divisor`` and hierarchy level."""
    from experiments.configs.blocks import model_block

    model = model_block(variant_name(column, int(config["width_divisor"])), hierarchy_level=column.level,
                        num_classes=level_classes(column.level))
    return {"name": f"{config['name']}-{column_dir(column)}", "progress": config["progress"],
            "distributed": dict(config["distributed"]), "model": model.to_dict(),
            "data": {**config["data"], "val_dir": str(val_dir)}, "train": dict(config["train"])}


def train_column(column: Column, config: Mapping[str, Any], *, workdir: pathlib.Path, val_dir: pathlib.Path,
                 val_data: Any, train_sample: Any, probe: Callable[[Any, Any], dict] | None) -> dict[str, Any]:
    """Trains one column with ``run_imc385(column_config(...), workdir)`` (or resumes it; a finished one is
    only read back) and scores its best checkpoint with the loop's evaluation (``evaluate_variables``);
    returns ``architecture`` rows, ``val/...`` and ``train/...`` metrics, ``kcmi`` (when ``probe``), seconds."""
    from experiments.runners import run_imc385
    from mantra_jax.io.checkpoints import load_model
    from mantra_jax.train.hierarchy_levels import level_task
    from mantra_jax.train.loop_actions import evaluate_variables

    done = workdir / ROW_RESULT
    if done.is_file():
        return json.loads(done.read_text())
    start = time.perf_counter()
    cfg = column_config(config, column, val_dir)
    summary = run_imc385(cfg, workdir, name=column.label)
    trained = time.perf_counter()
    model, variables, _ = load_model(workdir)  # the best checkpoint (lowest validation loss)
    task = level_task(column.level, float(cfg["train"]["hierarchy_weight"]))  # run_imc385's task
    result: dict[str, Any] = {"column": column.label, "variant": cfg["model"]["variant"], "level": column.level,
                              "steps": summary["steps"], **architecture(column, int(config["width_divisor"]))}
    for split, batches in (("val", val_data), ("train", train_sample)):
        result.update({f"{split}/{k}": v for k, v in evaluate_variables(model, variables, task, batches).items()})
    if probe is not None:
        kcmi = probe(model, variables)
        result["kcmi"] = kcmi["accuracy"]
        result["kcmi_detail"] = {k: kcmi[k] for k in ("fit", "test", "k", "chance", "per_camera")}
    result["seconds"] = {"train": round(trained - start, 1), "score": round(time.perf_counter() - trained, 1)}
    write_text_atomic(done, json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result


def kcmi_probe(cameras: Mapping[str, Any]) -> Callable[[Any, Any], dict] | None:
    """The KCMI probe (``camera_probe_fn``) of a config's ``cameras`` block: ``folder`` (one sub-folder per
    camera, or a flat folder with ``pattern``), ``crop``, ``k``, ``seed``; None when it names no folder."""
    from mantra_jax.eval.camera_probe import camera_by_pattern, camera_folders, camera_probe_fn

    if not cameras["folder"]:
        return None
    photos = (camera_by_pattern(cameras["folder"], cameras["pattern"]) if cameras["pattern"]
              else camera_folders(cameras["folder"]))
    return camera_probe_fn(photos, crop=int(cameras["crop"]), k=int(cameras["k"]), seed=int(cameras["seed"]))


def training_sample(data: Mapping[str, Any], batch_size: int, records: int) -> Any:
    """The fixed sample of ``records`` training-split records scored as "Train Acc." (one pass, in order),
    in batches of ``batch_size``; ``data``: a data block."""
    from mantra_jax.data.imc_source import IMCSource
    from mantra_jax.data.pipeline import make_loader

    if records < batch_size:
        raise ValueError(f"train_records ({records}) must be at least one batch ({batch_size})")
    sample = IMCSource(data["photos"] or None, "train", seed=int(data["seed"]), num_records=records,
                       crop_size=int(data["crop_size"]), patch_size=int(data["patch_size"]),
                       min_deviation=float(data["min_deviation"]))
    return make_loader(sample, batch_size=batch_size, seed=0, shuffle=False, num_epochs=1)


def _cell(key: str, ours: Any, paper: Any) -> str:
    def fmt(v: Any, scale: float) -> str:
        if v is None:
            return "-"
        if key == "params":
            return f"{v / 1000:.0f}K"
        if isinstance(v, float) and key.startswith(PERCENT_ROWS):
            return f"{scale * v:.1f}"
        return str(v)

    return f"{fmt(ours, 100.0)} / {fmt(paper, 1.0)}"  # ours are fractions, the paper's percentages


def run_study(study: Study, config: Any, workdir: str | pathlib.Path,
              log: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    """Trains and scores every column of ``study`` (or those labelled in ``config.only``) in
    ``workdir/<column>``; returns ``{label: result}``. ``config``: a study config
    (experiments/configs/imc_studies.py): its ``data`` and ``train`` blocks are imc385's, the validation
    set (prepared once in ``workdir/<data.val_dir>``) is shared by the columns; ``train_records``: size of
    the fixed training-split sample scored as "Train Acc."; ``cameras``: the KCMI row's photos (no folder:
    no probe)."""
    from mantra_jax.distributed.runtime import primary_first
    from mantra_jax.train.inputs import imc_inputs

    cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    only = [s.strip() for s in cfg["only"].split(",") if s.strip()]
    unknown = sorted(set(only) - {c.label for c in study.columns})
    if unknown:
        raise ValueError(f"{study.name}: no column(s) {unknown}; columns: {[c.label for c in study.columns]}")
    data, batch_size = cfg["data"], int(cfg["train"]["batch_size"])
    train_sample = training_sample(data, batch_size, int(cfg["train_records"]))
    workdir = pathlib.Path(workdir)
    val_dir = (workdir / data["val_dir"]).absolute()  # an absolute val_dir stays as it is
    _, val_data = primary_first("imc studies fixed sets", lambda: imc_inputs(data, batch_size, val_dir=val_dir))
    probe = kcmi_probe(cfg["cameras"])
    if probe is None:
        log("imc_studies: no --config.cameras.folder: the KCMI row stays empty")
    results = {}
    for column in study.columns:
        if only and column.label not in only:
            continue
        results[column.label] = train_column(column, cfg, workdir=workdir / column_dir(column), val_dir=val_dir,
                                             val_data=val_data, train_sample=train_sample, probe=probe)
        log(f"{study.name}: {column.label} done ({results[column.label]['seconds']})")
    return results


def format_study(study: Study, results: Mapping[str, Mapping[str, Any]]) -> str:
    """The paper's table: one column per model, one row per metric, cells ``ours / paper`` (accuracies in
    percent). ``results``: {column label: train_column's result}; a column not run shows ``-``."""
    header = [f"{study.table} ({study.name})"] + [c.label for c in study.columns]
    body = []
    for key, label in study.rows:
        line = [label]
        for c in study.columns:
            r = results.get(c.label) or {}
            ours = r.get(key)
            shown = key in r or key in c.paper
            line.append(_cell(key, ours, c.paper.get(key)) if shown else "-")
        body.append(line)
    widths = [max(len(x[i]) for x in [header] + body) for i in range(len(header))]
    lines = ["  ".join(s.ljust(w) if i == 0 else s.rjust(w) for i, (s, w) in enumerate(zip(x, widths)))
             for x in [header] + body]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])
