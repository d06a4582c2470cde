"""The 385 manipulation types of ManTra-Net's image-manipulation classification (IMC) task.

CATALOGUE[i] (a frozen `Manipulation`) is class i: `.name`, `.family`, `.parameter`, `.group`, `.levels`
(node ids at hierarchy levels 1..6), `.apply(image, rng)` mapping a uint8 RGB (H, W, 3) image to a new one
of the same shape. The hierarchy (levels, node counts, the 5 sharpening additions) is in hierarchy.py;
parameter meanings in the family modules. Imports numpy, OpenCV and Pillow only (no JAX).
"""

from mantra_jax.manipulations.catalogue import CATALOGUE, NAMES, Manipulation, by_name
from mantra_jax.manipulations.contact_sheet import amplified_difference, contact_sheet
from mantra_jax.manipulations.hierarchy import (
    ADDITIONS,
    GROUP_NAMES,
    LEVEL_NAMES,
    NUM_LEVELS,
    PAPER_LEVEL_NAMES,
    coarsen,
    csv_ids,
    level_ids,
    level_onehot,
    node_names,
    num_classes,
    num_nodes,
)
from mantra_jax.manipulations.timing import time_types

__all__ = [
    "ADDITIONS",
    "CATALOGUE",
    "GROUP_NAMES",
    "LEVEL_NAMES",
    "Manipulation",
    "NAMES",
    "NUM_LEVELS",
    "PAPER_LEVEL_NAMES",
    "amplified_difference",
    "by_name",
    "coarsen",
    "contact_sheet",
    "csv_ids",
    "level_ids",
    "level_onehot",
    "node_names",
    "num_classes",
    "num_nodes",
    "time_types",
]
