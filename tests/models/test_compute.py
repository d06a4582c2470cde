"""The compute policy: one record of how a model computes, resolved per target platform."""

import dataclasses

import jax
import jax.numpy as jnp
import pytest

from mantra_jax.models.compute import Compute, LayerRule, for_platform, with_choices
from mantra_jax.models.config import ModelConfig
from mantra_jax.models.featex import FeatexConfig

# The release trunk's 3 x 3 layers (b1c2 .. b5c2, transform), by input channels (the first layer gives 16).
RELEASE_INPUTS = [16] + [w for block in FeatexConfig().trunk for w in block]


def _layers(rule: LayerRule, pixels: int) -> list[tuple[str, str]]:
    """(algorithm, kernel gradient) of each release trunk layer at ``pixels`` batch x height x width."""
    return [(rule.algorithm((3, 3, c, 1)), rule.kernel_grad(c, pixels)) for c in RELEASE_INPUTS]


def test_resolve_on_the_cpu_gives_the_per_layer_speed_ups():
    rule = Compute().resolve("cpu").rule
    w2, w4 = "winograd2", "winograd4"
    # IMC training batch 16 at 128 x 128 (262144 pixels): per-tap matmuls from 64 channels
    assert _layers(rule, 16 * 128 * 128) == ([("direct", "xla"), (w2, "xla")] + [(w2, "matmul")] * 5
                                             + [(w4, "matmul")] * 5)
    # one 128 x 128 image (16384 pixels): from 128 channels only
    assert [g for _, g in _layers(rule, 128 * 128)] == ["xla"] * 4 + ["matmul"] * 8
    assert rule.kernel_grad(64, 32768) == "matmul" and rule.kernel_grad(64, 32767) == "xla"
    assert rule.kernel_grad(32, 10 ** 6) == "xla"
    assert rule.algorithm((5, 5, 256, 16)) == rule.algorithm((1, 1, 256, 16)) == "direct"  # Winograd: 3 x 3 only
    # Winograd only for float32 trunks
    assert Compute(jnp.bfloat16).resolve("cpu").rule.algorithm((3, 3, 256, 256)) == "direct"


@pytest.mark.parametrize("platform", ["gpu", "cuda", "tpu"])
def test_resolve_off_the_cpu_gives_xla_gradients_and_direct_convolutions(platform):
    rule = Compute().resolve(platform).rule
    assert rule == Compute(kernel_grad="xla", conv_algorithm="direct").resolve("cpu").rule
    assert set(_layers(rule, 10 ** 6)) == {("direct", "xla")}


def test_explicit_choices_hold_on_every_platform_and_every_layer():
    chosen = Compute(jnp.bfloat16, kernel_grad="matmul", conv_algorithm="winograd3")
    for platform in ("cpu", "gpu"):
        resolved = chosen.resolve(platform)
        assert (resolved.dtype, resolved.kernel_grad, resolved.conv_algorithm) == (jnp.bfloat16, "matmul", "winograd3")
        assert set(_layers(resolved.rule, 1)) == {("winograd3", "matmul")}
        assert resolved.rule.algorithm((1, 1, 8, 8)) == "direct"


def test_resolution_is_a_rule_of_concrete_choices():
    assert Compute().rule is None
    for platform in ("cpu", "gpu"):
        rule = Compute().resolve(platform).rule
        values = {v for pair in rule.matmul_grad + rule.algorithms for v in pair if isinstance(v, str)}
        assert values <= {"winograd2", "winograd3", "winograd4"}
        assert {a for layer in _layers(rule, 10 ** 6) for a in layer} <= {"direct", "winograd2", "winograd4",
                                                                           "xla", "matmul"}
    resolved = Compute().resolve("gpu")
    assert resolved.resolve("cpu") == Compute().resolve("cpu")  # made again from the choices, not the rule


def test_a_policy_not_resolved_is_resolved_for_the_default_backend():
    assert Compute().layer_rule() == Compute().resolve(jax.default_backend()).rule
    assert Compute().resolve("gpu").layer_rule() == Compute().resolve("gpu").rule


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
        assert gpu.compute == Compute(jnp.bfloat16).resolve("gpu")
        cpu = for_platform(model, "cpu")
        assert cpu.compute == Compute(jnp.bfloat16).resolve("cpu") and for_platform(cpu, "cpu") is cpu


def _dots(model) -> int:
    """Matrix products in the forward jaxpr of ``model`` on a 1 x 8 x 8 image (Winograd's are products)."""
    x = jnp.zeros((1, 8, 8, 3), jnp.float32)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x))
    return str(jax.make_jaxpr(model.apply)(variables, x)).count("dot_general")


def test_the_model_runs_the_platform_it_was_resolved_for_not_the_host():
    model = ModelConfig("imc", "tiny", num_classes=3).build()
    # on this CPU host: a model resolved for a GPU runs direct convolutions (no products but the IMC head's
    # fused mean), one resolved for the CPU its Winograd layers
    assert _dots(for_platform(model, "gpu")) == _dots(with_choices(model, conv_algorithm="direct")) == 1
    assert _dots(for_platform(model, "cpu")) > 1


def test_with_choices_sets_the_run_settings_and_keeps_dtype_and_an_unchanged_model():
    model = ModelConfig("mantranet", "tiny", dtype="bfloat16").build()
    assert with_choices(model) is model and with_choices(model, kernel_grad="auto") is model
    chosen = with_choices(model, kernel_grad="xla", conv_algorithm="direct")
    assert chosen.compute == Compute(jnp.bfloat16, "xla", "direct")
    with pytest.raises(ValueError, match="unknown compute choice"):
        with_choices(model, dtype="float32")
    with pytest.raises(ValueError, match="conv_algorithm"):
        with_choices(model, conv_algorithm="fft")


def test_with_choices_drops_a_resolution_made_for_other_choices():
    gpu = for_platform(ModelConfig("mantranet", "tiny").build(), "gpu")
    assert with_choices(gpu, kernel_grad="matmul").compute == Compute(kernel_grad="matmul")
    assert with_choices(gpu, kernel_grad="auto") is gpu
