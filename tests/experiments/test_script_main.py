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
])
def test_a_bad_flag_is_one_line_and_status_2(script, args, match):
    proc = run_script(script, *args)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: bad flag: "), proc.stderr[-2000:]
    assert match in lines[0] and "Traceback" not in proc.stderr
