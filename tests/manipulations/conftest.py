"""Fixtures for the manipulation tests: small natural photo patches shipped with scikit-image (offline)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """64 x 64 RGB crop of scikit-image's astronaut (face and hair: edges, texture, flat skin)."""
    image = np.ascontiguousarray(data.astronaut()[40:104, 190:254])
    image.setflags(write=False)
    return image


@pytest.fixture(scope="session")
def cat() -> np.ndarray:
    """96 x 96 RGB crop of scikit-image's chelsea (fur texture)."""
    image = np.ascontiguousarray(data.chelsea()[100:196, 150:246])
    image.setflags(write=False)
    return image


@pytest.fixture
def grey() -> np.ndarray:
    """A flat mid-grey 64 x 64 image (value 128), for noise statistics."""
    return np.full((64, 64, 3), 128, dtype=np.uint8)
