"""Crafted but valid HDF5 weight files: the loader never reads another file and never reads (or allocates)
a dataset before its declared shape, dtype and storage have been checked against the model.

Each file is the official layout (release trunk, 4 plain filters) with one dataset, ``Featex/b1c2/bias:0``
(32 values), replaced. External targets are temporary files the test writes, never system files.
"""

import os
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest

from mantra_jax.errors import WeightFileError
from mantra_jax.io.keras_h5 import load_keras_weights, read_keras_h5, release_shapes, save_keras_h5
from mantra_jax.models.featex import RELEASE_TRUNK

TARGET = "b1c2/bias:0"  # in group Featex; shape (32,)
SECRET = np.arange(32, dtype=np.float32) + 1000.0  # what an external target holds


@pytest.fixture(scope="module")
def base_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    weights = {k: (0.01 * rng.standard_normal(s)).astype(np.float32)
               for k, s in release_shapes(4, RELEASE_TRUNK, 256).items()}
    weights["bnorm/bnorm/moving_variance"] = np.abs(weights["bnorm/bnorm/moving_variance"]) + 1.0
    weights["glbStd/glbStd/min_std"] = np.abs(weights["glbStd/glbStd/min_std"])
    path = tmp_path_factory.mktemp("base") / "base.h5"
    save_keras_h5(path, weights)
    return path


def _crafted(base, out, replace):
    """A copy of ``base`` whose Featex/b1c2/bias:0 is removed and then made by ``replace(group, name)``."""
    out.write_bytes(base.read_bytes())
    with h5py.File(out, "a") as f:
        del f["Featex"][TARGET]
        replace(f["Featex"], TARGET)
    return out


def _other_h5(path):
    with h5py.File(path, "w") as g:
        g.create_dataset("secret", data=SECRET)
    return path


@pytest.fixture
def no_reads(monkeypatch):
    """Fails the test if any dataset's values are read (only metadata may be looked at)."""
    def refuse(self, *a, **k):
        raise AssertionError(f"dataset {self.name} was read before it was checked")
    monkeypatch.setattr(h5py.Dataset, "__getitem__", refuse)
    monkeypatch.setattr(h5py.Dataset, "read_direct", refuse)
    monkeypatch.setattr(h5py.Dataset, "__array__", refuse)


def _refused(path, match):
    with pytest.raises(WeightFileError, match=match) as e:
        load_keras_weights(path)
    assert "\n" not in str(e.value)
    assert str(path) in str(e.value)
    return str(e.value)


def test_the_untouched_base_file_loads(base_file):
    _, variables = load_keras_weights(base_file)
    assert variables["params"]["Featex"]["b1c2"]["bias"].shape == (32,)


def test_external_link_to_a_dataset_in_another_h5_is_refused(base_file, tmp_path, no_reads):
    other = _other_h5(tmp_path / "other.h5")
    bad = _crafted(base_file, tmp_path / "x.h5",
                   lambda g, n: g["b1c2"].__setitem__("bias:0", h5py.ExternalLink(str(other), "/secret")))
    _refused(bad, r"Featex/b1c2/bias:0.*external link.*other\.h5")


def test_external_link_to_a_non_hdf5_file_is_refused_in_one_line(base_file, tmp_path, no_reads):
    text = tmp_path / "passwd"
    text.write_text("root:x:0:0:root:/root:/bin/bash\n")
    bad = _crafted(base_file, tmp_path / "x.h5",
                   lambda g, n: g["b1c2"].__setitem__("bias:0", h5py.ExternalLink(str(text), "/x")))
    _refused(bad, r"external link")


def test_external_storage_is_refused_without_reading_the_target(base_file, tmp_path, no_reads):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(SECRET.tobytes())
    bad = _crafted(base_file, tmp_path / "x.h5",
                   lambda g, n: g.create_dataset(n, shape=(32,), dtype="<f4", external=[(str(raw), 0, 128)]))
    _refused(bad, r"Featex/b1c2/bias:0 keeps its data in an external file.*raw\.bin")


def test_virtual_dataset_mapping_another_file_is_refused(base_file, tmp_path, no_reads):
    other = _other_h5(tmp_path / "other.h5")

    def vds(g, n):
        layout = h5py.VirtualLayout(shape=(32,), dtype="<f4")
        layout[:] = h5py.VirtualSource(str(other), "secret", shape=(32,))
        g.create_virtual_dataset(n, layout)

    bad = _crafted(base_file, tmp_path / "x.h5", vds)
    _refused(bad, r"Featex/b1c2/bias:0 is a virtual dataset")


@pytest.mark.parametrize("log2_size", [31, 40])
def test_declared_huge_chunked_dataset_is_refused_from_its_metadata(base_file, tmp_path, no_reads, log2_size):
    n = 2 ** log2_size
    bad = _crafted(base_file, tmp_path / "x.h5",
                   lambda g, name: g.create_dataset(name, shape=(n,), dtype="<f4", chunks=(1024,)))
    assert bad.stat().st_size < base_file.stat().st_size + (1 << 20)  # nothing written: only declared
    _refused(bad, rf"Featex/b1c2/bias has shape \({n},\), expected \(32,\)")


