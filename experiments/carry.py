"""What travels to a GPU machine for a sprint (experiments/sprint.py), and a dry run of it on the CPU.

    python experiments/carry.py [--dest carry] [--photos DIR,DIR]      # make carry/wheels, carry/photos
    python experiments/carry.py --check [--dest carry]                  # dry run (slow: a venv + 2 sprints)

The GPU machine's Python 3.12 has jax (CUDA), flax, optax, orbax-checkpoint, chex, opencv-headless, numpy
and scikit-image (and what they need); ``CARRY_PACKAGES`` are what the training code needs beyond them.
Their wheels are fetched with ``pip download --no-deps --only-binary=:all: --python-version 3.12
--platform manylinux_2_28_x86_64`` at the versions installed here, and installed there with

    pip install --no-index --no-deps --find-links carry/wheels <CARRY_PACKAGES>

The training photos (default: ../shared/data/pristine/dresden_nat and polyu_crops, ~20 MB) are copied to
``carry/photos`` (``carry/`` is git-ignored: photos are never committed). Code plus ``carry/`` must stay
under ``TRAVEL_LIMIT`` (64 MiB); the sizes are printed and checked.

``--check``: a fresh Python 3.12 venv that sees this machine's packages as the GPU's preinstalled ones (a
``.pth`` file) installs ``CARRY_PACKAGES`` from ``carry/wheels`` with ``--no-index --ignore-installed``
(each must then import from the venv), and runs the sprint with the ``tiny`` preset for two steps per phase
on ``carry/photos`` into a temporary --out, then resumes from that export: every exported file under
16 MiB, the release-size weights under 16 MiB (from ``jax.eval_shape``), the resumed run continuing the
first one's steps and data, each phase's train step compiled once.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata

from absl import flags

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments.script_main import script_main  # noqa: E402

CARRY_PACKAGES = ("grain", "array-record", "cloudpickle", "portpicker", "ml-collections", "tqdm", "h5py")
PLATFORM_TAGS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
DEFAULT_PHOTOS = ("../shared/data/pristine/dresden_nat", "../shared/data/pristine/polyu_crops")
TRAVEL_LIMIT = 64 * 2**20

_DEST = flags.DEFINE_string("dest", str(ROOT / "carry"), "Folder made (git-ignored): wheels/, photos/.")
_PHOTOS = flags.DEFINE_list("photos", list(DEFAULT_PHOTOS), "Photo folders to carry (comma-separated).")
_CHECK = flags.DEFINE_bool("check", False, "Dry run from an existing --dest (slow).")


def _size(path: pathlib.Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def code_bytes() -> int:
    """Bytes of the tracked and untracked-but-not-ignored files (what travels besides ``carry/``)."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                         check=True).stdout.decode()
    return sum((ROOT / f).stat().st_size for f in out.split("\0") if f and (ROOT / f).is_file())


def download_wheels(dest: pathlib.Path) -> list[pathlib.Path]:
    dest.mkdir(parents=True, exist_ok=True)
    pins = [f"{name}=={metadata.version(name)}" for name in CARRY_PACKAGES]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
           "--dest", str(dest)] + [a for tag in PLATFORM_TAGS for a in ("--platform", tag)] + pins
    subprocess.run(cmd, check=True)
    return sorted(dest.glob("*.whl"))


def copy_photos(sources: list[str], dest: pathlib.Path) -> None:
    for src in sources:
        src_path = (ROOT / src).resolve() if not os.path.isabs(src) else pathlib.Path(src)
        if not src_path.is_dir():
            raise SystemExit(f"carry.py: error: photo folder {src} not found")
        target = dest / src_path.name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(src_path, target)


def report(dest: pathlib.Path) -> dict[str, int]:
    sizes = {"code": code_bytes(), "wheels": _size(dest / "wheels") if (dest / "wheels").exists() else 0,
             "photos": _size(dest / "photos") if (dest / "photos").exists() else 0}
    sizes["total"] = sum(sizes.values())
    for k, v in sizes.items():
        print(f"{k:7s} {v / 2**20:7.1f} MiB")
    if sizes["total"] >= TRAVEL_LIMIT:
        raise SystemExit(f"carry.py: error: {sizes['total'] / 2**20:.1f} MiB to carry, over the 64 MiB limit")
    return sizes


