"""experiments/sprint.py end to end with the tiny variant: two steps per phase, export, resume."""

import contextlib
import json

import jax
import numpy as np
import pytest

from experiments import sprint
from mantra_jax.io.checkpoints import load_model
from tests.train.tiny import fast_compile, fast_compile_models

pytestmark = pytest.mark.slow  # two sprints of the tiny model (4 step compiles; the resume's are cache loads)

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
    root = tmp_path_factory.mktemp("sprint")
    first, second = root / "w1", root / "w2"
    # the sprint's orchestration is under test, not the CPU convolution speed-ups (see tests/train/tiny.py)
    with compile_cache(root / "xla"), fast_compile_models():
        s1, s2 = _two_windows(first, second)
    return first, second, s1, s2


def _two_windows(first, second):
    s1 = sprint.run(sprint.parse_args(["--out", str(first), "--budget_s", "900", "--variant", "tiny", "--steps", "2",
                                       "--quiet"]))
    s2 = sprint.run(sprint.parse_args(["--out", str(second), "--budget_s", "900", "--variant", "tiny", "--steps", "2",
                                       "--resume", str(first), "--quiet"]))
    return s1, s2


def test_export_holds_at_most_eight_files_each_under_16_mib(exports):
    first, _, s1, _ = exports
    files = sorted(p.name for p in first.iterdir())
    assert files == sorted([sprint.MODEL_FILE, sprint.HEAD_FILE, sprint.RESUME_FILE, sprint.SUMMARY_FILE])
    assert all((first / f).stat().st_size < sprint.FILE_LIMIT for f in files)


def test_release_size_weights_fit_the_file_limit():
    sizes = sprint.export_bytes("ptrain4")  # float32 bytes from jax.eval_shape; msgpack adds names only
    assert 14e6 < sizes[sprint.MODEL_FILE] < sprint.FILE_LIMIT - 2**20
    assert sizes[sprint.HEAD_FILE] < sprint.FILE_LIMIT


def test_summary_reports_each_phase(exports):
    first, *_ = exports
    summary = json.loads((first / sprint.SUMMARY_FILE).read_text())
    assert set(summary["samples_per_s"]) == {"imc", "hr"} and all(v > 0 for v in summary["samples_per_s"].values())
    imc, hr = summary["phases"]["imc"], summary["phases"]["hr"]
    assert set(imc["val"]) >= {"top1", "top3", "top5", "top10"}
    assert set(hr["val"]) == {"splicing", "copy_move", "removal", "enhancement", "overall"}
    assert all(set(v) == {"f1", "auc"} for v in hr["val"].values())
    for phase in (imc, hr):
        assert phase["steps"] == 2 and phase["compile_s"] > 0 and 0 <= phase["input_wait_share"] <= 1
        assert len(phase["memory"]["attempts"]) == 1  # the train step compiled once (and then only run)


def test_weights_load_as_a_detection_model(exports):
    first, *_ = exports
    model, variables, config = load_model(first / sprint.MODEL_FILE)
    assert config["kind"] == "mantranet" and config["variant"] == "tiny"
    out = jax.jit(fast_compile(model).apply)(variables, np.zeros((1, 16, 16, 3), np.float32))
    assert np.isfinite(np.asarray(out["pred"])).all()


def test_resume_continues_the_same_run(exports):
    first, second, s1, s2 = exports
    r1, r2 = (json.loads((d / sprint.RESUME_FILE).read_text()) for d in (first, second))
    assert r1["phase"] == r2["phase"] == "hr" and r2["windows"] == 2
    assert r2["steps"] == {"imc": 2, "hr": 4}  # IMC done in the first window; HR went on
    assert r2["samples"]["hr"] == 2 * r1["samples"]["hr"] and r2["data_seeds"] == r1["data_seeds"]
    assert r2["data_state"]["hr"] != r1["data_state"]["hr"]  # the HR stream went on from where it stopped
    assert "imc" not in s2["phases"]
    _, v1, _ = load_model(first / sprint.MODEL_FILE)
    _, v2, _ = load_model(second / sprint.MODEL_FILE)
    diff = jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))), v1["params"], v2["params"])
    assert max(jax.tree.leaves(diff)) > 0  # trained on from the exported weights
