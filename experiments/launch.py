"""The command line of the config-driven experiment scripts (imc385.py, ladn.py, ablation_anomaly.py).

``experiment_main(runner, config_file)``: flags ``--config`` (``config_file``, preset ``cpu`` by default;
``--config=FILE:paper``; ``--config.<field>=...`` overrides) and ``--workdir``; then ``runner(config,
workdir)``. A bad flag, preset or override (flag parsing fails) ends the program with one line on stderr
and status 2, and so does a distributed runtime that cannot be joined (``DistributedInitError``); a bad setting or an unusable checkpoint / work directory found by the run (``ValueError``,
``OSError``) with one line and status 1; never a traceback.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Any, Callable


def _fail(code: int, message: str) -> None:
    print(f"{pathlib.Path(sys.argv[0]).name}: error: {message}", file=sys.stderr)
    sys.exit(code)


def _first_line(e: BaseException) -> str:
    """The root cause of ``e`` on one line (ml_collections wraps a config's own error with its traceback)."""
    while (e.__cause__ or e.__context__) is not None:
        e = e.__cause__ or e.__context__
    text = str(e).strip()
    return f"{type(e).__name__}: {' '.join(text.split())}" if text else type(e).__name__


def experiment_main(runner: Callable[[Any, str], Any], config_file: str) -> None:
    """See the module docstring."""
    from absl import app, flags, logging
    from ml_collections import config_flags

    flags.DEFINE_string("workdir", None, "Directory holding everything of the run.", required=True)
    try:  # ml_collections already reads the --config.<field> overrides of sys.argv here
        config = config_flags.DEFINE_config_file("config", f"{config_file}:cpu",
                                                 "Config file and preset (cpu or paper).")
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
        from mantra_jax.distributed.runtime import DistributedInitError

        try:
            runner(config.value, flags.FLAGS.workdir)
        except DistributedInitError as e:
            _fail(2, str(e))
        except (ValueError, OSError) as e:
            _fail(1, _first_line(e))

    app.run(main, flags_parser=parse)
