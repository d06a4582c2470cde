"""The package's error types, in a module that imports nothing else of the package.

Every layer (``io``, ``models``, ``train``, the CLI) raises and catches these, so none needs another's
module for its exceptions. All are ``ValueError`` subclasses: the CLI turns them into one line on stderr.
"""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint or model config that cannot be used: missing, corrupt, or not matching its model."""


class CheckpointCorruptError(CheckpointError):
    """A checkpoint whose files cannot be read back (truncated, deleted or garbled)."""


class CheckpointMismatchError(CheckpointError):
    """A readable checkpoint that does not fit the running program (other model, optimiser or config)."""


class WeightFileError(ValueError):
    """A Keras weight file that does not match the official layout."""


class TrainingDivergedError(ValueError):
    """Training produced a non-finite loss: the run stops before evaluating or saving that state."""