def check(dest: pathlib.Path) -> None:
    """The dry run of the module docstring."""
    import site

    from experiments import sprint

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="carry_check_"))
    try:
        venv = tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        py = venv / "bin" / "python"
        purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        (pathlib.Path(purelib) / "gpu_preinstalled.pth").write_text("\n".join(site.getsitepackages()) + "\n")
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--ignore-installed",
                        "--find-links", str(dest / "wheels"), *CARRY_PACKAGES], check=True)
        modules = {"grain": "grain", "array-record": "array_record", "cloudpickle": "cloudpickle",
                   "portpicker": "portpicker", "ml-collections": "ml_collections", "tqdm": "tqdm", "h5py": "h5py"}
        where = subprocess.run([str(py), "-c", "import importlib, json; print(json.dumps({m: importlib.import_module(m)"
                                ".__file__ for m in %r}))" % list(modules.values())],
                               capture_output=True, text=True, check=True).stdout
        outside = {m: f for m, f in json.loads(where).items() if not f.startswith(str(venv))}
        if outside:
            raise SystemExit(f"carry.py: error: not installed from the wheels: {outside}")
        print("wheels: all of", ", ".join(CARRY_PACKAGES), "installed with --no-index")
        env = {**os.environ, "JAX_PLATFORMS": "cpu"}
        env.pop("PYTHONPATH", None)
        base = [str(py), str(ROOT / "experiments" / "sprint.py"), f"--config={sprint.CONFIG}:tiny", "--budget_s=900",
                "--config.imc.train.num_steps=2", "--config.hr.train.num_steps=2",
                f"--config.photos={dest / 'photos'}", "--config.progress=false"]
        subprocess.run(base + [f"--out={tmp / 'w1'}"], check=True, env=env)
        subprocess.run(base + [f"--out={tmp / 'w2'}", f"--resume={tmp / 'w1'}"], check=True, env=env)
        r1, r2 = (json.loads((tmp / w / sprint.RESUME_FILE).read_text()) for w in ("w1", "w2"))
        s1, s2 = (json.loads((tmp / w / sprint.SUMMARY_FILE).read_text()) for w in ("w1", "w2"))
        problems = []
        for w in ("w1", "w2"):
            files = list((tmp / w).iterdir())
            problems += [f"{w}/{p.name}: {p.stat().st_size} bytes" for p in files if p.stat().st_size >= sprint.FILE_LIMIT]
            if len(files) > 8:
                problems.append(f"{w}: {len(files)} files")
        release = sprint.export_bytes("ptrain4")
        problems += [f"release {k}: {v} bytes" for k, v in release.items() if v >= sprint.FILE_LIMIT - 2**20]
        if r2["steps"] != {"imc": r1["steps"]["imc"], "hr": 2 * r1["steps"]["hr"]} or r2["windows"] != 2:
            problems.append(f"resume did not continue: {r1['steps']} -> {r2['steps']}")
        if r2["data_state"]["hr"] == r1["data_state"]["hr"]:
            problems.append("the resumed HR data stream did not move on")
        for s in (s1, s2):
            problems += [f"{name}: {len(p['memory']['attempts'])} train-step compiles"
                         for name, p in s["phases"].items() if len(p["memory"]["attempts"]) != 1]
        if problems:
            raise SystemExit("carry.py: dry run failed: " + "; ".join(problems))
        print(f"dry run: ok (release-size weights {release[sprint.MODEL_FILE] / 2**20:.1f} MiB; sprint samples/s "
              f"{s1['samples_per_s']}, resumed {s2['samples_per_s']})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str]) -> int:
    del argv
    dest = pathlib.Path(_DEST.value)
    if _CHECK.value:
        check(dest)
    else:
        download_wheels(dest / "wheels")
        copy_photos(_PHOTOS.value, dest / "photos")
    report(dest)
    return 0


if __name__ == "__main__":
    script_main(main)
