"""experiments/sprint.py end to end with the tiny preset: two steps per phase, export, resume (exact: the
resumed window equals an uninterrupted sprint), an old export without optimiser state, a corrupt part; its
command line."""

import contextlib
import io
import json
import shutil

import jax
import numpy as np
import pytest

from experiments import sprint
from experiments.configs.sprint import get_config
from experiments.launch import exit_status
from mantra_jax.io.checkpoints import load_model
from tests.conftest import subprocess_env
from tests.train.tiny import fast_compile, fast_compile_models

slow = pytest.mark.slow  # four sprints of the tiny model (4 step compiles; the others' are cache loads)

_CACHE_OPTIONS = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
                  "jax_persistent_cache_min_entry_size_bytes")


@contextlib.contextmanager
def compile_cache(folder):
    """JAX's persistent compilation cache in ``folder``, every program stored, for the block; then the previous
    settings back. The resume window of a sprint runs the same HR programs as the first window (as its own
    process would, from the cache the CLI keeps): loading them instead of compiling them again halves the
    module's cost and changes no result (the cache returns the executable XLA compiled for that program)."""
    from jax.experimental.compilation_cache import compilation_cache

    old = {name: getattr(jax.config, name) for name in _CACHE_OPTIONS}
    for name, value in zip(_CACHE_OPTIONS, (str(folder), 0.0, -1)):
        jax.config.update(name, value)
    compilation_cache.reset_cache()  # JAX reads the settings at its first compile; read them again
    try:
        yield
    finally:
        for name, value in old.items():
            jax.config.update(name, value)
        compilation_cache.reset_cache()


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Sprints of the tiny model, each 2 IMC steps then HR: ``w1`` (2 HR steps), ``w2`` resumed from it (2
    more), ``whole`` uninterrupted (4 HR steps), ``old`` resumed (1 step) from a copy of ``w1`` as an export
    made before the optimiser state was shipped; per folder the summary, the HR train state the sprint's
    ``fit`` returned (the model it trained) and what it printed."""
    root = tmp_path_factory.mktemp("sprint")
    runs = {}
    # the sprint's orchestration is under test, not the CPU convolution speed-ups (see tests/train/tiny.py)
    with compile_cache(root / "xla"), fast_compile_models():
        runs["w1"] = _sprint(root / "w1")
        runs["w2"] = _sprint(root / "w2", resume=root / "w1")
        runs["whole"] = _sprint(root / "whole", hr_steps=4)
        old = _old_style(root / "w1", root / "w1_old")
        runs["old"] = _sprint(root / "old", resume=old, hr_steps=1)
    return root, runs


def _tiny(hr_steps=2):
    """The tiny preset for 2 IMC and ``hr_steps`` HR steps, no progress lines."""
    c = get_config("tiny")
    c.progress = False
    c.imc.train.num_steps, c.hr.train.num_steps = 2, hr_steps
    return c


def _sprint(out, resume="", hr_steps=2):
    """(summary, (model, HR state) that fit returned, stdout) of a tiny sprint of 2 steps a phase (HR:
    ``hr_steps``) into ``out``, continuing ``resume``."""
    from mantra_jax.train import loop

    fit, trained = loop.fit, []

    def recording(**kwargs):
        state, summary = fit(**kwargs)
        if kwargs["name"] == "hr":
            trained.append((kwargs["model"], jax.device_get(state)))
        return state, summary

    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(loop, "fit", recording)  # sprint.run imports fit from the module when it runs
        s = sprint.run(_tiny(hr_steps), str(out), budget_s=900, resume=str(resume or ""))
    (hr,) = trained
    return s, hr, printed.getvalue()


def _old_style(export, folder):
    """A copy of ``export`` as the sprint wrote it before it shipped the optimiser state."""
    folder.mkdir()
    record = json.loads((export / sprint.RESUME_FILE).read_text())
    del record["optimizer"]
    for name in (sprint.MODEL_FILE, sprint.HEAD_FILE):
        shutil.copy(export / name, folder / name)
    (folder / sprint.RESUME_FILE).write_text(json.dumps(record))
    return folder


def _record(folder):
    return json.loads((folder / sprint.RESUME_FILE).read_text())


def _optimizer_leaves(folder):
    """{tree path: array} of the optimiser state exported to ``folder`` (its parts' leaves together)."""
    from flax import serialization

    leaves = {}
    for name in _record(folder)["optimizer"]["files"]:
        leaves.update(serialization.msgpack_restore((folder / name).read_bytes())["leaves"])
    return leaves


def _adam_counts(leaves):
    return {k: int(v) for k, v in leaves.items() if k.endswith(".count")}


@slow
def test_export_holds_at_most_eight_files_each_under_16_mib(exports):
    root, _ = exports
    files = sorted(p.name for p in (root / "w1").iterdir())
    assert files == sorted([sprint.MODEL_FILE, sprint.HEAD_FILE, sprint.RESUME_FILE, sprint.SUMMARY_FILE,
                            sprint.OPT_FILE.format(0)])  # the tiny model's Adam state fits one part
    assert all((root / "w1" / f).stat().st_size < sprint.FILE_LIMIT for f in files)


@slow
def test_release_size_export_fits_eight_files_under_the_limit():
    sizes = sprint.export_bytes("ptrain4")  # array bytes from jax.eval_shape; msgpack adds names only
    assert 14e6 < sizes[sprint.MODEL_FILE] < sprint.FILE_LIMIT - 2**20
    assert sizes[sprint.HEAD_FILE] < sprint.FILE_LIMIT
    opt = {k: v for k, v in sizes.items() if k.startswith("optimizer.")}
    # Adam's mu and nu for every parameter (all train in HR): twice the weights, so two parts
    assert sorted(opt) == [sprint.OPT_FILE.format(0), sprint.OPT_FILE.format(1)]
    assert sum(opt.values()) >= 2 * (sizes[sprint.MODEL_FILE] - 2**12)  # less the batch statistics (no moments)
    assert all(v <= sprint.PART_BYTES for v in opt.values())
    assert len(sizes) + 2 <= 8  # with resume.json and summary.json


@slow
def test_summary_reports_each_phase(exports):
    root, _ = exports
    summary = json.loads((root / "w1" / sprint.SUMMARY_FILE).read_text())
    assert set(summary["samples_per_s"]) == {"imc", "hr"} and all(v > 0 for v in summary["samples_per_s"].values())
    imc, hr = summary["phases"]["imc"], summary["phases"]["hr"]
    assert set(imc["val"]) >= {"top1", "top3", "top5", "top10"}
    assert set(hr["val"]) == {"splicing", "copy_move", "removal", "enhancement", "overall"}
    assert all(set(v) == {"f1", "auc"} for v in hr["val"].values())
    for phase in (imc, hr):
        assert phase["steps"] == 2 and phase["compile_s"] > 0 and 0 <= phase["input_wait_share"] <= 1
        assert len(phase["memory"]["attempts"]) == 1  # the train step compiled once (and then only run)


@slow
def test_weights_load_as_the_model_the_sprint_trained(exports):
    root, runs = exports
    model, variables, config = load_model(root / "w1" / sprint.MODEL_FILE)
    assert config["kind"] == "mantranet" and config["variant"] == "tiny"
    trained_model, state = runs["w1"][1]  # the first window's HR fit
    assert model == trained_model  # the same network: the same program below
    model = fast_compile(model)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)  # preprocess's range
    apply = jax.jit(model.apply)
    got = np.asarray(apply(variables, x)["pred"])
    want = np.asarray(apply({"params": state.params, "batch_stats": state.batch_stats}, x)["pred"])
    # float32 weights saved as float32 are the same numbers; one program on the same input: atol 0
    np.testing.assert_array_equal(got, want)
    assert np.ptp(want) > 0  # a heat map, not a constant


