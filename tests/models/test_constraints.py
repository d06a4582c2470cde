"""The constraint table as the walk of the module tree (``mantra_jax.models.constraints.module_table``)."""

import flax.linen as nn

from mantra_jax.models.constraints import constraint_table
from mantra_jax.models.featex import FeatexConfig, FeatureExtractor
from mantra_jax.models.first_layer import FirstLayer
from mantra_jax.models.ladn import AnomalyDetector
from mantra_jax.models.mantranet import ManTraNet
from mantra_jax.ops.constraints import bayar_project


class Wrapper(nn.Module):
    """A module of no known kind that mounts a ManTraNet as ``Net`` and constrains a weight of its own."""

    def own_constraints(self):
        return {"scale": abs}

    def submodules(self):
        return (("Net", ManTraNet(featex=FeatexConfig(trunk=((4,),), transform_features=8), parent=None)),)

    def __call__(self, x):
        return x


def test_each_module_contributes_its_own_constraints_under_its_scope_path():
    table = constraint_table(Wrapper())
    featex, ladn = f"Net/{FeatureExtractor.SCOPE}", f"Net/{AnomalyDetector.SCOPE}"
    assert list(table) == ["scale", f"{featex}/{FirstLayer.SCOPE}/bayar_kernel",
                           f"{ladn}/{AnomalyDetector.OUTLIER_TRANS}/kernel", f"{ladn}/{AnomalyDetector.GLB_STD}/min_std"]
    assert table[f"{featex}/{FirstLayer.SCOPE}/bayar_kernel"] is bayar_project


def test_a_first_layer_without_a_bayar_kernel_contributes_nothing():
    assert constraint_table(FirstLayer("plain3", 2)) == {}
    assert constraint_table(FeatureExtractor(FeatexConfig(first_layer="srm", plain_filters=0))) == {}