def test_wrong_dtype_is_refused_before_reading(base_file, tmp_path, no_reads):
    bad = _crafted(base_file, tmp_path / "x.h5",
                   lambda g, n: g.create_dataset(n, shape=(32,), dtype=h5py.string_dtype()))
    _refused(bad, r"Featex/b1c2/bias:0 holds .*not numbers")


@pytest.mark.parametrize("target", ["/elsewhere", "../../elsewhere"])
def test_soft_link_leaving_its_group_is_refused(base_file, tmp_path, no_reads, target):
    def soft(g, n):
        g.file.create_dataset("/elsewhere", data=SECRET)
        g["b1c2"]["bias:0"] = h5py.SoftLink(target)

    bad = _crafted(base_file, tmp_path / "x.h5", soft)
    _refused(bad, rf"soft link to {re.escape(target)}, outside /Featex")


def test_soft_link_inside_its_group_is_followed(base_file, tmp_path):
    def soft(g, n):
        g.create_dataset("spare_bias", data=SECRET)
        g["b1c2"]["bias:0"] = h5py.SoftLink("/Featex/spare_bias")

    ok = _crafted(base_file, tmp_path / "x.h5", soft)
    weights = read_keras_h5(ok)
    np.testing.assert_array_equal(weights["Featex/b1c2/bias"], SECRET)


def test_a_group_that_is_an_external_link_is_refused(base_file, tmp_path, no_reads):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as g:
        g.create_group("pred").attrs["weight_names"] = np.array(["pred/bias:0"], dtype=object)
        g["pred"].create_dataset("pred/bias:0", data=np.zeros(1, np.float32))
    bad = tmp_path / "x.h5"
    bad.write_bytes(base_file.read_bytes())
    with h5py.File(bad, "a") as f:
        del f["pred"]
        f["pred"] = h5py.ExternalLink(str(other), "/pred")
    _refused(bad, r"/pred is an external link")


def test_non_standard_filter_is_refused(base_file, tmp_path, no_reads):
    # An optional filter whose plug-in is absent: HDF5 stores it in the pipeline and skips it when writing;
    # a reader with the plug-in would run it. Filter 307 is bzip2's registered id.
    def filtered(g, n):
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((32,))
        dcpl.set_filter(307, h5py.h5z.FLAG_OPTIONAL, ())
        space = h5py.h5s.create_simple((32,))
        h5py.h5d.create(g.id, n.encode(), h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)

    bad = _crafted(base_file, tmp_path / "x.h5", filtered)
    _refused(bad, r"Featex/b1c2/bias:0 uses HDF5 filter 307")


def test_mantra_info_refuses_external_storage_with_exit_2_and_one_line(base_file, tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(SECRET.tobytes())
    bad = _crafted(base_file, tmp_path / "x.h5",
                   lambda g, n: g.create_dataset(n, shape=(32,), dtype="<f4", external=[(str(raw), 0, 128)]))
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "mantra_jax.cli", "info", str(bad)], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "external file" in lines[0], r.stderr


# ---- the other formats: .msgpack weights files and Orbax checkpoint folders ---------------------------------

def _msgpack_with_config(path, config_text):
    from flax import serialization

    from mantra_jax.io.msgpack_weights import FORMAT
    payload = {"format": FORMAT, "version": 1, "config": config_text, "variables": {}}
    path.write_bytes(serialization.msgpack_serialize(payload))
    return path


def test_msgpack_config_nested_100000_deep_is_refused_in_one_line(tmp_path):
    from mantra_jax.errors import CheckpointError
    from mantra_jax.io.msgpack_weights import load_weights_file

    bad = _msgpack_with_config(tmp_path / "deep.msgpack", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match=r"deep\.msgpack: model config is not a JSON text of at most") as e:
        load_weights_file(bad)
    assert "\n" not in str(e.value)


def test_msgpack_config_nested_deeper_than_any_config_is_refused_from_its_form(tmp_path):
    from mantra_jax.errors import CheckpointError
    from mantra_jax.io.msgpack_weights import load_weights_file

    text = '{"kind": ' + "[" * 50 + '"x"' + "]" * 50 + "}"
    with pytest.raises(CheckpointError, match=r"nested more than 8 levels"):
        load_weights_file(_msgpack_with_config(tmp_path / "d.msgpack", text))


def test_json_depth_ignores_brackets_in_strings():
    from mantra_jax.models.config import json_depth

    assert json_depth('{"a": "[[[[", "b": [1, [2]]}') == 3
    assert json_depth('{"a": "\\"[[", "b": 1}') == 1
    assert json_depth("[]") == 1 and json_depth('"x"') == 0