@slow
def test_resume_equals_an_uninterrupted_sprint(exports):
    root, runs = exports
    r1, r2, rw = (_record(root / n) for n in ("w1", "w2", "whole"))
    assert r1["phase"] == r2["phase"] == "hr" and r2["windows"] == 2
    assert r2["steps"] == rw["steps"] == {"imc": 2, "hr": 4}  # IMC done in the first window; HR went on
    assert r2["samples"] == rw["samples"] and r2["data_seeds"] == rw["data_seeds"]
    # the HR stream went on from where it stopped: after 2 + 2 steps it is where 4 uninterrupted steps leave it
    assert r2["data_state"] == rw["data_state"] and r2["data_state"]["hr"] != r1["data_state"]["hr"]
    assert r2["plateau"] == rw["plateau"]
    assert "imc" not in runs["w2"][0]["phases"]
    assert (root / "w2" / sprint.HEAD_FILE).read_bytes() == (root / "whole" / sprint.HEAD_FILE).read_bytes()
    # Adam's moments and counts carried over: the resumed window took the uninterrupted run's steps 3 and 4
    # from its weights, moments and batches, with the same compiled programs (the first window's, from the
    # compilation cache), so on one CPU every number is the same (bit-identical; nothing to bound)
    o1, o2, ow = (_optimizer_leaves(root / n) for n in ("w1", "w2", "whole"))
    assert set(_adam_counts(o1).values()) == {2} and set(_adam_counts(o2).values()) == {4}
    assert sorted(o2) == sorted(ow)
    for k in ow:
        np.testing.assert_array_equal(o2[k], ow[k], err_msg=k)
    v2, vw = (load_model(root / n / sprint.MODEL_FILE)[1] for n in ("w2", "whole"))
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(vw)[0], jax.tree.leaves(v2)):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a), err_msg=jax.tree_util.keystr(path))
    assert jax.tree.structure(v2) == jax.tree.structure(vw)


