"""The compute policy: one record of how a model computes, resolved per target platform."""

import dataclasses

import jax.numpy as jnp
import pytest

from mantra_jax.models.compute import Compute
from mantra_jax.models.config import ModelConfig
from mantra_jax.train.step import for_platform


def test_auto_is_resolved_off_the_cpu_and_explicit_choices_stay():
    auto = Compute()
    assert auto.for_platform("cpu") is auto
    assert auto.for_platform("gpu") == Compute(kernel_grad="xla", conv_algorithm="direct")
    chosen = Compute(jnp.bfloat16, kernel_grad="matmul", conv_algorithm="winograd2")
    assert chosen.for_platform("tpu") == chosen


@pytest.mark.parametrize("kwargs,match", [({"kernel_grad": "fast"}, "kernel_grad"),
                                          ({"conv_algorithm": "fft"}, "conv_algorithm")])
def test_unknown_modes_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Compute(**kwargs)


def test_models_carry_one_policy_that_for_platform_resolves():
    for kind in ("mantranet", "imc"):
        model = ModelConfig(kind, "tiny", dtype="bfloat16").build()
        assert model.compute == Compute(dtype=jnp.bfloat16)
        assert not {"dtype", "kernel_grad", "conv_algorithm"} & {f.name for f in dataclasses.fields(model)}
        gpu = for_platform(model, "gpu")
        assert gpu.compute == Compute(jnp.bfloat16, "xla", "direct") and for_platform(model, "cpu") is model


def test_with_choices_sets_the_run_settings_and_keeps_dtype_and_an_unchanged_model():
    from mantra_jax.models.compute import with_choices

    model = ModelConfig("mantranet", "tiny", dtype="bfloat16").build()
    assert with_choices(model) is model and with_choices(model, kernel_grad="auto") is model
    chosen = with_choices(model, kernel_grad="xla", conv_algorithm="direct")
    assert chosen.compute == Compute(jnp.bfloat16, "xla", "direct")
    with pytest.raises(ValueError, match="unknown compute choice"):
        with_choices(model, dtype="float32")
    with pytest.raises(ValueError, match="conv_algorithm"):
        with_choices(model, conv_algorithm="fft")
