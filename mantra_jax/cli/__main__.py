"""``python -m mantra_jax.cli``: the ``mantra`` command."""

import sys

from mantra_jax.cli import main

if __name__ == "__main__":
    sys.exit(main())
