"""The network's structural description (``mantra_jax.models.structure``) against the modules it describes."""

import jax
import jax.numpy as jnp

from mantra_jax.models.structure import in_parts, radius
from mantra_jax.models.variants import make_imc_classifier, make_mantranet


def test_ptrain4_layers_are_the_release_network():
    layers = make_mantranet("ptrain4").layers()
    featex = in_parts(layers, ("first", "trunk", "shortcut", "transform"))
    assert len(featex) == 13 and len(layers) == 17
    assert (featex[0].name, featex[0].kernel, featex[0].in_ch, featex[0].out_ch) == ("Featex/b1c1", 5, 3, 16)
    assert radius(featex) == 14


def test_residual_shortcuts_are_listed_off_the_longest_path():
    featex = make_imc_classifier("imc-resnet", num_classes=7).featex
    shortcuts = in_parts(featex.layers(), ("shortcut",))
    assert [(s.name, s.kernel, s.in_ch, s.out_ch) for s in shortcuts] == [
        ("b3c2_proj", 1, 16, 32), ("b4c2_proj", 1, 32, 64), ("b5c2_proj", 1, 64, 128)]
    assert not any(s.on_longest_path for s in shortcuts)
    assert featex.layers()[0].kernel == 3  # the backbones' plain3 first layer


def test_every_listed_kernel_is_a_parameter_of_that_shape():
    """Each layer names a kernel of the initialised model, k x k x in x out (the residual variant, whose
    shortcuts the walk must place where the module does)."""
    model = make_imc_classifier("imc-resnet/8", num_classes=5)
    params = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3))))["params"]
    for layer in model.layers():
        scope = params
        for key in layer.name.split("/"):
            scope = scope[key]
        kernel = scope.get("kernel", scope.get("regular_kernel"))
        assert kernel.shape[:2] == (layer.kernel, layer.kernel), layer
        assert kernel.shape[3] == layer.out_ch and kernel.shape[2] == layer.in_ch, layer
    n_kernels = sum(1 for path, _ in jax.tree_util.tree_leaves_with_path(params)
                    if path[-1].key in ("kernel", "regular_kernel"))
    assert n_kernels == len(model.layers())
