"""The suite's own switches: shared-data skips become failures under MANTRA_REQUIRE_SHARED."""

import subprocess
import sys
import warnings

import pytest

from tests.conftest import import_or_absent, shared_absent, subprocess_env


def test_missing_shared_data_skips_by_default(monkeypatch):
    monkeypatch.delenv("MANTRA_REQUIRE_SHARED", raising=False)
    with pytest.raises(pytest.skip.Exception, match="x.npz is absent"):
        shared_absent("x.npz is absent")


@pytest.mark.parametrize("value", ["1", "yes"])
def test_missing_shared_data_fails_when_required(monkeypatch, value):
    monkeypatch.setenv("MANTRA_REQUIRE_SHARED", value)
    with pytest.raises(pytest.fail.Exception, match="x.npz is absent.*MANTRA_REQUIRE_SHARED"):
        shared_absent("x.npz is absent")


def test_reference_fixture_fails_when_required_and_absent(monkeypatch, tmp_path, reference_path):
    monkeypatch.setenv("MANTRA_REFERENCE", str(tmp_path / "nowhere"))
    monkeypatch.setenv("MANTRA_REQUIRE_SHARED", "1")
    with pytest.raises(pytest.fail.Exception, match="nowhere"):
        reference_path("ptrain4like_weights.h5")


def test_missing_module_fails_when_required_and_skips_otherwise(monkeypatch):
    monkeypatch.setenv("MANTRA_REQUIRE_SHARED", "1")
    with pytest.raises(BaseException, match="no_such_mod_22 is not installed.*MANTRA_REQUIRE_SHARED") as err:
        import_or_absent("no_such_mod_22")
    assert err.type is pytest.fail.Exception  # a failure, not a skip (exit 0)
    monkeypatch.delenv("MANTRA_REQUIRE_SHARED")
    with pytest.raises(pytest.skip.Exception, match="no_such_mod_22 is not installed"):
        import_or_absent("no_such_mod_22")
    assert import_or_absent("json").dumps(1) == "1"


DEPRECATED = ("import warnings; warnings.warn_explicit('old api', DeprecationWarning, 'x.py', 1, "
              "module='mantra_jax.some_module')")


def test_deprecation_in_the_package_is_an_error_in_process():
    with pytest.raises(DeprecationWarning, match="old api"):
        warnings.warn_explicit("old api", DeprecationWarning, "x.py", 1, module="mantra_jax.some_module")


def test_deprecation_in_the_package_is_an_error_in_subprocesses():
    child = subprocess.run([sys.executable, "-c", DEPRECATED], env=subprocess_env(), capture_output=True,
                           text=True, timeout=60)
    assert child.returncode != 0 and "DeprecationWarning: old api" in child.stderr, child.stderr
    bare = subprocess.run([sys.executable, "-W", "default", "-c", DEPRECATED], capture_output=True, text=True,
                          env={**subprocess_env(), "PYTHONPATH": ""}, timeout=60)
    assert bare.returncode == 0  # without the filters the same warning only prints
