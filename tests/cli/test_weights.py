"""``mantra weights``: list, add (right and wrong file), no licence consent, unreachable host (no internet)."""

import json

import pytest

from mantra_jax import cli
from mantra_jax.io import pretrained
from tests.conftest import use_test_registry


@pytest.fixture
def reg(tmp_path, monkeypatch):
    """A test-only registry (entry ``tiny``, URL on a closed loopback port); returns (good file, cache)."""
    good = tmp_path / "tiny.h5"
    good.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 10)
    return good, use_test_registry(tmp_path, monkeypatch, good, licence="test licence line")


def test_weights_add_then_list_shows_it_cached(reg, capsys):
    good, cache = reg
    assert cli.main(["weights", "add", "tiny", str(good)]) == cli.EXIT_OK
    assert (cache / "tiny.h5").read_bytes() == good.read_bytes()
    assert cli.main(["weights", "list"]) == cli.EXIT_OK
    assert str(cache / "tiny.h5") in capsys.readouterr().out


def test_weights_add_wrong_file_exits_2_naming_both_ids(reg, tmp_path, capsys):
    good, cache = reg
    wrong = tmp_path / "wrong.h5"
    wrong.write_bytes(b"not the weights")
    assert cli.main(["weights", "add", "tiny", str(wrong)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and pretrained.blob_id(wrong) in err[0] and pretrained.blob_id(good) in err[0]
    assert not (cache / "tiny.h5").exists()


def test_weights_fetch_without_consent_and_no_terminal_refuses(reg, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    assert cli.main(["weights", "fetch", "tiny"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "test licence line" in err and "--accept-licence" in err.strip().splitlines()[-1]


def test_weights_fetch_from_unreachable_host_is_one_line_exit_2(reg, capsys):
    assert cli.main(["weights", "fetch", "tiny", "--accept-licence", "--timeout", "5"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("mantra weights: error: cannot download http://127.0.0.1:1/tiny.h5")
