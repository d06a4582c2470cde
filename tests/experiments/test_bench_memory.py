"""experiments/bench_memory.py: each measurement a child process that gets the parent's flags."""

import json

from tests.conftest import tiny_checkpoint
from tests.experiments.test_script_main import run_script


def test_calibrate_runs_children_with_the_parents_checkpoint_and_fits_a_line(tmp_path):
    proc = run_script("bench_memory.py", "--calibrate", "--calibrate_modes=host",
                      f"--checkpoint={tiny_checkpoint(tmp_path, 0)}", "--timeout=300")
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    children, fits = records[:-1], records[-1]
    assert [(r["mode"], r["height"], r["width"], r["variant"]) for r in children] == [
        ("host", 1500, 2000, "tiny"), ("host", 3000, 4000, "tiny")], proc.stdout
    assert fits["fit"] == "host" and fits["base_mib"] == [r["base_mib"] for r in children]
