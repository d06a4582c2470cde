"""A training sprint against a deadline: IMC-385 pre-training, hand-over, end-to-end HR localisation, export.

    python experiments/sprint.py --out DIR --budget_s S [--resume DIR] [--config.photos=DIR]
    python experiments/sprint.py --out DIR --budget_s S --config=experiments/configs/sprint.py:tiny  # CPU smoke

Flags: ``--out`` (the export folder), ``--budget_s`` (wall-clock seconds for everything, compiles included;
> 0), ``--resume`` (a previous export to continue), and ``--config`` (experiments/configs/sprint.py, preset
``ptrain4`` by default, or ``tiny``) with its overrides ``--config.<field>=...``, e.g. ``photos`` (a folder
of pristine photos; default scikit-image's), ``progress=false`` (no progress lines), ``imc.train.num_steps``
/ ``hr.train.num_steps`` (checks: at most this many steps of the phase per window), ``imc_share``,
``export_reserve``, the phases' batch sizes and learning rates. A bad flag or override, an ``--out`` that
holds other files or an unusable ``--resume`` export: one line on stderr, status 2; a bad setting: one
line, status 1 (experiments/launch.py).

Prints the versions and devices first, then (all inside ``--budget_s`` seconds of wall clock, compiles
included, less ``export_reserve`` of it kept for the end):

1. IMC-385 pre-training of the feature extractor (``IMCClassifier``) for ``imc_share`` of the time;
2. hand-over: the trained ``Featex`` goes into a ``ManTraNet`` (fresh LADN);
3. end-to-end localisation in the HR setting (feature extractor trained at a tenth of the rate) on the
   four synthetic forgery types (splice, copy-move, removal, enhancement) for the rest of the time;
4. export to ``--out`` (each file under 16 MiB, written atomically): ``mantranet.msgpack`` (the whole
   model, float32 weights, loadable by ``mantra detect --checkpoint``), ``imc_head.msgpack`` (the IMC
   head), ``optimizer.0.msgpack``, ``optimizer.1.msgpack``, ... (the optax state of the HR phase, where
   every window stops: Adam's ``mu``, ``nu`` and ``count`` per parameter group, float32 / int32 as
   trained, packed in tree order into numbered parts of at most ``PART_BYTES`` array bytes, each with
   the SHA-256 digest of ``mantra_jax.io.msgpack_weights``; ``save_optimizer``), ``resume.json`` (phase,
   steps and samples per phase, plateau states, data seeds, input-stream states and the optimiser's part
   names) and ``summary.json`` (samples/s, achieved TFLOP/s from the analytic FLOP count, MFU against the
   device's bf16 peak, input-wait share, compile seconds, evaluation share, IMC-385 top-1/3/5/10 and
   pixel F1 / AUC per forgery type on fixed validation sets). For ``ptrain4`` (3,804,950 parameters, all
   trained in HR, 128 batch statistics) that is 15.2 MB of weights, 3.5 MB of IMC head and 30.4 MB of
   Adam moments in two parts (15.2 MB each; ``export_bytes``): six files.

``--resume DIR`` continues from such an export exactly: weights from its ``mantranet.msgpack`` (+ head),
Adam's moments and step count from its optimiser parts, the plateau state, and the same data streams from
where they stopped, so that windows of 2 + 2 HR steps end with the parameters, batch statistics and
optimiser state of 4 uninterrupted steps (bit-identical on one CPU: the same programs on the same
numbers; tests/experiments/test_sprint.py). A missing or corrupt part is a one-line error naming the file.
An export made before the optimiser state was shipped (no ``optimizer`` entry in its resume.json) still
resumes, with fresh Adam moments, and says so in one line. The loop counts its evaluation period
(``train.steps_per_epoch`` steps) per window, so with windows longer than that the plateau's evaluations
fall at other steps than an uninterrupted run's. A later window skips the IMC phase once the hand-over
happened (the first window always reaches it, so no export stops in IMC and none ships IMC moments):
windows add up to one IMC run followed by one long HR run.

Plan and its evidence:

* Split: ``imc_share`` = 35 % IMC, the rest HR. The localisation is what is shipped and evaluated; the
  paper pre-trains for far longer, but a feature extractor that has learnt the manipulation families (not
  yet the 385 leaves) already carries the traces the LADN needs, and the HR setting keeps improving it.
* IMC loss: the leaf cross-entropy plus the coarse hierarchy levels' (``hierarchy_weight`` 1). With the
  paper's plain 385-way loss the cross-entropy stays at its chance value ln 385 = 5.95 for the first few
  hundred steps (measured on the cpu preset: 5.99 after 200 steps, experiments/configs/imc385.py), so a
  sprint of a few hundred to a few thousand steps would hand over an untrained extractor; with the
  hierarchy levels the leaf cross-entropy falls within minutes.
* Learning rates: Adam 1e-3 (IMC and LADN) and 1e-4 for the feature extractor in HR: the cpu presets'
  rates, 10x the paper's, which they found needed to move in a few hundred steps; the plateau rule
  (halving after ``PAPER_PATIENCE`` evaluations without improvement) carries over between windows.
* Precision: bf16 trunk convolutions on accelerators (float32 first layer, batch norm, LADN, losses and
  parameters); float32 on CPU.
* Evaluation only at phase ends and every ``train.steps_per_epoch`` steps on small fixed sets, so evaluation and
  metric writing stay under 3 % of the run (reported as ``eval_and_write_share``).

Presets (experiments/configs/sprint.py): ``ptrain4`` (default; the release model, batch 64, 128^2 IMC crops
and 256^2 HR patches, bf16 on GPU) and ``tiny`` (2-core CPU smoke run: the tiny model, 32^2 crops / 64^2
patches). Both phases are built by the experiment runners' pieces (experiments/runners.py: ``imc_pieces``
as ``run_imc385`` does, ``localisation_pieces`` as ``run_ladn`` does in HR) from the config's blocks.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import platform
import shutil
import sys
import tempfile
import time
from typing import Any, Mapping

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root (see __init__.py)

from experiments.launch import UsageError  # noqa: E402

CONFIG = pathlib.Path(__file__).resolve().parent / "configs" / "sprint.py"
MODEL_FILE, HEAD_FILE, RESUME_FILE, SUMMARY_FILE = "mantranet.msgpack", "imc_head.msgpack", "resume.json", "summary.json"
OPT_FILE = "optimizer.{}.msgpack"  # the optimiser state's numbered parts: optimizer.0.msgpack, ...
OPT_FORMAT, OPT_VERSION = "mantra_jax.sprint.optimizer", 1
FILE_LIMIT = 16 * 2**20
PART_BYTES = FILE_LIMIT - 2**20  # array bytes per optimiser part; the rest: room for leaf names, msgpack framing
PHASES = ("imc", "hr", "done")
SEEDS = ("seed", "val_seed", "shuffle_seed")  # a phase's data seeds, kept in resume.json


class SprintError(UsageError):
    """An unusable ``--out`` folder or ``--resume`` export (one line, exit status 2)."""


def versions_and_devices() -> str:
    import flax
    import jax
    import jaxlib
    import numpy
    import optax

    lines = [f"python {platform.python_version()}  jax {jax.__version__}  jaxlib {jaxlib.__version__}  "
             f"flax {flax.__version__}  optax {optax.__version__}  numpy {numpy.__version__}"]
    lines += [f"device {d.id}: {d.platform} {d.device_kind}" for d in jax.devices()]
    return "\n".join(lines)


def _ladn(model: Mapping[str, Any]) -> dict[str, Any]:
    """The ManTra-Net choices of a model block (None: the model's defaults)."""
    return {"anomaly_feature": model["anomaly_feature"], "windows": model["windows"] or None}


def _export_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The exported ManTra-Net's config: float32 weights, computing at the model's default dtype."""
    from experiments.runners import localisation_model_config

    return localisation_model_config({**cfg["model"], "dtype": None}, **_ladn(cfg["model"]))


def _nbytes(a: Any) -> int:
    import numpy as np

    return int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize


def export_bytes(variant: str) -> dict[str, int]:
    """Array bytes of each exported weights and optimiser file of the preset ``variant`` (from
    ``jax.eval_shape``; no computation): the float32 weights, the IMC head, and the HR optimiser state's parts."""
    import jax

    from experiments.configs.sprint import get_config
    from experiments.runners import _cfg_dict, end_to_end, imc_model_config
    from mantra_jax.models.config import model_from_config, variable_shapes

    cfg = _cfg_dict(get_config(variant))
    count = lambda tree: sum(_nbytes(a) for a in jax.tree.leaves(tree))  # noqa: E731
    shapes = variable_shapes(model_from_config(_export_config(cfg)))
    whole = count(shapes)
    imc = model_from_config(imc_model_config({**cfg["model"], "dtype": None})[1])
    head = count(variable_shapes(imc)["params"]["IMCHead"])
    opt = jax.eval_shape(end_to_end(cfg["hr"]["train"], "HR").tx.init, shapes["params"])
    parts = _opt_parts(_opt_leaves(opt))
    return {MODEL_FILE: whole, HEAD_FILE: head} | {OPT_FILE.format(i): count(p) for i, p in enumerate(parts)}


def _opt_leaves(opt_state: Any) -> dict[str, Any]:
    """The leaves of an optax state by their tree path (``jax.tree_util.keystr``), in tree order."""
    import jax

    return {jax.tree_util.keystr(path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(opt_state)[0]}


def _opt_parts(leaves: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``leaves`` packed in order into parts of at most ``PART_BYTES`` array bytes each."""
    parts: list[dict[str, Any]] = [{}]
    size = 0
    for name, leaf in leaves.items():
        n = _nbytes(leaf)
        if n > PART_BYTES:
            raise SprintError(f"optimiser state leaf {name} has {n} bytes, more than a part holds ({PART_BYTES})")
        if size + n > PART_BYTES:
            parts.append({})
            size = 0
        parts[-1][name] = leaf
        size += n
    return parts


def _opt_header(phase: str, part: int, parts: int) -> str:
    return json.dumps({"phase": phase, "part": part, "parts": parts}, sort_keys=True)


def save_optimizer(out: pathlib.Path, phase: str, opt_state: Any) -> dict[str, Any]:
    """Writes ``opt_state`` (the optax state of ``phase``) to ``out`` as numbered msgpack parts, each under
    ``FILE_LIMIT`` and written atomically, and removes parts of an earlier export beyond them. Each part is
    ``{"format", "version", "header": {phase, part, parts} as JSON, "leaves": {tree path: array},
    "sha256"}`` (the digest of ``mantra_jax.io.msgpack_weights``, over the header and the leaves). Returns
    the state's entry for resume.json: ``{"phase", "files": part names, "sha256": their digests}`` (so that
    a part left by another export, whole and valid in itself, is refused)."""
    import jax
    import numpy as np
    from flax import serialization

    from mantra_jax.io.atomic import write_bytes_atomic
    from mantra_jax.io.msgpack_weights import digest

    parts = _opt_parts({k: np.asarray(v) for k, v in _opt_leaves(jax.device_get(opt_state)).items()})
    names = [OPT_FILE.format(i) for i in range(len(parts))]
    digests = [digest(_opt_header(phase, i, len(parts)), leaves) for i, leaves in enumerate(parts)]
    for i, (name, leaves, sha) in enumerate(zip(names, parts, digests)):
        data = serialization.msgpack_serialize({"format": OPT_FORMAT, "version": OPT_VERSION, "sha256": sha,
                                                "header": _opt_header(phase, i, len(parts)), "leaves": leaves})
        if len(data) >= FILE_LIMIT:
            raise SprintError(f"optimiser state part {name} would have {len(data)} bytes, over 16 MiB")
        write_bytes_atomic(out / name, data)
    for stale in sorted(out.glob(OPT_FILE.format("*"))):
        if stale.name not in names:
            stale.unlink()
    return {"phase": phase, "files": names, "sha256": digests}


def load_optimizer(directory: pathlib.Path, entry: Mapping[str, Any], phase: str, target: Any) -> Any:
    """The optimiser state of ``phase`` that ``save_optimizer`` wrote to ``directory`` (``entry``: its record
    in resume.json, ``{"phase", "files", "sha256"}``), as the tree of ``target`` (e.g. ``jax.eval_shape(tx.init,
    params)``). A missing, unreadable or corrupt part, or a state of another phase or tree, is a one-line
    SprintError naming the file."""
    import jax
    import numpy as np

    from mantra_jax.errors import CheckpointError
    from mantra_jax.io.msgpack_weights import digest, read_msgpack

    names, listed = entry.get("files"), entry.get("sha256")
    if (not isinstance(names, list) or not names or entry.get("phase") != phase or not isinstance(listed, list)
            or len(listed) != len(names)):
        raise SprintError(f"--resume {directory}: {RESUME_FILE} has no valid {phase} optimiser entry")
    leaves: dict[str, Any] = {}
    for i, name in enumerate(names):
        path = directory / str(name)
        try:
            payload = read_msgpack(path, "sprint optimiser state part", FILE_LIMIT)
        except CheckpointError as e:
            raise SprintError(f"--resume: {e}") from None
        header = _opt_header(phase, i, len(names))
        if (not isinstance(payload, dict) or payload.get("format") != OPT_FORMAT
                or payload.get("version") != OPT_VERSION or payload.get("header") != header
                or not isinstance(payload.get("leaves"), dict)):
            raise SprintError(f"--resume: {path} is not part {i} of {len(names)} of a {phase} optimiser state")
        try:
            actual = digest(header, payload["leaves"])
        except Exception as e:  # noqa: BLE001 - a garbled tree of any kind
            raise SprintError(f"--resume: optimiser state part {path} is corrupt ({e})") from None
        if payload.get("sha256") != actual:
            raise SprintError(f"--resume: checksum mismatch: optimiser state part {path} is corrupt (stored sha256 "
                              f"{str(payload.get('sha256'))[:12]}..., contents give {actual[:12]}...)")
        if actual != listed[i]:
            raise SprintError(f"--resume: optimiser state part {path} is not the one {RESUME_FILE} lists (sha256 "
                              f"{actual[:12]}..., listed {str(listed[i])[:12]}...): a part of another export")
        leaves.update(payload["leaves"])
    want = _opt_leaves(target)
    layout = lambda a: (tuple(np.shape(a)), np.dtype(a.dtype) if hasattr(a, "dtype") else None)  # noqa: E731
    bad = sorted(set(want) ^ set(leaves)) or [k for k, w in want.items() if layout(w) != layout(leaves[k])]
    if bad:
        raise SprintError(f"--resume {directory}: the saved optimiser state is not this variant's {phase} optimiser "
                          f"(first difference: {bad[0]})")
    return jax.tree.unflatten(jax.tree.structure(target), [leaves[k] for k in want])


def _fresh_record(cfg: Mapping[str, Any]) -> dict[str, Any]:
    return {"phase": "imc", "windows": 0, "steps": {"imc": 0, "hr": 0}, "samples": {"imc": 0, "hr": 0},
            "plateau": {"imc": None, "hr": None}, "data_state": {"imc": None, "hr": None},
            "data_seeds": {p: {k: int(cfg[p]["data"][k]) for k in SEEDS} for p in ("imc", "hr")}}


def _plateau_json(p: Any) -> dict[str, float]:
    import jax

    return {k: float(v) for k, v in jax.device_get(dataclasses.asdict(p)).items()}


def _plateau_state(d: Mapping[str, float] | None):
    if d is None:
        return None
    import jax.numpy as jnp

    from mantra_jax.train.plateau import PlateauState

    best = float("inf") if d["best"] is None else d["best"]  # JSON has no infinity (written as null)
    return PlateauState(best=jnp.asarray(best, jnp.float32), bad_evals=jnp.asarray(int(d["bad_evals"]), jnp.int32),
                        scale=jnp.asarray(d["scale"], jnp.float32), reductions=jnp.asarray(int(d["reductions"]), jnp.int32))


def _load_resume(directory: pathlib.Path) -> tuple[dict[str, Any], Any, Any]:
    """(record, whole-model variables, IMC head params or None) of a previous export."""
    from mantra_jax.errors import CheckpointError
    from mantra_jax.io.msgpack_weights import load_weights_file
    from mantra_jax.io.msgpack_weights import read_msgpack

    try:
        record = json.loads((directory / RESUME_FILE).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SprintError(f"--resume {directory}: no readable {RESUME_FILE} ({e})") from None
    if record.get("phase") not in PHASES:
        raise SprintError(f"--resume {directory}: {RESUME_FILE} has no valid phase")
    try:
        _, variables = load_weights_file(directory / MODEL_FILE)
        head = None
        if (directory / HEAD_FILE).exists():
            head = read_msgpack(directory / HEAD_FILE, "IMC head file", FILE_LIMIT)
    except CheckpointError as e:
        raise SprintError(f"--resume: {e}") from None
    return record, variables, head


def _phase(cfg: Mapping[str, Any], phase: str, dtype: str, seeds: Mapping[str, int]) -> dict[str, Any]:
    """The config of ``phase`` as the runners' pieces read it: the model block computing in ``dtype``, the
    phase's data block with the data ``seeds`` (resume.json's), its train block, ``progress``."""
    return {"model": {**cfg["model"], "dtype": dtype}, "data": {**cfg[phase]["data"], **seeds},
            "train": cfg[phase]["train"], "progress": cfg["progress"]}


def _budgeted(loop: Any, budget_s: float) -> Any:
    """``loop`` (a LoopConfig) stopping after ``budget_s`` seconds (at least 1), logging at least at its end."""
    return dataclasses.replace(loop, budget_s=max(budget_s, 1.0), log_every_steps=min(loop.log_every_steps,
                                                                                      loop.num_steps))


def _phase_report(s: Mapping[str, Any], flops_per_sample: float, peak: float | None) -> dict[str, Any]:
    t = s["timing"]
    sps = t["samples_per_s"]
    achieved = sps * flops_per_sample if sps else None
    return {"steps": t["steps_run"], "samples": t["samples"], "samples_per_s": sps,
            "achieved_tflops": achieved / 1e12 if achieved else None,
            "mfu": achieved / peak if achieved and peak else None,
            "input_wait_share": t["input_wait_share"], "compile_s": t["compile_s"],
            "eval_and_write_share": t["eval_and_write_share"], "total_s": t["total_s"],
            "stopped": s["stopped"], "memory": s["memory"]}


def _record_phase(record: dict[str, Any], phase: str, state: Any, s: Mapping[str, Any]) -> None:
    """Adds the window's ``phase`` (its fit's final ``state`` and summary ``s``) to the resume record."""
    record["steps"][phase] += s["timing"]["steps_run"]
    record["samples"][phase] += s["timing"]["samples"]
    record["plateau"][phase] = _plateau_json(state.plateau)
    record["data_state"][phase] = s["data_state"]


def _imc_phase(cfg: Mapping[str, Any], dtype: str, record: dict[str, Any], whole: Any, head: Any, budget_s: float,
               workdir: pathlib.Path, peak: float | None) -> tuple[Any, dict[str, Any]]:
    """IMC pre-training for ``budget_s`` seconds, from the resumed model ``whole``'s feature extractor and the
    IMC ``head`` where given; returns (the trained IMC params, the phase's report)."""
    import jax

    from experiments.runners import imc_model_config, imc_pieces
    from mantra_jax.train.end_to_end import load_pretrained_featex
    from mantra_jax.train.flops import train_flops_per_pixel
    from mantra_jax.train.loop import fit
    from mantra_jax.train.state import init_variables

    imc = imc_pieces(_phase(cfg, "imc", dtype, record["data_seeds"]["imc"]))
    params = dict(jax.device_get(init_variables(imc["model"], imc["config"].seed)["params"]))
    if whole is not None:
        params = load_pretrained_featex(params, whole["params"])
    if head is not None:
        params["IMCHead"] = head
    imc["config"] = _budgeted(imc["config"], budget_s)
    state, s = fit(**imc, workdir=workdir, init_variables={"params": params, "batch_stats": {}}, name="imc385",
                   plateau=_plateau_state(record["plateau"]["imc"]), data_state=record["data_state"]["imc"])
    _record_phase(record, "imc", state, s)
    record["phase"] = "hr"
    crop = cfg["imc"]["data"]["crop_size"]
    rep = _phase_report(s, train_flops_per_pixel(cfg["model"]["variant"], "imc") * crop**2, peak)
    level = imc_model_config(cfg["model"])[0]
    rep["val"] = {f"top{k}": s["val"][f"{level}/top{k}"] for k in (1, 3, 5, 10)} | {"ce": s["val"]["ce"]}
    return jax.device_get(state.params), rep


def _hr_phase(cfg: Mapping[str, Any], dtype: str, record: dict[str, Any], whole: Any, imc_params: Any,
              hr_opt: Any, end: float, workdir: pathlib.Path, peak: float | None) -> tuple[Any, Any, dict[str, Any]]:
    """HR localisation until ``end`` (``time.perf_counter``), from the model ``whole`` where given (a resumed
    one, handed over), else a fresh ManTra-Net with the feature extractor of ``imc_params`` (the hand-over),
    and Adam's moments ``hr_opt`` where given; returns (its variables, its optimiser state, its report)."""
    import jax

    from experiments.runners import localisation_pieces
    from mantra_jax.data.forgeries import FORGERY_KINDS
    from mantra_jax.train.flops import train_flops_per_pixel
    from mantra_jax.train.loop import fit

    hr = localisation_pieces(_phase(cfg, "hr", dtype, record["data_seeds"]["hr"]), setting="HR",
                             **_ladn(cfg["model"]), pretrained=imc_params, variables=whole)
    hr["config"] = _budgeted(hr["config"], end - time.perf_counter())
    state, s = fit(**hr, workdir=workdir, name="hr", plateau=_plateau_state(record["plateau"]["hr"]),
                   data_state=record["data_state"]["hr"], init_opt_state=hr_opt)
    whole = jax.device_get({"params": state.params, "batch_stats": state.batch_stats})
    _record_phase(record, "hr", state, s)
    patch = cfg["hr"]["data"]["patch_size"]
    rep = _phase_report(s, train_flops_per_pixel(cfg["model"]["variant"], "mantranet") * patch**2, peak)
    rep["val"] = {k: {"f1": s["val"][f"f1/{k}"], "auc": s["val"][f"auc/{k}"]} for k in FORGERY_KINDS}
    rep["val"]["overall"] = {"f1": s["val"]["f1/overall"], "auc": s["val"]["auc"]}
    return whole, jax.device_get(state.opt_state), rep


def _export(out: pathlib.Path, cfg: Mapping[str, Any], whole: Any, head: Any, hr_opt: Any, record: dict[str, Any],
            summary: dict[str, Any], t0: float) -> None:
    """Writes the export (the module docstring) and completes ``summary`` with its files' sizes."""
    import jax
    import numpy as np
    from flax import serialization

    from mantra_jax.io.atomic import write_bytes_atomic, write_text_atomic
    from mantra_jax.io.msgpack_weights import save_weights_file
    from mantra_jax.io.json_safe import json_safe as _json

    out.mkdir(parents=True, exist_ok=True)
    save_weights_file(out / MODEL_FILE, _export_config(cfg), {"params": whole["params"],
                                                              "batch_stats": whole["batch_stats"]})
    if head is not None:
        write_bytes_atomic(out / HEAD_FILE, serialization.msgpack_serialize(jax.tree.map(np.asarray, head)))
    record["optimizer"] = save_optimizer(out, "hr", hr_opt)  # before resume.json lists it
    record["elapsed_s"] = record.get("elapsed_s", 0.0) + (time.perf_counter() - t0)
    write_text_atomic(out / RESUME_FILE, json.dumps(_json(record), indent=1, sort_keys=True) + "\n")
    summary.update(resume=_json(record), wall_s=time.perf_counter() - t0,
                   samples_per_s={k: v["samples_per_s"] for k, v in summary["phases"].items()},
                   files={p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()})
    write_text_atomic(out / SUMMARY_FILE, json.dumps(_json(summary), indent=1, sort_keys=True) + "\n")
    summary["files"][SUMMARY_FILE] = (out / SUMMARY_FILE).stat().st_size
    too_big = {k: v for k, v in summary["files"].items() if v >= FILE_LIMIT}
    if too_big:
        raise SprintError(f"exported files over 16 MiB: {too_big}")


def run(config: Any, out: str, *, budget_s: float, resume: str = "") -> dict[str, Any]:
    """One window of the sprint of ``config`` (experiments/configs/sprint.py) in ``budget_s`` seconds,
    exported to ``out``, continuing the export ``resume`` (empty: a fresh start); returns its summary."""
    import jax

    from experiments.runners import _cfg_dict, end_to_end
    from mantra_jax.train.end_to_end import load_pretrained_featex
    from mantra_jax.train.flops import peak_flops

    t0 = time.perf_counter()
    print(versions_and_devices(), flush=True)
    cfg = _cfg_dict(config)
    if not (0 <= cfg["imc_share"] <= 1 and 0 <= cfg["export_reserve"] < 1):
        raise ValueError(f"imc_share must be in [0, 1] and export_reserve in [0, 1), got {cfg['imc_share']} and "
                         f"{cfg['export_reserve']}")
    device = jax.devices()[0]
    dtype = "float32" if device.platform == "cpu" else cfg["model"]["dtype"]
    peak = peak_flops(device.device_kind)
    out = pathlib.Path(out)
    if out.exists() and any(out.iterdir()) and not (out / RESUME_FILE).exists():
        raise SprintError(f"--out {out} exists and holds files that are not a sprint export; use another folder")
    record, whole, head = _load_resume(pathlib.Path(resume)) if resume else (_fresh_record(cfg), None, None)
    if record["phase"] == "done":
        record["phase"] = "hr"  # a finished export trains on in HR
    record["windows"] += 1
    end = t0 + budget_s * (1 - cfg["export_reserve"])
    summary: dict[str, Any] = {"variant": cfg["model"]["variant"], "device": device.device_kind, "dtype": dtype,
                               "peak_bf16_flops": peak, "budget_s": budget_s, "config": cfg, "phases": {}}
    whole = None if whole is None else jax.device_get(whole)  # the resumed model's variables
    hr_opt = None  # fresh Adam moments unless the resumed export continues HR with its own
    if resume and record["phase"] == "hr":
        if record.get("optimizer") is None:
            print(f"sprint: --resume {resume} has no optimiser state (an export made before it was shipped): "
                  "HR goes on with fresh Adam moments", flush=True)
        else:
            hr_opt = load_optimizer(pathlib.Path(resume), record["optimizer"], "hr",
                                    jax.eval_shape(end_to_end(cfg["hr"]["train"], "HR").tx.init, whole["params"]))
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="sprint_"))
    imc_params = None
    try:
        if record["phase"] == "imc":
            imc_params, summary["phases"]["imc"] = _imc_phase(
                cfg, dtype, record, whole, head, (end - time.perf_counter()) * cfg["imc_share"], scratch / "imc", peak)
            head = imc_params["IMCHead"]
            if whole is not None:  # the hand-over into a resumed model (a fresh one gets it in _hr_phase)
                whole = {**whole, "params": load_pretrained_featex(whole["params"], imc_params)}
        whole, hr_opt, summary["phases"]["hr"] = _hr_phase(cfg, dtype, record, whole, imc_params, hr_opt, end,
                                                           scratch / "hr", peak)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _export(out, cfg, whole, head, hr_opt, record, summary, t0)
    print(f"sprint: {summary['wall_s']:.0f} s, samples/s {summary['samples_per_s']}, export in {out}", flush=True)
    return summary


def main() -> None:
    """The command line (the module docstring)."""
    from absl import flags

    from experiments.launch import experiment_main

    flags.DEFINE_float("budget_s", None, "Wall-clock seconds for the whole sprint, compiles included (> 0).",
                       required=True)
    flags.register_validator("budget_s", lambda v: v is None or v > 0, "--budget_s must be positive")
    flags.DEFINE_string("resume", "", "A previous export to continue from (empty: a fresh start).")
    experiment_main(run, str(CONFIG), preset="ptrain4", keywords=("budget_s", "resume"),
                    workdir=("out", "Export folder (created; a previous export is updated)."))


if __name__ == "__main__":
    main()
