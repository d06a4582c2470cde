"""mantra_jax.io.pretrained.fetch against a loopback HTTP weights_server (127.0.0.1, port 0): no internet."""

import json
import time

import pytest

from mantra_jax.io import pretrained
from tests.conftest import WEIGHTS_CONTENT as CONTENT


def test_fetch_downloads_and_verifies(weights_server, tmp_path):
    path = pretrained.fetch("synthetic", accept_licence=True, progress=False)
    assert path == tmp_path / "cache" / "synthetic.h5" and path.read_bytes() == CONTENT
    assert sorted(p.name for p in path.parent.iterdir()) == ["synthetic.h5"]


def test_fetch_without_consent_downloads_nothing(weights_server, tmp_path):
    with pytest.raises(pretrained.PretrainedError, match="test only"):
        pretrained.fetch("synthetic", progress=False)
    assert weights_server.ranges == [] and not (tmp_path / "cache").exists()


def test_fetch_refuses_wrong_content_and_leaves_the_cache_empty(weights_server, tmp_path):
    weights_server.content = CONTENT[:-1] + b"\0"
    with pytest.raises(pretrained.PretrainedError, match=pretrained.entry("synthetic")["blob_id"]):
        pretrained.fetch("synthetic", accept_licence=True, progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_fetch_after_a_dropped_connection_resumes_and_never_keeps_a_partial_as_finished(weights_server, tmp_path):
    weights_server.drop = 1
    with pytest.raises(pretrained.PretrainedError, match="cannot download"):
        pretrained.fetch("synthetic", accept_licence=True, progress=False)
    assert not (tmp_path / "cache" / "synthetic.h5").exists()
    path = pretrained.fetch("synthetic", accept_licence=True, progress=False)
    assert path.read_bytes() == CONTENT
    assert weights_server.ranges[0] is None and weights_server.ranges[1] == f"bytes={len(CONTENT) // 2}-"


def test_fetch_from_an_unreachable_host_is_one_line(weights_server, tmp_path, monkeypatch):
    weights_server.server_close()  # nothing listens on the port any more
    doc = json.loads((tmp_path / "registry.json").read_text())
    doc["weights"]["synthetic"]["url"] = "http://127.0.0.1:1/synthetic.h5"
    (tmp_path / "registry.json").write_text(json.dumps(doc))
    with pytest.raises(pretrained.PretrainedError, match="cannot download") as e:
        pretrained.fetch("synthetic", accept_licence=True, timeout=5, progress=False)
    assert "\n" not in str(e.value)


def test_fetch_restarts_from_zero_when_the_server_ignores_the_range(weights_server, tmp_path):
    weights_server.drop, weights_server.no_range = 1, True
    with pytest.raises(pretrained.PretrainedError, match="cannot download"):
        pretrained.fetch("synthetic", accept_licence=True, progress=False)
    path = pretrained.fetch("synthetic", accept_licence=True, progress=False)  # asks for the rest, gets it all
    assert weights_server.ranges[1] == f"bytes={len(CONTENT) // 2}-" and path.read_bytes() == CONTENT
    assert sorted(p.name for p in path.parent.iterdir()) == ["synthetic.h5"]


def test_fetch_from_a_server_that_never_answers_times_out_in_one_line(weights_server, tmp_path):
    weights_server.stall = 30.0
    t0 = time.monotonic()
    with pytest.raises(pretrained.PretrainedError, match="timed out") as e:
        pretrained.fetch("synthetic", accept_licence=True, timeout=0.5, progress=False)
    assert time.monotonic() - t0 < 10 and "\n" not in str(e.value)
    assert not (tmp_path / "cache" / "synthetic.h5").exists()


def test_fetch_goes_through_the_proxy_the_environment_names(weights_server, tmp_path, monkeypatch):
    """The registry names a host that does not exist (.invalid); the loopback server, named as the HTTP
    proxy, receives the absolute URL and answers."""
    doc = json.loads((tmp_path / "registry.json").read_text())
    doc["weights"]["synthetic"]["url"] = "http://weights.invalid/synthetic.h5"
    (tmp_path / "registry.json").write_text(json.dumps(doc))
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{weights_server.server_address[1]}")
    path = pretrained.fetch("synthetic", accept_licence=True, timeout=10, progress=False)
    assert path.read_bytes() == CONTENT and weights_server.paths == ["http://weights.invalid/synthetic.h5"]
