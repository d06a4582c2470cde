"""How a network computes, as one frozen record every model carries (``ManTraNet.compute``, ...).

    Compute(dtype=jnp.float32,      # trunk convolutions' dtype; the first layer, batch norm, window means,
                                    #   Z-scores, the ConvLSTM, losses and parameters stay float32
            kernel_grad="auto",     # trunk kernel gradients: "auto" (per-tap matmuls on CPU where faster),
                                    #   "xla" or "matmul" (mantra_jax.ops.conv_grad)
            conv_algorithm="auto")  # 3 x 3 trunk convolutions: "auto" (Winograd on CPU where faster),
                                    #   "direct", "winograd2", "winograd3", "winograd4" (mantra_jax.ops.conv)

None of the three changes what the network computes beyond float rounding; they are the one home of these
defaults. ``kernel_grad`` and ``conv_algorithm`` are what was asked (the run settings, config
``model.<field>``). ``Compute.resolve(platform)``, the one place that decides, turns them into ``rule``, a
``LayerRule`` of concrete per-layer choices for the platform the model runs on ("auto": the CPU speed-ups
below per layer on the CPU, XLA's own kernel gradients and direct convolutions elsewhere); the modules read
each layer's choices from it and hand the ops only concrete ones. Resolution happens when a model is built
into what runs it: ``for_platform`` by the training loop (for the platform its mesh is on, so a step lowered
for a GPU on a CPU host is the GPU's step) and by inference's jitted functions (``mantra_jax.infer``, for
the default backend). A model applied without being resolved is resolved, at trace time, for the default
backend (``Compute.layer_rule``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from mantra_jax.ops.conv import ALGORITHMS
from mantra_jax.ops.conv_grad import KERNEL_GRADS

AUTO = "auto"  # the choice that ``resolve`` makes per layer and platform
KERNEL_GRAD_CHOICES = (AUTO,) + KERNEL_GRADS
CONV_ALGORITHM_CHOICES = (AUTO,) + ALGORITHMS

# Where "auto" computes a CPU layer's kernel gradient as per-tap matmuls: XLA's own kernel gradient slows
# down as the output pixels grow, the per-tap matmuls run near the matmul peak from 64 input channels up;
# below 64 input channels, or at 64 with few pixels, XLA's is as fast or faster (measured with
# experiments/bench_train.py: README, Benchmarks).
MATMUL_GRAD_MIN_CHANNELS = 128
MATMUL_GRAD_MIN_CHANNELS_LARGE = 64
MATMUL_GRAD_LARGE_PIXELS = 32768
# What "auto" runs on the CPU for float32 3 x 3 layers (measured side by side on 2 cores, whole Ptrain4 at
# 256 x 256, see experiments/bench_forward.py): Winograd F(2x2, 3x3) from 32 input channels (2.25x fewer
# multiplications; its float32 error is that of the direct convolution) and F(4x4, 3x3) from 256 (4x fewer;
# 3-5x the float32 error, so only where most FLOPs are: with F(4x4) on every layer from 64 channels the
# 23 x 37 reference case exceeds its 2e-5 bound in cLSTM). Direct below 32 channels (the transforms cost
# more than they save), for every other dtype and platform.
WINOGRAD_MIN_CHANNELS = 32
WINOGRAD4_MIN_CHANNELS = 256


@dataclasses.dataclass(frozen=True)
class LayerRule:
    """Concrete per-layer choices (made by ``Compute.resolve``; hashable).

    Attributes:
      matmul_grad: ``(min input channels, min output pixels)`` pairs: a layer meeting both of any pair gets
        the per-tap matmul kernel gradient, every other layer XLA's (``()``: always XLA's).
      algorithms: ``(min input channels, algorithm)`` pairs, largest first: a 3 x 3 layer runs the first
        whose minimum it meets, else "direct"; every other kernel size runs "direct".
    """

    matmul_grad: tuple[tuple[int, int], ...] = ()
    algorithms: tuple[tuple[int, str], ...] = ()

    def kernel_grad(self, input_channels: int, output_pixels: int) -> str:
        """"matmul" or "xla" for a layer of ``input_channels`` and batch x height x width ``output_pixels``."""
        hit = any(input_channels >= c and output_pixels >= p for c, p in self.matmul_grad)
        return "matmul" if hit else "xla"

    def algorithm(self, kernel_shape: tuple[int, ...]) -> str:
        """The convolution algorithm of a layer with an HWIO ``kernel_shape``."""
        if tuple(kernel_shape[:2]) == (3, 3):
            for channels, algorithm in self.algorithms:
                if kernel_shape[2] >= channels:
                    return algorithm
        return "direct"


@dataclasses.dataclass(frozen=True)
class Compute:
    """The computation policy of a model (module docstring); hashable, so a Linen module attribute.
    ``rule``: None until ``resolve`` sets it."""

    dtype: Any = jnp.float32
    kernel_grad: str = AUTO
    conv_algorithm: str = AUTO
    rule: LayerRule | None = None

    def __post_init__(self) -> None:
        if self.kernel_grad not in KERNEL_GRAD_CHOICES:
            raise ValueError(f"kernel_grad must be one of {KERNEL_GRAD_CHOICES}, got {self.kernel_grad!r}")
        if self.conv_algorithm not in CONV_ALGORITHM_CHOICES:
            raise ValueError(f"conv_algorithm must be one of {CONV_ALGORITHM_CHOICES}, got {self.conv_algorithm!r}")
        jnp.dtype(self.dtype)  # a TypeError for what is not a dtype

    def resolve(self, platform: str) -> "Compute":
        """This policy with ``rule`` made for ``platform`` ("cpu", "gpu", "cuda", "tpu", ...) from its choices:
        the one place a compute choice is decided (module docstring)."""
        cpu = platform == "cpu"
        if self.kernel_grad == AUTO:
            grad = (((MATMUL_GRAD_MIN_CHANNELS, 0), (MATMUL_GRAD_MIN_CHANNELS_LARGE, MATMUL_GRAD_LARGE_PIXELS))
                    if cpu else ())
        else:
            grad = ((0, 0),) if self.kernel_grad == "matmul" else ()
        if self.conv_algorithm == AUTO:
            winograd = cpu and jnp.dtype(self.dtype) == jnp.float32
            algorithms = (((WINOGRAD4_MIN_CHANNELS, "winograd4"), (WINOGRAD_MIN_CHANNELS, "winograd2"))
                          if winograd else ())
        else:
            algorithms = () if self.conv_algorithm == "direct" else ((0, self.conv_algorithm),)
        return dataclasses.replace(self, rule=LayerRule(grad, algorithms))

    def layer_rule(self) -> LayerRule:
        """``rule``, or, for a policy not resolved, that of ``resolve(jax.default_backend())``."""
        return self.rule if self.rule is not None else self.resolve(jax.default_backend()).rule


CHOICES = ("kernel_grad", "conv_algorithm")  # the run settings of a policy (config ``model.<field>``)


def for_platform(model: Any, platform: str) -> Any:
    """``model`` with its ``compute`` policy resolved for the platform it runs on (``Compute.resolve``); a
    model without one is returned as it is."""
    compute = getattr(model, "compute", None)
    if compute is None:
        return model
    resolved = compute.resolve(platform)
    return model if resolved == compute else model.clone(compute=resolved)


def with_choices(model: Any, **choices: str) -> Any:
    """``model`` with its compute policy's ``choices`` (fields in CHOICES, e.g. ``kernel_grad="xla"``) set
    and its resolution dropped (``rule``: resolved again where it is built into a step or inference); a
    model without a policy, or whose policy already holds them, is returned as it is. A bad value is a
    ValueError naming the field."""
    unknown = sorted(set(choices) - set(CHOICES))
    if unknown:
        raise ValueError(f"unknown compute choice(s) {unknown}; known: {list(CHOICES)}")
    compute = getattr(model, "compute", None)
    if compute is None:
        return model
    chosen = {k: str(v) for k, v in choices.items()}
    if all(getattr(compute, k) == v for k, v in chosen.items()):
        return model
    return model.clone(compute=dataclasses.replace(compute, rule=None, **chosen))
