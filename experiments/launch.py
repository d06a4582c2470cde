"""The command line of the config-driven experiment scripts (imc385.py, ladn.py, ablation_anomaly.py, sprint.py).

``experiment_main(runner, config_file)``: flags ``--config`` (``config_file``, preset ``cpu`` by default;
``--config=FILE:paper``; ``--config.<field>=...`` overrides) and ``--workdir``; then ``runner(config,
workdir)``. A bad flag, preset or override (flag parsing fails) ends the program with one line on stderr
and status 2, and so does a distributed runtime that cannot be joined (``DistributedInitError``) or a
``UsageError`` of the run (an input it was pointed at that the flags could not check, e.g. the sprint's
``--resume`` export); a bad setting or an unusable checkpoint / work directory found by the run
(``ValueError``, ``OSError``) with one line and status 1; never a traceback.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Any, Callable, Sequence


class UsageError(Exception):
    """A run's input that flag parsing could not check is unusable: one line, status 2 (like a bad flag)."""


def _say(code: int, message: str) -> int:
    print(f"{pathlib.Path(sys.argv[0]).name}: error: {message}", file=sys.stderr)
    return code


def _fail(code: int, message: str) -> None:
    sys.exit(_say(code, message))


def _first_line(e: BaseException) -> str:
    """The root cause of ``e`` on one line (ml_collections wraps a config's own error with its traceback)."""
    while (e.__cause__ or e.__context__) is not None:
        e = e.__cause__ or e.__context__
    text = str(e).strip()
    return f"{type(e).__name__}: {' '.join(text.split())}" if text else type(e).__name__


def exit_status(call: Callable[[], Any]) -> int:
    """Runs ``call()`` (a run); returns 0, or the status of its error after printing it on one line (the
    module docstring); other exceptions propagate."""
    from mantra_jax.distributed.runtime import DistributedInitError

    try:
        call()
    except (DistributedInitError, UsageError) as e:
        return _say(2, " ".join(str(e).split()))
    except (ValueError, OSError) as e:
        return _say(1, _first_line(e))
    return 0


def experiment_main(runner: Callable[..., Any], config_file: str, *, preset: str = "cpu",
                    workdir: tuple[str, str] = ("workdir", "Directory holding everything of the run."),
                    keywords: Sequence[str] = ()) -> None:
    """See the module docstring. ``preset``: the config's default preset; ``workdir``: the name and help of
    the (required) output folder's flag; ``keywords``: names of flags the caller defined (absl) before,
    passed on to ``runner`` as keyword arguments of their names."""
    from absl import app, flags, logging
    from ml_collections import config_flags

    flags.DEFINE_string(workdir[0], None, workdir[1], required=True)
    try:  # ml_collections already reads the --config.<field> overrides of sys.argv here
        config = config_flags.DEFINE_config_file("config", f"{config_file}:{preset}",
                                                 f"Config file and preset (default {preset}).")
    except Exception as e:  # noqa: BLE001 - a bad override raises plain AttributeError / KeyError / TypeError
        _fail(2, f"bad flag: {_first_line(e)}")

    def parse(argv: list[str]) -> list[str]:
        try:
            return flags.FLAGS(argv)
        except Exception as e:  # noqa: BLE001 - absl and ml_collections raise several types for a bad flag
            _fail(2, f"bad flag: {_first_line(e)}")

    def main(argv: list[str]) -> None:
        if len(argv) > 1:
            _fail(2, f"bad flag: unexpected arguments {argv[1:]}")
        if not flags.FLAGS["verbosity"].present:
            logging.set_verbosity(logging.ERROR)  # Orbax logs every checkpoint step at INFO, notes at WARNING
        status = exit_status(lambda: runner(config.value, flags.FLAGS[workdir[0]].value,
                                            **{k: flags.FLAGS[k].value for k in keywords}))
        if status:
            sys.exit(status)

    app.run(main, flags_parser=parse)
