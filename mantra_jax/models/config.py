"""The model config: a small frozen record that rebuilds a network exactly, and its JSON form.

    ModelConfig(kind="mantranet" | "imc",   # detection model or IMC pre-training classifier
                variant="ptrain4" | "tiny" | ...,   # a preset of mantra_jax.models.variants
                windows=(7, 15, 31),        # mantranet only; default: the variant's
                anomaly_feature="time_z",   # mantranet only: a registered name (df, zf, fac, time_z) or an
                                            #   import path "package.module:function" (see ops/anomaly.py)
                num_classes=385,            # imc only; default: the manipulation catalogue's size
                dtype="float32" | "bfloat16" | None,  # computation dtype of the feature extractor
                bnorm="moving" | "image")   # mantranet only: what bnorm normalises by (default "moving", the
                                            #   release; "image": the PyTorch port's per-image statistics)

Its JSON form (``to_dict`` / ``from_dict``, ``to_json`` / ``from_json``) is what checkpoints store:
``{"kind", "variant", "windows", "anomaly_feature"}`` for a detector, ``{"kind", "variant",
"num_classes"}`` for a classifier, plus ``"dtype"`` when it was given and ``"bnorm"`` when not the default. Unknown keys are rejected, so a
typo never silently falls back to a default; every problem is a one-line ``CheckpointError``.

``build()`` returns the Linen module; ``variable_shapes()`` its variables as ``jax.ShapeDtypeStruct``
(no computation); ``constraints()`` the post-update projections its parameters carry
(``mantra_jax.models.constraints``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping

import numpy as np

from mantra_jax.errors import CheckpointError

KINDS = ("mantranet", "imc")
DTYPES = ("float32", "bfloat16")
KEYS = frozenset({"kind", "variant", "windows", "anomaly_feature", "num_classes", "dtype", "bnorm"})
DEFAULT_ANOMALY_FEATURE = "time_z"
MAX_CONFIG_CHARS = 1 << 16  # a config is a few hundred characters; refuse anything near a parser's limits
MAX_CONFIG_DEPTH = 8        # {"windows": [..]} is depth 2


def json_depth(text: str) -> int:
    """Deepest nesting of ``[`` / ``{`` in a JSON text (brackets inside strings ignored), without parsing."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


INIT_SHAPE = (1, 8, 8, 3)  # only the channel count matters: no layer depends on the image size


def catalogue_size() -> int:
    """The number of IMC classes: the manipulation catalogue's length (385)."""
    from mantra_jax.manipulations.catalogue import CATALOGUE

    return len(CATALOGUE)


def _is_int(n: Any) -> bool:
    return isinstance(n, (int, np.integer)) and not isinstance(n, bool)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """See the module docstring. Construct with ``from_dict`` (validated, defaults filled) or directly
    (validated in ``__post_init__``; ``windows``/``anomaly_feature``/``num_classes`` None: the defaults)."""

    kind: str
    variant: str
    windows: tuple[int, ...] | None = None
    anomaly_feature: str | None = None
    num_classes: int | None = None
    dtype: str | None = None
    bnorm: str | None = None

    def __post_init__(self) -> None:
        from mantra_jax.models.variants import get_variant
        from mantra_jax.ops.anomaly import resolve_anomaly_feature

        if self.kind not in KINDS:
            raise CheckpointError(f"model config 'kind' must be 'mantranet' or 'imc', got {self.kind!r}")
        try:
            v = get_variant(str(self.variant or ""))
        except ValueError as e:
            raise CheckpointError(f"model config: {e}") from None
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 - frozen dataclass
        set_("variant", v.name)
        if self.dtype is not None and self.dtype not in DTYPES:
            raise CheckpointError(f"model config 'dtype' must be one of {DTYPES}, got {self.dtype!r}")
        if self.kind == "mantranet":
            windows = v.windows if self.windows is None else self.windows
            if (not isinstance(windows, (list, tuple)) or not windows
                    or not all(_is_int(n) and n >= 1 and n % 2 for n in windows)):
                raise CheckpointError(f"model config 'windows' must be a non-empty list of odd positive ints, "
                                      f"got {list(windows) if isinstance(windows, tuple) else windows!r}")
            set_("windows", tuple(int(n) for n in windows))
            feature = DEFAULT_ANOMALY_FEATURE if self.anomaly_feature is None else self.anomaly_feature
            try:
                resolve_anomaly_feature(feature)
            except ValueError as e:
                raise CheckpointError(f"model config 'anomaly_feature': {e}") from None
            set_("anomaly_feature", feature)
            from mantra_jax.models.ladn import BNORM_STATISTICS

            bnorm = "moving" if self.bnorm is None else self.bnorm
            if bnorm not in BNORM_STATISTICS:
                raise CheckpointError(f"model config 'bnorm' must be one of {BNORM_STATISTICS}, got {bnorm!r}")
            set_("bnorm", bnorm)
            if self.num_classes is not None:
                raise CheckpointError("model config 'num_classes' applies to kind 'imc' only")
        else:
            n = catalogue_size() if self.num_classes is None else self.num_classes
            if not _is_int(n) or n < 2:
                raise CheckpointError(f"model config 'num_classes' must be an int >= 2, got {n!r}")
            set_("num_classes", int(n))
            extra = [k for k in ("windows", "anomaly_feature", "bnorm") if getattr(self, k) is not None]
            if extra:
                raise CheckpointError(f"model config key(s) {extra} apply to kind 'mantranet' only")

    # ---- JSON form ----------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> "ModelConfig":
        if isinstance(cfg, ModelConfig):
            return cfg
        if not isinstance(cfg, Mapping):
            raise CheckpointError(f"model config must be a dict, got {type(cfg).__name__}")
        unknown = sorted(set(cfg) - KEYS)
        if unknown:
            raise CheckpointError(f"model config has unknown key(s) {unknown}; known: {sorted(KEYS)}")
        return cls(**{k: cfg[k] for k in KEYS if k in cfg})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "variant": self.variant}
        if self.kind == "mantranet":
            out.update(windows=list(self.windows), anomaly_feature=self.anomaly_feature)
            if self.bnorm != "moving":
                out["bnorm"] = self.bnorm
        else:
            out["num_classes"] = self.num_classes
        if self.dtype is not None:
            out["dtype"] = self.dtype
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        if not isinstance(text, str) or len(text) > MAX_CONFIG_CHARS:
            raise CheckpointError(f"model config is not a JSON text of at most {MAX_CONFIG_CHARS} characters")
        if json_depth(text) > MAX_CONFIG_DEPTH:
            raise CheckpointError(f"model config is nested more than {MAX_CONFIG_DEPTH} levels deep")
        try:
            cfg = json.loads(text)
        except (TypeError, json.JSONDecodeError) as e:
            raise CheckpointError(f"model config is not valid JSON ({e})") from None
        return cls.from_dict(cfg)

    # ---- the model ----------------------------------------------------------------------------------

    def build(self) -> Any:
        """The Linen module this config describes (a ``ManTraNet`` or an ``IMCClassifier``)."""
        import jax.numpy as jnp

        from mantra_jax.models.compute import Compute
        from mantra_jax.models.variants import make_imc_classifier, make_mantranet

        compute = Compute(dtype=jnp.bfloat16 if self.dtype == "bfloat16" else jnp.float32)
        if self.kind == "mantranet":
            return make_mantranet(self.variant, windows=self.windows, anomaly_feature=self.anomaly_feature,
                                  compute=compute, bnorm_statistics=self.bnorm)
        return make_imc_classifier(self.variant, num_classes=self.num_classes, compute=compute)

    def variable_shapes(self) -> Any:
        """The model's variables as a tree of ``jax.ShapeDtypeStruct`` (no computation)."""
        return variable_shapes(self.build())

    def constraints(self) -> dict[str, Any]:
        """Parameter-path pattern -> projection of the model's constrained weights."""
        from mantra_jax.models.constraints import constraint_table

        return constraint_table(self.build())


def variable_shapes(model: Any) -> Any:
    """``model``'s variables as a tree of ``jax.ShapeDtypeStruct`` (no computation).

    Traced with direct convolutions: the compute policy changes how the network computes, not its variables,
    and the Winograd path has many more operations to trace, which every weight loading would pay before the
    first image (measured: README, Benchmarks)."""
    import jax
    import jax.numpy as jnp

    from mantra_jax.models.compute import with_choices

    model = with_choices(model, conv_algorithm="direct")
    return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(INIT_SHAPE, jnp.float32)))


def check_config(cfg: Mapping[str, Any] | ModelConfig) -> dict[str, Any]:
    """Validates a model config and returns its JSON form (windows as a list of ints, defaults filled)."""
    return ModelConfig.from_dict(cfg).to_dict()


def model_from_config(cfg: Mapping[str, Any] | ModelConfig) -> Any:
    """The Linen module a config describes (a ``ManTraNet`` or an ``IMCClassifier``)."""
    return ModelConfig.from_dict(cfg).build()
