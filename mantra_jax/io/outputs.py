"""Output folders of the ``mantra`` commands: checked before the first image, never overwriting a user's file.

An output folder keeps a manifest, ``.mantra_outputs.jsonl``: one JSON line per file a ``mantra`` run
created there, appended *before* the file is written (a crash between the two leaves a listed name with no
file, which is harmless). The rules built on it:

* ``OutputDir.open`` checks the location before any work: it must be a folder or creatable as one, and
  writable (a probe file is created and removed); a second run into a folder in use is refused (an
  exclusive ``flock`` on the manifest, held for the run and released by the OS if the process dies);
* ``check_free(names)``: every file a run is about to write must either not exist or be listed in the
  manifest (written by an earlier ``mantra`` run, which may be replaced); any other existing file is the
  user's, and the run is refused before the first image, naming it;
* ``is_output(path)``: whether a file was written into the folder by a ``mantra`` run, so commands never
  read their own outputs as inputs (``mantra detect DIR --out DIR`` leaves them out).

Deleting the manifest turns every file in the folder into "the user's": the next run refuses to touch them.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
import time
from typing import IO, Iterable, Union

PathLike = Union[str, os.PathLike]

MANIFEST = ".mantra_outputs.jsonl"


class OutputError(ValueError):
    """An output location that cannot be used: a file, unwritable, in use, or holding a user's file."""


def read_manifest(folder: PathLike) -> set[str]:
    """Names (relative to ``folder``) that ``mantra`` runs created there; empty without a manifest.

    A line that does not parse (a torn last line after a crash) is ignored.
    """
    names: set[str] = set()
    try:
        with open(pathlib.Path(folder) / MANIFEST, encoding="utf-8") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(entry, dict) and isinstance(entry.get("file"), str):
                    names.add(entry["file"])
    except (FileNotFoundError, NotADirectoryError):
        pass
    return names


class OutputDir:
    """The output folder of one run (module docstring). Use as a context manager, or call ``close()``."""

    def __init__(self, path: pathlib.Path, command: str, manifest: IO[str], created: set[str],
                 made: tuple[pathlib.Path, ...] = ()):
        self.path = path
        self.command = command
        self._manifest = manifest
        self.created = created
        self._made = made  # what open() created (new folders, a new manifest): removed by close() if unused

    @classmethod
    def open(cls, path: PathLike, command: str, *, option: str = "--out") -> "OutputDir":
        """Creates/checks the folder, takes the run's lock and reads the manifest; OutputError otherwise."""
        folder = pathlib.Path(path)
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"{option} {folder} exists and is not a folder")
        made = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
        if not (folder / MANIFEST).exists():
            made.append(folder / MANIFEST)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".mantra-probe-")
            os.close(fd)
            os.unlink(probe)
            manifest = open(folder / MANIFEST, "a", encoding="utf-8")
        except OSError as e:
            raise OutputError(f"{option} {folder} cannot be written to ({e.strerror or e})") from None
        try:
            import fcntl

            fcntl.flock(manifest.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no flock (Windows): no protection against two concurrent runs
            pass
        except OSError:
            manifest.close()
            raise OutputError(f"{option} {folder} is in use by another mantra run; wait for it or choose another "
                              "folder") from None
        return cls(folder, command, manifest, read_manifest(folder), tuple(made))

    def close(self) -> None:
        """Releases the lock; a run that claimed nothing leaves no trace (new manifest, new folders)."""
        if self._manifest.closed:
            return
        self._manifest.close()
        if self.created or not self._made:
            return
        for p in reversed(self._made):
            try:
                p.unlink() if p.name == MANIFEST else p.rmdir()
            except OSError:
                break

    def __enter__(self) -> "OutputDir":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def is_output(self, path: PathLike) -> bool:
        """Whether ``path`` is a file a mantra run wrote into this folder."""
        return is_output_of(self.path, self.created, path)

    def user_files(self, names: Iterable[str]) -> list[str]:
        """The names among ``names`` that exist here and were not created by a mantra run."""
        return [n for n in names if n not in self.created and os.path.lexists(self.path / n)]

    def check_free(self, names: Iterable[str]) -> None:
        """OutputError naming the first file among ``names`` that exists and is the user's (not ours)."""
        taken = self.user_files(names)
        if taken:
            more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
            raise OutputError(f"--out {self.path} already holds {taken[0]}{more}, not written by mantra; it is never "
                              "overwritten: choose another --out folder (nothing was written)")

    def claim(self, *names: str) -> list[pathlib.Path]:
        """Lists ``names`` in the manifest (before they are written) and returns their paths."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        for name in names:
            if name not in self.created:
                self._manifest.write(json.dumps({"file": name, "command": self.command, "time": stamp}) + "\n")
                self.created.add(name)
        self._manifest.flush()
        return [self.path / n for n in names]


def is_output_of(folder: PathLike, created: set[str], path: PathLike) -> bool:
    """Whether ``path`` is ``folder / name`` (same file, links resolved) for a ``name`` in ``created``."""
    p = pathlib.Path(path)
    try:
        rel = os.path.relpath(os.path.realpath(p), os.path.realpath(folder))
    except ValueError:  # another drive (Windows)
        return False
    return rel in created or p.name == MANIFEST
