"""The flag-driven experiment scripts' command line (experiments/script_main.py): a bad flag or a stray
argument is one line on stderr and status 2, never a traceback."""

import pathlib
import subprocess
import sys

import pytest

from tests.conftest import subprocess_env

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[2] / "experiments"


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXPERIMENTS / name), *args], capture_output=True, text=True,
                          env=subprocess_env(), timeout=300)


@pytest.mark.parametrize("script, args, match", [
    ("bench_memory.py", ["--bogus"], "Unknown command line flag 'bogus'"),
    ("bench_memory.py", ["--sizes=256"], "WIDTHxHEIGHT"),
    ("bench_memory.py", ["--max_memory=lots"], "expected a size"),
    ("bench_memory.py", ["--calibrate_modes=pass1,tiled"], "expected some of"),
    ("camera_probe.py", ["--images=photos"], "--checkpoint must have a value"),
    ("camera_probe.py", ["--images=photos", "--checkpoint=c", "--k=0"], "--k=0"),
    ("carry.py", ["--check", "stray"], "unexpected arguments ['stray']"),
    ("memory_estimate.py", ["--kind=lm"], "--kind=lm"),
    ("bench_tiled.py", ["--tile=0"], "--tile=0: 0 is not a positive integer"),
])
def test_a_bad_flag_is_one_line_and_status_2(script, args, match):
    proc = run_script(script, *args)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: bad flag: "), proc.stderr[-2000:]
    assert match in lines[0] and "Traceback" not in proc.stderr


FLAG_SCRIPTS = ("bench_box.py", "bench_data.py", "bench_forward.py", "bench_memory.py", "bench_report.py",
                "bench_tiled.py", "bench_train.py", "camera_probe.py", "carry.py", "gallery.py", "memory_estimate.py",
                "report_screenshots.py", "sensitivity.py")


def test_every_flag_script_is_parsed_by_script_main():
    """Each absl script ends in ``script_main(main)``, so a stray argument is refused, not ignored."""
    import ast

    for name in FLAG_SCRIPTS:
        tree = ast.parse((EXPERIMENTS / name).read_text())
        guard = [node for node in tree.body if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)]
        assert len(guard) == 1 and ast.unparse(guard[0].body[-1]) == "script_main(main)", name
    flagged = {p.name for p in EXPERIMENTS.glob("*.py") if "from absl import" in p.read_text()}
    # the config-driven scripts end in launch.py's experiment_main, which refuses stray arguments itself
    config_driven = {p.name for p in EXPERIMENTS.glob("*.py") if "experiment_main(" in p.read_text()}
    assert {"imc385.py", "sprint.py", "imc_studies.py"} <= config_driven
    assert flagged - config_driven - {"script_main.py"} == set(FLAG_SCRIPTS)


def test_a_stray_argument_is_refused_before_any_work(tmp_path):
    proc = run_script("gallery.py", f"--out={tmp_path / 'gallery'}", "--patch=16", "stray")
    assert proc.returncode == 2 and "unexpected arguments ['stray']" in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "gallery").exists()