@slow
def test_old_export_resumes_with_fresh_moments_and_says_so(exports):
    root, runs = exports
    _, _, printed = runs["old"]
    notes = [line for line in printed.splitlines() if "optimiser state" in line]
    assert len(notes) == 1 and "fresh Adam moments" in notes[0], printed
    assert _record(root / "old")["steps"] == {"imc": 2, "hr": 3}
    # its Adam counts started again at 0 (an exact resume would be at 2 + 1)
    assert set(_adam_counts(_optimizer_leaves(root / "old")).values()) == {1}
    assert "optimiser state" not in runs["w2"][2]  # an export with the state resumes without a note


@slow
@pytest.mark.parametrize("damage", ["flip", "missing", "another_export"])
def test_corrupt_or_missing_optimizer_part_is_one_line_naming_the_file(exports, tmp_path, capsys, damage):
    root, _ = exports
    export = tmp_path / "export"
    shutil.copytree(root / "w1", export)
    part = export / sprint.OPT_FILE.format(0)
    if damage == "flip":
        data = bytearray(part.read_bytes())
        data[len(data) // 2] ^= 0x01  # one bit of an array's bytes (the leaves are most of the file)
        part.write_bytes(bytes(data))
    elif damage == "missing":
        part.unlink()
    else:  # whole and valid, but the uninterrupted sprint's (an export updated in place and stopped half-way)
        shutil.copy(root / "whole" / part.name, part)
    out = tmp_path / "out"
    rc = exit_status(lambda: sprint.run(_tiny(), str(out), budget_s=900, resume=str(export)))
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and str(part) in err, err
    assert {"flip": "checksum mismatch", "missing": "cannot read sprint optimiser state part",
            "another_export": "a part of another export"}[damage] in err
    assert not out.exists()  # nothing written


@pytest.mark.parametrize("args, match", [
    (["--config.bogus=1"], "bad flag"),
    (["--config.imc.train.batch_size=many"], "bad flag"),
    (["--config=experiments/configs/sprint.py:gpu"], "unknown preset"),
    (["--budget_s=0"], "--budget_s must be positive"),
    (["--variant=tiny"], "bad flag"),  # the old command line's flag: now --config=...:tiny
])
def test_a_bad_flag_or_override_is_one_line_and_status_2(tmp_path, args, match):
    _cli_refuses(tmp_path, args, 2, match)


def test_a_bad_setting_is_one_line_and_status_1(tmp_path):
    _cli_refuses(tmp_path, ["--config.imc_share=1.5"], 1, "imc_share must be in [0, 1]")


def _cli_refuses(tmp_path, args, code, match):
    """experiments/sprint.py with ``args`` ends with status ``code`` and one line on stderr holding ``match``,
    without a traceback or an export."""
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(sprint.__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "experiments" / "sprint.py"), f"--out={tmp_path / 'out'}",
                           "--budget_s=60", *args], capture_output=True, text=True, env=subprocess_env(), cwd=root,
                          timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == code and len(lines) == 1 and match in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
