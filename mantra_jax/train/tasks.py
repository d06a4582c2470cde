"""The two training tasks, each bundling its loss, validation sums and their summary.

* ``imc_task``: image-manipulation classification; batches ``{"image" (B, H, W, 3), "label" (B,)}``; loss
  softmax cross-entropy; validation: loss and top-1/3/5/10 accuracy at every hierarchy level.
* ``localisation_task``: forgery localisation; batches ``{"image", "mask" (B, H, W, 1), "kind" (B,)}``;
  loss pixel binary cross-entropy; validation: loss, pixel F1 per forgery kind and overall, approximate
  pixel AUC.

``eval_sums(outputs, batch)`` runs on device inside the jitted eval step and returns additive sums (among
them ``loss_sum`` and ``count``); the host adds them over the validation set and ``summarize`` turns the
totals into the reported metrics, always including ``loss`` (the mean validation loss, which drives the
learning-rate plateau and the best checkpoint).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from mantra_jax.train import imc_metrics, pixel_metrics
from mantra_jax.train.losses import hierarchical_cross_entropy, imc_cross_entropy, pixel_bce

Batch = Mapping[str, jnp.ndarray]
Outputs = Mapping[str, jnp.ndarray]


@dataclasses.dataclass(frozen=True)
class Task:
    """name; batch_keys: the batch entries the steps use (others are dropped before sharding);
    loss_fn(outputs, batch) -> mean loss; eval_sums(outputs, batch) -> additive sums; summarize(totals) ->
    metrics; headline: the metrics shown in the final summary table."""

    name: str
    batch_keys: tuple[str, ...]
    loss_fn: Callable[[Outputs, Batch], jnp.ndarray]
    eval_sums: Callable[[Outputs, Batch], dict[str, jnp.ndarray]]
    summarize: Callable[[Mapping[str, Any]], dict[str, float]]
    headline: tuple[str, ...]

    def check_batch(self, batch: Mapping[str, Any]) -> None:
        """Raises ValueError when a batch lacks a key or has a wrong rank or dtype."""
        missing = [k for k in self.batch_keys if k not in batch]
        if missing:
            raise ValueError(f"{self.name} batch lacks {missing} (has {sorted(batch)})")
        image = batch["image"]
        if (np.ndim(image) != 4 or np.shape(image)[-1] != 3
                or not (np.issubdtype(image.dtype, np.floating) or image.dtype == np.uint8)):
            raise ValueError(f"batch image must be float or uint8 (B, H, W, 3), got {image.dtype} {np.shape(image)}")
        b = np.shape(image)[0]
        for k in self.batch_keys:
            if np.shape(batch[k])[:1] != (b,):
                raise ValueError(f"batch {k!r} has leading size {np.shape(batch[k])[:1]}, images have {b}")


def _loss_sums(loss_fn: Callable[[Outputs, Batch], jnp.ndarray], outputs: Outputs, batch: Batch) -> dict[str, Any]:
    b = batch["image"].shape[0]
    return {"loss_sum": loss_fn(outputs, batch) * b, "count": jnp.asarray(b, jnp.int32)}


def _mean_loss(totals: Mapping[str, Any]) -> float:
    count = float(totals["count"])
    if count <= 0:
        raise ValueError("no validation samples were counted")
    return float(totals["loss_sum"]) / count


def imc_task(levels: Mapping[str, np.ndarray] | None = None, num_classes: int | None = None,
             top_k: Sequence[int] = imc_metrics.TOP_K, hierarchy_weight: float = 0.0) -> Task:
    """IMC task; ``levels`` defaults to the project's 385-class hierarchy (HL0..HL5), ``num_classes`` to the
    catalogue's size (``mantra_jax.models.config.catalogue_size``).

    The loss is the paper's leaf cross-entropy, plus ``hierarchy_weight`` times the coarse levels'
    cross-entropies when it is positive (``losses.hierarchical_cross_entropy``). Validation reports
    ``loss`` (that objective) and ``ce`` (the leaf cross-entropy alone) besides the accuracies.
    """
    if num_classes is None:
        from mantra_jax.models.config import catalogue_size

        num_classes = catalogue_size()
    levels = imc_metrics.check_levels(imc_metrics.hierarchy_levels() if levels is None else levels, num_classes)
    top_k = tuple(int(k) for k in top_k)
    loss_fn = (hierarchical_cross_entropy(list(levels.values()), hierarchy_weight) if hierarchy_weight > 0
               else imc_cross_entropy)

    def eval_sums(outputs: Outputs, batch: Batch) -> dict[str, jnp.ndarray]:
        sums = imc_metrics.imc_batch_sums(outputs["logits"], batch["label"], levels, top_k)
        sums.update(_loss_sums(loss_fn, outputs, batch))
        sums["ce_sum"] = imc_cross_entropy(outputs, batch) * batch["image"].shape[0]
        return sums

    def summarize(totals: Mapping[str, Any]) -> dict[str, float]:
        return {"loss": _mean_loss(totals), "ce": float(totals["ce_sum"]) / float(totals["count"]),
                **imc_metrics.summarize_imc(totals)}

    names = list(levels)
    return Task("imc", ("image", "label"), loss_fn, eval_sums, summarize,
                ("loss", "ce", f"{names[0]}/top1") + tuple(f"{names[-1]}/top{k}" for k in top_k))


def localisation_task(kind_names: Sequence[str] | None = None, bins: int = pixel_metrics.AUC_BINS) -> Task:
    """Localisation task; ``kind_names`` defaults to ``mantra_jax.data.forgeries.FORGERY_KINDS``."""
    if kind_names is None:
        from mantra_jax.data.forgeries import FORGERY_KINDS

        kind_names = FORGERY_KINDS
    kind_names = tuple(str(k) for k in kind_names)

    def eval_sums(outputs: Outputs, batch: Batch) -> dict[str, jnp.ndarray]:
        sums = pixel_metrics.pixel_batch_sums(outputs["pred_logits"], batch["mask"], batch["kind"],
                                              len(kind_names), bins)
        sums.update(_loss_sums(pixel_bce, outputs, batch))
        return sums

    def summarize(totals: Mapping[str, Any]) -> dict[str, float]:
        return {"loss": _mean_loss(totals), **pixel_metrics.summarize_pixels(totals, kind_names)}

    return Task("localisation", ("image", "mask", "kind"), pixel_bce, eval_sums, summarize,
                ("loss", "auc", "f1/overall") + tuple(f"f1/{k}" for k in kind_names))
