"""Small models for inference tests: the ``tiny`` preset and a ``micro`` trunk (two 3x3 layers, 8 features)
whose receptive halo is 15 px, so tiling is exercised on images of a few dozen pixels."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mantra_jax.models.featex import FeatexConfig
from mantra_jax.models.mantranet import ManTraNet
from mantra_jax.models.variants import make_mantranet

TOL = 1e-5  # max abs difference of probabilities, tiled vs whole image


def init(model, seed=0):
    """Random variables of the model's shapes, drawn with numpy (``model.init`` compiles for ~15 s on CPU).

    Kernels ~ N(0, 1 / fan_in), biases ~ N(0, 0.1^2), bnorm statistics (0, 1), min_std 1e-5.
    """
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 8, 8, 3), jnp.float32))

    def draw(path, s):
        name = jax.tree_util.keystr(path)
        if "moving_mean" in name:
            return jnp.zeros(s.shape, s.dtype)
        if "moving_variance" in name:
            return jnp.ones(s.shape, s.dtype)
        if "min_std" in name:
            return jnp.full(s.shape, 1e-5, s.dtype)
        if len(s.shape) == 1:
            return jnp.asarray(rng.normal(0, 0.1, s.shape), s.dtype)
        fan_in = int(np.prod(s.shape[:-1]))
        return jnp.asarray(rng.normal(0, 1 / np.sqrt(fan_in), s.shape), s.dtype)

    return jax.tree_util.tree_map_with_path(draw, shapes)


def dots(fn, *args) -> int:
    """Matrix products (Winograd's convolutions among them) in the program ``fn`` traces for ``args``."""
    return str(jax.make_jaxpr(fn)(*args)).count("dot_general")


def sharpened(variables, factor=2.0):
    """LADN kernels scaled by ``factor``: a more contrasted map, so border effects are easier to see."""
    v = jax.tree.map(lambda a: a, variables)
    ladn = v["params"]["LADN"]
    for name in ("kernel", "recurrent_kernel"):
        ladn["cLSTM"][name] = ladn["cLSTM"][name] * factor
    ladn["pred"]["kernel"] = ladn["pred"]["kernel"] * factor
    return v


def image(h, w, seed=0):
    """Random content with a flat-quantised block, so the map has structure."""
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    img[h // 4:h // 2, w // 4:w // 2] //= 16
    return img


@pytest.fixture(scope="session")
def tiny():
    model = make_mantranet("tiny")
    return model, init(model)


@pytest.fixture(scope="session")
def micro():
    model = ManTraNet(featex=FeatexConfig(plain_filters=4, trunk=((4,), (8,)), transform_features=8), windows=(3,))
    return model, sharpened(init(model, 1))
