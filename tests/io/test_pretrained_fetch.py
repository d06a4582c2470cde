"""mantra_jax.io.pretrained.fetch against a loopback HTTP server (127.0.0.1, port 0): no internet."""

import http.server
import json
import threading

import pytest

from mantra_jax.io import pretrained

CONTENT = b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 400  # a synthetic .h5-like payload, 102,408 bytes


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.content`` with Range support; ``server.drop`` > 0 cuts that many responses half-way."""

    def do_GET(self):  # noqa: N802
        body, start = self.server.content, 0
        rng = self.headers.get("Range")
        self.server.ranges.append(rng)
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if self.server.drop:
            self.server.drop -= 1
            self.wfile.write(body[start:start + (len(body) - start) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A loopback server and a test-only registry entry ``synthetic`` pointing at it."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.content, httpd.drop, httpd.ranges = CONTENT, 0, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    ref = tmp_path / "ref.h5"
    ref.write_bytes(CONTENT)
    doc = {"default": "synthetic", "weights": {"synthetic": {
        "file": "synthetic.h5", "url": f"http://127.0.0.1:{httpd.server_address[1]}/synthetic.h5",
        "blob_id": pretrained.blob_id(ref), "licence": "test only", "variant": "tiny"}}}
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps(doc))
    monkeypatch.setenv("MANTRA_WEIGHTS_REGISTRY", str(reg))
    monkeypatch.setenv("MANTRA_WEIGHTS_DIR", str(tmp_path / "cache"))
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_fetch_downloads_and_verifies(server, tmp_path):
    path = pretrained.fetch("synthetic", accept_licence=True, progress=False)
    assert path == tmp_path / "cache" / "synthetic.h5" and path.read_bytes() == CONTENT
    assert sorted(p.name for p in path.parent.iterdir()) == ["synthetic.h5"]


def test_fetch_without_consent_downloads_nothing(server, tmp_path):
    with pytest.raises(pretrained.PretrainedError, match="test only"):
        pretrained.fetch("synthetic", progress=False)
    assert server.ranges == [] and not (tmp_path / "cache").exists()


def test_fetch_refuses_wrong_content_and_leaves_the_cache_empty(server, tmp_path):
    server.content = CONTENT[:-1] + b"\0"
    with pytest.raises(pretrained.PretrainedError, match=pretrained.entry("synthetic")["blob_id"]):
        pretrained.fetch("synthetic", accept_licence=True, progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_fetch_after_a_dropped_connection_resumes_and_never_keeps_a_partial_as_finished(server, tmp_path):
    server.drop = 1
    with pytest.raises(pretrained.PretrainedError, match="cannot download"):
        pretrained.fetch("synthetic", accept_licence=True, progress=False)
    assert not (tmp_path / "cache" / "synthetic.h5").exists()
    path = pretrained.fetch("synthetic", accept_licence=True, progress=False)
    assert path.read_bytes() == CONTENT
    assert server.ranges[0] is None and server.ranges[1] == f"bytes={len(CONTENT) // 2}-"


def test_fetch_from_an_unreachable_host_is_one_line(server, tmp_path, monkeypatch):
    server.server_close()  # nothing listens on the port any more
    doc = json.loads((tmp_path / "registry.json").read_text())
    doc["weights"]["synthetic"]["url"] = "http://127.0.0.1:1/synthetic.h5"
    (tmp_path / "registry.json").write_text(json.dumps(doc))
    with pytest.raises(pretrained.PretrainedError, match="cannot download") as e:
        pretrained.fetch("synthetic", accept_licence=True, timeout=5, progress=False)
    assert "\n" not in str(e.value)
