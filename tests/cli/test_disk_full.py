"""Issue 26 item 5: ``--out`` on a full file system. Simulated at the one atomic writer's ``open``: writes
of heat maps fail from the second image on as the kernel reports them (ENOSPC, or a short write)."""

from __future__ import annotations

import builtins
import errno
import json

import pytest

from mantra_jax import cli
from tests.cli.test_hostile_inputs import _png, _run, ckpt  # noqa: F401


def _fill_disk_after(monkeypatch, n_ok, error, also_summary=False):
    real_open, opened = builtins.open, []

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

        def write(self, data):
            raise error

        def __getattr__(self, name):
            return getattr(self.f, name)

    def fake_open(file, mode="r", *a, **k):
        f = real_open(file, mode, *a, **k)
        name = str(file)
        if "w" in mode and name.rsplit("/", 1)[-1].startswith("."):  # the atomic writer's temporary files
            summary = "summary." in name
            if not summary:
                opened.append(name)
            if (summary and also_summary) or (not summary and len(opened) > n_ok):
                return Full(f)
        return f

    monkeypatch.setattr(builtins, "open", fake_open)


@pytest.mark.parametrize("error,cause", [(OSError(errno.ENOSPC, "No space left on device"),
                                          "no space left on the device"),
                                         (OSError("4096 requested and 992 written"), "the disk may be full")])
def test_a_full_disk_names_the_file_and_the_cause_and_keeps_the_finished_images(ckpt, tmp_path, capsys,  # noqa: F811
                                                                                 monkeypatch, error, cause):
    for k in range(3):
        _png(tmp_path / "in" / f"i{k}.png", k)
    import mantra_jax.io.atomic as atomic
    monkeypatch.setattr(atomic, "_free_bytes", lambda folder, shutil: 1 << 40)  # a short write, disk not full
    from mantra_jax.infer.detect import output_names
    per_image = len(output_names("x"))  # the files each image writes
    _fill_disk_after(monkeypatch, per_image, error)
    code, err = _run(capsys, "detect", tmp_path / "in", "-c", ckpt, "-o", tmp_path / "out")
    monkeypatch.undo()
    assert code == cli.EXIT_USAGE
    lines = [line for line in err.splitlines() if line.startswith("mantra detect: error")]
    assert len(lines) == 1 and "cannot write" in lines[0] and "i1" in lines[0] and cause in lines[0], err
    assert "stopped after 1 of 3 image(s)" in lines[0] and "the summary of the 1 image(s)" in lines[0]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert not summary["complete"] and [r["stem"] for r in summary["images"]] == ["i0"]
    assert (tmp_path / "out" / "i0.npy").is_file() and not list((tmp_path / "out").glob("i1*"))
    assert not list((tmp_path / "out").glob(".*tmp"))


def test_when_not_even_the_summary_fits_the_line_says_so(ckpt, tmp_path, capsys, monkeypatch):  # noqa: F811
    _png(tmp_path / "in" / "i0.png")
    _fill_disk_after(monkeypatch, 0, OSError(errno.ENOSPC, "No space left on device"), also_summary=True)
    code, err = _run(capsys, "detect", tmp_path / "in", "-c", ckpt, "-o", tmp_path / "out")
    monkeypatch.undo()
    assert code == cli.EXIT_USAGE and "no summary could be written" in err
