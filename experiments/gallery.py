"""Contact sheet of all 385 manipulation types applied to one photo patch.

Each tile shows the manipulated patch beside its absolute difference to the original (times --gain),
labelled with the type's name; the first tile is the original.

    python experiments/gallery.py --out /tmp/gallery.png [--image photo.jpg] [--patch 128]

Without --image the patch is cut from scikit-image's astronaut photo (shipped offline).
"""

from __future__ import annotations

import pathlib
import sys

import cv2
import numpy as np
from absl import flags

from mantra_jax.io.images import write_png_atomic
from mantra_jax.manipulations import contact_sheet

_IMAGE = flags.DEFINE_string("image", None, "Photo to cut the patch from (default: scikit-image astronaut).")
_OUT = flags.DEFINE_string("out", None, "Output PNG path.", required=True)
_PATCH = flags.DEFINE_integer("patch", 128, "Side of the square patch, pixels.", lower_bound=8)
_COLUMNS = flags.DEFINE_integer("columns", 16, "Tiles per row.", lower_bound=1)
_GAIN = flags.DEFINE_float("gain", 8.0, "Amplification of the absolute difference.", lower_bound=0.0)
_SEED = flags.DEFINE_integer("seed", 0, "Seed for the noise types.")


def load_patch(path: str | None, size: int) -> np.ndarray:
    """A (size, size, 3) uint8 RGB patch: the centre of `path`, or a face crop of the astronaut photo."""
    if path is None:
        from skimage import data

        photo = data.astronaut()
        top, left = 20, 160  # face, hair and helmet: edges, texture and flat areas
    else:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot read image {path!r}")
        photo = bgr[..., ::-1]
        top, left = (photo.shape[0] - size) // 2, (photo.shape[1] - size) // 2
    if photo.shape[0] < size or photo.shape[1] < size:
        raise ValueError(f"image {photo.shape[:2]} is smaller than the {size} x {size} patch")
    top = min(max(top, 0), photo.shape[0] - size)
    left = min(max(left, 0), photo.shape[1] - size)
    return np.ascontiguousarray(photo[top:top + size, left:left + size])


def main(argv: list[str]) -> None:
    del argv
    patch = load_patch(_IMAGE.value, _PATCH.value)
    sheet = contact_sheet(patch, seed=_SEED.value, columns=_COLUMNS.value, gain=_GAIN.value)
    write_png_atomic(_OUT.value, sheet)
    print(f"wrote {_OUT.value}: {sheet.shape[1]} x {sheet.shape[0]}")


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root (see __init__.py)
    from experiments.script_main import script_main

    script_main(main)
