"""Experiment scripts (thin: flags, configs and the runners that read them here, everything else in
``mantra_jax``).

The folder is a package so that the configs import each other plainly (``from experiments.configs import
ladn``); each script puts the repository root on ``sys.path`` first, so ``python experiments/<name>.py``
works from any directory.
"""
