"""How a network computes, as one frozen record every model carries (``ManTraNet.compute``, ...).

    Compute(dtype=jnp.float32,      # trunk convolutions' dtype; the first layer, batch norm, window means,
                                    #   Z-scores, the ConvLSTM, losses and parameters stay float32
            kernel_grad="auto",     # trunk kernel gradients: "auto" (per-tap matmuls on CPU where faster),
                                    #   "xla" or "matmul" (mantra_jax.ops.conv_grad)
            conv_algorithm="auto")  # 3 x 3 trunk convolutions: "auto" (Winograd on CPU where faster),
                                    #   "direct", "winograd2", "winograd3", "winograd4" (mantra_jax.ops.conv)

None of the three changes what the network computes beyond float rounding; they are the one home of these
defaults. ``kernel_grad`` and ``conv_algorithm`` "auto" are CPU speed-ups: ``for_platform`` resolves them
for the platform a step is compiled for (XLA's own gradients and direct convolutions off the CPU),
rather than from ``jax.default_backend()`` at trace time, so a step lowered for a GPU on a CPU host is
the GPU's step.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

from mantra_jax.ops.conv import ALGORITHMS
from mantra_jax.ops.conv_grad import KERNEL_GRADS


@dataclasses.dataclass(frozen=True)
class Compute:
    """The computation policy of a model (module docstring); hashable, so a Linen module attribute."""

    dtype: Any = jnp.float32
    kernel_grad: str = "auto"
    conv_algorithm: str = "auto"

    def __post_init__(self) -> None:
        if self.kernel_grad not in KERNEL_GRADS:
            raise ValueError(f"kernel_grad must be one of {KERNEL_GRADS}, got {self.kernel_grad!r}")
        if self.conv_algorithm not in ALGORITHMS:
            raise ValueError(f"conv_algorithm must be one of {ALGORITHMS}, got {self.conv_algorithm!r}")
        jnp.dtype(self.dtype)  # a TypeError for what is not a dtype

    def for_platform(self, platform: str) -> "Compute":
        """This policy with "auto" resolved for ``platform`` ("cpu" keeps it: decided per layer there)."""
        if platform == "cpu":
            return self
        return dataclasses.replace(self, kernel_grad="xla" if self.kernel_grad == "auto" else self.kernel_grad,
                                   conv_algorithm="direct" if self.conv_algorithm == "auto" else self.conv_algorithm)


CHOICES = ("kernel_grad", "conv_algorithm")  # the run settings of a policy (config ``model.<field>``)


def with_choices(model: Any, **choices: str) -> Any:
    """``model`` with its compute policy's ``choices`` (fields in CHOICES, e.g. ``kernel_grad="xla"``) set;
    a model without a policy, or whose policy already holds them, is returned as it is. A bad value is a
    ValueError naming the field."""
    unknown = sorted(set(choices) - set(CHOICES))
    if unknown:
        raise ValueError(f"unknown compute choice(s) {unknown}; known: {list(CHOICES)}")
    compute = getattr(model, "compute", None)
    if compute is None:
        return model
    resolved = dataclasses.replace(compute, **{k: str(v) for k, v in choices.items()})
    return model if resolved == compute else model.clone(compute=resolved)

