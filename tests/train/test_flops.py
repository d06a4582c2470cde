"""Analytic FLOP counts (``mantra_jax.train.flops``): the release variants' figures, and a residual study
variant against XLA's cost analysis."""

import jax
import jax.numpy as jnp
import pytest

from mantra_jax.models.compute import Compute
from mantra_jax.models.variants import make_imc_classifier
from mantra_jax.train.flops import featex_forward_per_pixel, train_flops_per_pixel

# per pixel: (first layer, trunk) forward, IMC train, HR train, HR train with a frozen feature extractor
RELEASE = {
    "ptrain0": ((4800, 7354368), 22072704, 25560240, 10846704),
    "ptrain1": ((4800, 7354368), 22072704, 25560240, 10846704),
    "ptrain2": ((2400, 7345152), 22040256, 25527792, 10835088),
    "ptrain3": ((2400, 7345152), 22040256, 25527792, 10835088),
    "ptrain4": ((2400, 7345152), 22040256, 24850416, 10157712),
    "tiny": ((2400, 493056), 1483968, 4220400, 3231888),
}


@pytest.mark.parametrize("variant", sorted(RELEASE))
def test_release_variant_counts(variant):
    assert (featex_forward_per_pixel(variant), train_flops_per_pixel(variant, "imc"),
            train_flops_per_pixel(variant, "mantranet"),
            train_flops_per_pixel(variant, "mantranet", frozen_featex=True)) == RELEASE[variant]


def test_windows_override_sets_the_convlstm_steps():
    assert train_flops_per_pixel("ptrain4", "mantranet", windows=(3, 5)) == 24173040


def test_residual_variant_train_count_matches_xla():
    """imc-resnet (plain3 first layer, projection shortcuts): the IMC train count against XLA's
    ``cost_analysis`` of the parameter gradient at 32 x 32, direct convolutions and XLA kernel gradients (the convolutions dominate; element-wise work
    is the small remainder)."""
    variant, size = "imc-resnet", 32
    model = make_imc_classifier(variant, num_classes=7, compute=Compute(kernel_grad="xla", conv_algorithm="direct"))
    x = jnp.zeros((1, size, size, 3), jnp.float32)
    variables = model.init(jax.random.key(0), x)

    def loss(params):
        return model.apply({**variables, "params": params}, x)["logits"].sum()

    cost = jax.jit(jax.grad(loss)).lower(variables["params"]).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    assert float(cost["flops"]) / size ** 2 == pytest.approx(train_flops_per_pixel(variant, "imc"), rel=0.01)
