"""The suite's own switches: shared-data skips become failures under MANTRA_REQUIRE_SHARED."""

import pytest

from tests.conftest import import_or_absent, shared_absent


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