def test_msgpack_that_is_a_link_to_a_device_is_refused_without_reading(tmp_path):
    from mantra_jax.errors import CheckpointError
    from mantra_jax.io.msgpack_weights import load_weights_file

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # reading a FIFO blocks forever; /dev/zero would fill memory
    link = tmp_path / "w.msgpack"
    link.symlink_to(fifo)
    with pytest.raises(CheckpointError, match=r"w\.msgpack: not a regular file"):
        load_weights_file(link)


def test_msgpack_larger_than_any_weights_file_is_refused_before_reading(tmp_path, monkeypatch):
    from mantra_jax.errors import CheckpointError
    from mantra_jax.io import msgpack_weights

    big = tmp_path / "big.msgpack"
    with open(big, "wb") as f:  # sparse: no disk used
        f.truncate(msgpack_weights.MAX_FILE_BYTES + 1)
    monkeypatch.setattr(type(big), "read_bytes", lambda self: pytest.fail("the file was read"))
    with pytest.raises(CheckpointError, match=r"big\.msgpack: \d+ bytes, more than any"):
        msgpack_weights.load_weights_file(big)


@pytest.fixture
def orbax_step(tmp_path):
    """A real training checkpoint step directory of a tiny IMC state."""
    import jax.numpy as jnp

    from mantra_jax.train.checkpoints import TrainCheckpoints
    from mantra_jax.train.end_to_end import end_to_end_setting
    from mantra_jax.train.state import create_train_state

    variables = {"params": {"Featex": {"w": jnp.ones((2, 3))}}, "batch_stats": {}}
    state = create_train_state(variables, end_to_end_setting("HR").tx, 0)
    TrainCheckpoints(tmp_path / "run").save(1, state, model_config={"kind": "imc", "variant": "tiny",
                                                                     "num_classes": 4})
    return tmp_path / "run" / "checkpoints" / "1"


def test_orbax_model_config_linked_to_a_device_is_refused_from_its_form(orbax_step, tmp_path):
    from mantra_jax.errors import CheckpointError
    from mantra_jax.io.orbax_layout import restore_inference_variables

    meta = next(p for p in (orbax_step / "model_config").iterdir() if p.is_file())
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # stands in for /dev/zero: reading it would never end
    meta.unlink()
    meta.symlink_to(fifo)
    with pytest.raises(CheckpointError, match=r"model_config/.* is a symbolic link .*fifo") as e:
        restore_inference_variables(orbax_step)
    assert "\n" not in str(e.value)


def test_orbax_state_file_linked_outside_the_folder_is_refused(orbax_step, tmp_path):
    from mantra_jax.errors import CheckpointError
    from mantra_jax.io.orbax_layout import restore_inference_variables

    victim = next(p for p in (orbax_step / "state").rglob("*") if p.is_file())
    outside = tmp_path / "outside.bin"
    outside.write_bytes(victim.read_bytes())
    victim.unlink()
    victim.symlink_to(outside)
    with pytest.raises(CheckpointError, match=r"is a symbolic link"):
        restore_inference_variables(orbax_step)


def test_orbax_oversized_model_config_is_refused(orbax_step):
    from mantra_jax.errors import CheckpointError
    from mantra_jax.io import orbax_layout

    meta = next(p for p in (orbax_step / "model_config").iterdir() if p.is_file())
    with open(meta, "ab") as f:
        f.truncate(orbax_layout.MAX_JSON_ITEM_BYTES + 1)
    with pytest.raises(CheckpointError, match=r"more than a model_config item ever holds"):
        orbax_layout.restore_inference_variables(orbax_step)


def test_orbax_untouched_step_still_restores(orbax_step):
    from mantra_jax.io.orbax_layout import restore_inference_variables

    config, variables = restore_inference_variables(orbax_step)
    assert config["kind"] == "imc" and variables["params"]["Featex"]["w"].shape == (2, 3)


# ---- issue 26 item 10: a clean Orbax load prints nothing ---------------------------------------------------

def test_loading_an_orbax_checkpoint_prints_no_absl_warnings(orbax_step):
    import subprocess
    import sys

    code = ("import sys; from mantra_jax.io.orbax_layout import restore_inference_variables as r; "
            f"r({str(orbax_step)!r}); r({str(orbax_step.parent.parent)!r}); print('done')")
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "done", out.stderr
    assert "WARNING" not in out.stderr, out.stderr


def test_quiet_orbax_lets_errors_and_other_loggers_through(caplog):
    import logging

    from mantra_jax.io.orbax_layout import quiet_orbax

    with caplog.at_level(logging.INFO), quiet_orbax():
        logging.getLogger("absl").warning("orbax notice")
        logging.getLogger("absl").error("orbax failure")
        logging.getLogger("other").warning("other warning")
    logging.getLogger("absl").warning("after the scope")
    assert [r.getMessage() for r in caplog.records] == ["orbax failure", "other warning", "after the scope"]
