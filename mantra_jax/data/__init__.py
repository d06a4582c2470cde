"""Training data: photo sources, patches and splits, IMC samples, forgery synthesis, the grain pipeline.

Photos -> ``PatchBank`` (256x256 grid patches, homogeneous ones rejected, split 8:1:1 by photo) ->
``IMCSource`` (manipulated 128x128 crops with their class) or ``ForgerySource`` (forged 256x256 patches
with their binary mask) -> ``make_loader`` (grain batches). Synthesis uses numpy and OpenCV only;
only ``mantra_jax.data.pipeline`` imports grain (and with it JAX). Each name has one home, its module
(``mantra_jax.data.patches.PatchBank``, ``mantra_jax.data.pipeline.make_loader``, ...).
"""
