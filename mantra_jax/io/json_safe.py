"""The one converter of results to strict JSON: numpy scalars to Python ones, NaN / infinities to None."""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np


def json_safe(value: Any) -> Any:
    """``value`` with nested mappings / lists / tuples converted recursively (keys as strings), numpy
    integers and booleans made plain, and every float that is NaN or infinite made None (valid JSON)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value
