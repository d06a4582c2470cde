"""Metric outputs of a run: JSON lines, TensorBoard event files and a plain-text summary table.

``<workdir>/metrics.jsonl``: one JSON object per line, ``{"step", "split" ("train" | "val"), "time",
<metric>: value}``; NaN and infinities are written as null. ``<workdir>/tensorboard/<split>/``: event
files (``mantra_jax.train.tensorboard``). On resume the loop calls ``truncate_after(step)``, which drops
the JSON lines logged after the restored checkpoint (they are logged again), rewriting the file
atomically; TensorBoard keeps the older events of those steps in the previous event file.
"""

from __future__ import annotations

import json
import math
import pathlib
import time
from typing import Any, Mapping, Sequence

from mantra_jax.io.atomic import write_text_atomic
from mantra_jax.train.tensorboard import EventFileWriter

JSONL = "metrics.jsonl"
TB_DIR = "tensorboard"


def _clean(value: Any) -> Any:
    value = float(value)
    return value if math.isfinite(value) else None


class MetricWriter:
    """Writes metrics of one run. ``enabled=False`` (non-primary processes) makes every call a no-op."""

    def __init__(self, workdir: str | pathlib.Path, enabled: bool = True):
        self.workdir = pathlib.Path(workdir)
        self.enabled = enabled
        self._tb: dict[str, EventFileWriter] = {}
        if enabled:
            self.workdir.mkdir(parents=True, exist_ok=True)

    @property
    def jsonl_path(self) -> pathlib.Path:
        return self.workdir / JSONL

    def truncate_after(self, step: int) -> None:
        """Drops JSON lines with ``step`` greater than ``step``."""
        if not self.enabled or not self.jsonl_path.exists():
            return
        kept = [line for line in self.jsonl_path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        write_text_atomic(self.jsonl_path, "".join(line + "\n" for line in kept))

    def write(self, step: int, split: str, metrics: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"step": int(step), "split": split, "time": round(time.time(), 3)}
        record.update({k: _clean(v) for k, v in metrics.items()})
        with self.jsonl_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if split not in self._tb:
            self._tb[split] = EventFileWriter(self.workdir / TB_DIR / split)
        self._tb[split].scalars(int(step), {k: float(v) for k, v in metrics.items()})

    def close(self) -> None:
        for writer in self._tb.values():
            writer.close()


def read_jsonl(path: str | pathlib.Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in pathlib.Path(path).read_text().splitlines() if line.strip()]


def format_table(rows: Mapping[str, Mapping[str, Any]], columns: Sequence[str], *, row_header: str = "") -> str:
    """A fixed-width text table: one row per key of ``rows``, one column per name in ``columns``."""
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return "nan" if not math.isfinite(v) else f"{v:.4f}"
        return str(v)

    header = [row_header] + list(columns)
    body = [[str(name)] + [cell(r.get(c)) for c in columns] for name, r in rows.items()]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    fmt = lambda line: "  ".join(s.ljust(w) if i == 0 else s.rjust(w) for i, (s, w) in enumerate(zip(line, widths)))  # noqa: E731
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(line) for line in body])
