"""Shared test fixtures: paths to ../shared (skipped cleanly when absent) and float64 settings.

``MANTRA_REQUIRE_SHARED=1`` (set by ``.ci/run`` when ../shared is present) turns every "shared data absent"
skip into a failure, so a run that has the oracle cannot go green without using it.
"""

from __future__ import annotations

import http.server
import importlib
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# The CLI turns JAX's persistent compilation cache on by default; tests must not write the user's cache.
os.environ.setdefault("MANTRA_COMPILE_CACHE", "off")

# Test programs are small and run once, so XLA:CPU spends most of a test in LLVM's optimiser. The suite
# compiles with LLVM optimisation off (--xla_backend_optimization_level=0): XLA's own HLO passes (fusion,
# algebraic simplification, layout) are unchanged, only the machine-code optimiser is skipped. Measured on
# tests/models/test_mantranet.py + test_backbones.py (2-core AMD EPYC): 228 -> 129 CPU seconds. Every
# numerics check keeps its derived bound at both levels; MANTRA_TEST_XLA_OPT=full runs the suite with XLA's
# default optimisation (what users get). Set here, before any test initialises a JAX backend; subprocesses
# started by tests inherit it.
XLA_OPT_ENV = "MANTRA_TEST_XLA_OPT"
if os.environ.get(XLA_OPT_ENV, "").lower() != "full" and "xla_backend_optimization_level" not in os.environ.get(
        "XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()


WARNINGS_SITE = REPO / "tests" / "warnings_site"  # its sitecustomize installs pyproject's warning filters


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for the suite's Python subprocesses: this checkout first on PYTHONPATH, CPU JAX,
    and pyproject's deprecation filters (tests/warnings_site/sitecustomize.py), plus ``extra``."""
    path = os.pathsep.join([str(REPO), str(WARNINGS_SITE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "JAX_PLATFORMS": "cpu", **extra, "PYTHONPATH": path}


def shared_dir() -> pathlib.Path:
    """The shared folder: $MANTRA_SHARED, else ../shared beside the checkout."""
    return pathlib.Path(os.environ.get("MANTRA_SHARED", REPO.parent / "shared"))


def require_shared() -> bool:
    return os.environ.get("MANTRA_REQUIRE_SHARED", "") not in ("", "0")


def shared_absent(reason: str) -> None:
    """Skips the test (``reason``: which shared file is missing), or fails it under MANTRA_REQUIRE_SHARED."""
    if require_shared():
        pytest.fail(f"{reason}, and MANTRA_REQUIRE_SHARED is set", pytrace=False)
    pytest.skip(reason)


def import_or_absent(name: str):
    """``name`` imported, or the test (module, when called at module level) skipped with the reason, and
    failed under MANTRA_REQUIRE_SHARED like a missing shared file (``pytest.importorskip`` exits 0 there)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        reason = f"{name} is not installed"
        if require_shared():
            pytest.fail(f"{reason}, and MANTRA_REQUIRE_SHARED is set", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


def reference_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("MANTRA_REFERENCE", shared_dir() / "reference"))


@pytest.fixture
def reference_path():
    """Returns a function name -> path inside the reference folder, skipping when it is missing."""

    def get(name: str) -> pathlib.Path:
        path = reference_dir() / name
        if not path.exists():
            shared_absent(f"reference file {path} is absent (set MANTRA_REFERENCE or provide ../shared)")
        return path

    return get


@pytest.fixture
def shared_data():
    """Returns a function relpath -> path inside ../shared/data, skipping when it is missing."""

    def get(rel: str) -> pathlib.Path:
        path = shared_dir() / "data" / rel
        if not path.exists():
            shared_absent(f"shared data {path} is absent (set MANTRA_SHARED or provide ../shared)")
        return path

    return get


def tiny_checkpoint(folder: pathlib.Path, seed: int) -> pathlib.Path:
    """Writes ``folder/tiny.msgpack``: a single-file checkpoint of the ``tiny`` variant at random weights."""
    from mantra_jax.io.msgpack_weights import save_weights_file
    from mantra_jax.models.config import model_from_config
    from tests.infer.conftest import init

    config = {"kind": "mantranet", "variant": "tiny"}
    path = folder / "tiny.msgpack"
    save_weights_file(path, config, init(model_from_config(config), seed))
    return path


def enable_x64():
    """Context manager enabling float64 in JAX (``jax.enable_x64`` on new JAX, the experimental one before)."""
    import jax

    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64 as legacy  # JAX < 0.7

    return legacy()


# ---- per-test CPU time (MANTRA_TEST_CPU_REPORT=path.jsonl): load-independent cost of each test ------------
# On a shared machine wall-clock durations mostly measure the neighbours; the CPU seconds a test burns (all
# threads of the worker plus finished subprocesses) do not. Each worker appends one JSON line per test.
_CPU_REPORT = os.environ.get("MANTRA_TEST_CPU_REPORT")

if _CPU_REPORT:
    import json
    import resource
    import time

    def _cpu() -> float:
        c = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + c.ru_utime + c.ru_stime

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        cpu, wall = _cpu(), time.perf_counter()
        yield
        with open(_CPU_REPORT, "a", encoding="utf-8") as f:
            f.write(json.dumps({"test": item.nodeid, "cpu_s": round(_cpu() - cpu, 3),
                                "wall_s": round(time.perf_counter() - wall, 3),
                                "slow": item.get_closest_marker("slow") is not None}) + "\n")


# ---- the quick default run and the full one (--slow) -----------------------------------------------------
# Tests marked ``slow`` (over ~10 s on 2 cores: release-size parity, subprocess training runs with kills,
# 8-device sharding, launched multi-process training, the sprint dry run) are deselected by default, so a
# plain ``pytest -n 2 tests`` is the quick run; ``--slow`` runs the whole suite (the README's test command
# and CI). An explicit ``-m`` expression is obeyed as given.


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False,
                     help="also run the tests marked slow (the whole suite, as CI does)")


# Under xdist (``-n N``, default ``--dist load``), the tests of these modules go to one worker, so their
# costly module fixture (the launched multi-process training runs) is built once, not once per worker; every
# other test is sent out one by one, as ``load`` does. (xdist's own ``--dist loadgroup`` cannot: with
# pytest 9 its worker-side rewrite of the test ids to carry the group does not take, so a group is split.)
ONE_WORKER_MODULES = ("tests/distributed/test_training.py",)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModulesOnOneWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER_MODULES else nodeid

    return ModulesOnOneWorker(config, log)


def pytest_collection_modifyitems(config, items):
    if config.getoption("markexpr") or config.getoption("--slow"):
        return
    kept, left = [], []
    for item in items:
        (left if item.get_closest_marker("slow") is not None else kept).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


def use_test_registry(tmp_path: pathlib.Path, monkeypatch, weights: pathlib.Path, licence: str = "test only",
                      port: int = 1) -> pathlib.Path:
    """Points ``MANTRA_WEIGHTS_REGISTRY`` at a test-only registry whose default, ``tiny``, pins ``weights``'s
    blob id (URL on a closed loopback port), and ``MANTRA_WEIGHTS_DIR`` at an empty cache; returns the cache."""
    import json

    from mantra_jax.io import pretrained

    doc = {"default": "tiny", "weights": {"tiny": {
        "file": weights.name, "url": f"http://127.0.0.1:{port}/{weights.name}",
        "blob_id": pretrained.blob_id(weights), "licence": licence, "variant": "tiny"}}}
    (tmp_path / "registry.json").write_text(json.dumps(doc))
    monkeypatch.setenv("MANTRA_WEIGHTS_REGISTRY", str(tmp_path / "registry.json"))
    monkeypatch.setenv("MANTRA_WEIGHTS_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ---- a loopback weights server (mantra_jax.io.pretrained.fetch and `mantra weights fetch`) ----------------

WEIGHTS_CONTENT = b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 400  # a synthetic .h5-like payload, 102,408 B


class WeightsHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.content`` with Range support (unless ``server.no_range``); ``server.drop`` > 0 cuts that
    many responses half-way; ``server.stall`` seconds of silence before answering. Records each request's
    Range header (``server.ranges``) and path (``server.paths``: the absolute URL when used as a proxy)."""

    def do_GET(self):  # noqa: N802
        import time

        body, start = self.server.content, 0
        rng = self.headers.get("Range")
        self.server.ranges.append(rng)
        self.server.paths.append(self.path)
        if self.server.stall:
            time.sleep(self.server.stall)
            return
        if rng and not self.server.no_range:
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
def weights_server(tmp_path, monkeypatch):
    """A loopback HTTP server (127.0.0.1, port 0) and a test-only registry entry ``synthetic`` pointing at it
    (``MANTRA_WEIGHTS_REGISTRY`` and an empty ``MANTRA_WEIGHTS_DIR`` = tmp_path/cache)."""
    import json
    import threading

    from mantra_jax.io import pretrained

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), WeightsHandler)
    httpd.daemon_threads = True
    httpd.content, httpd.drop, httpd.ranges, httpd.paths = WEIGHTS_CONTENT, 0, [], []
    httpd.no_range, httpd.stall = False, 0.0
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    ref = tmp_path / "ref.h5"
    ref.write_bytes(WEIGHTS_CONTENT)
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


@pytest.fixture
def fresh_programs():
    """Forgets the inference programs compiled so far in this process (they are cached per model: another
    test of the same tiny config would otherwise have compiled them already), so a test counts its own."""
    from mantra_jax.infer import tiled, whole

    for f in (whole.pred_fn, tiled.adapted_fn, tiled.detect_fn):
        f.cache_clear()
    yield
