"""The training loop's records: its bookkeeping saved with each periodic checkpoint (``LoopRecord``), its
time accounts (``Timing``) and the run summary it returns and writes to ``summary.json`` (``RunSummary``).

Each serialises to exactly the dict the loop wrote before it had them (``to_dict``), so checkpoints and
``summary.json`` are unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any, Mapping

from mantra_jax.io.atomic import write_text_atomic
from mantra_jax.io.json_safe import json_safe


@dataclasses.dataclass
class LoopRecord:
    """What a resumed run needs of the loop's past (JSON-able; timers excluded).

    first_train_loss: the first step's train loss (None before the first log). last_train_loss: the mean
    train loss of the latest log interval (None before the first log: then not written). last_val: the
    latest validation metrics (with ``lr_scale``), or None. extra: keys of a record this version does not
    know, kept as they were."""

    first_train_loss: float | None = None
    last_val: dict[str, Any] | None = None
    last_train_loss: float | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    KNOWN = ("first_train_loss", "last_val", "last_train_loss")

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's ``loop`` item: ``last_train_loss`` only once a log interval has set it."""
        out = {"first_train_loss": self.first_train_loss, "last_val": self.last_val}
        if self.last_train_loss is not None:
            out["last_train_loss"] = self.last_train_loss
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> "LoopRecord":
        return cls(first_train_loss=record.get("first_train_loss"), last_val=record.get("last_val"),
                   last_train_loss=record.get("last_train_loss"),
                   extra={k: v for k, v in record.items() if k not in cls.KNOWN})


@dataclasses.dataclass
class Timing:
    """Seconds the loop spent, by kind: compiling (train step via the preflight, eval step), evaluating,
    writing metrics, checkpointing; input_wait_s is the feeder's (set at the end)."""

    compile_s: float = 0.0
    eval_s: float = 0.0
    write_s: float = 0.0
    checkpoint_s: float = 0.0
    input_wait_s: float = 0.0

    def report(self, *, total_s: float, steps_s: float, steps_run: int, samples: int) -> dict[str, Any]:
        """The summary's ``timing``: these accounts, the run's wall time (``total_s``: all of it; ``steps_s``:
        from the first step), and throughput over the time not spent evaluating, writing or checkpointing."""
        train_s = max(steps_s - self.eval_s - self.write_s - self.checkpoint_s, 1e-9)
        return {**dataclasses.asdict(self), "total_s": total_s, "steps_s": steps_s, "steps_run": steps_run,
                "samples": samples, "samples_per_s": samples / train_s if steps_run else None,
                "input_wait_share": self.input_wait_s / max(steps_s, 1e-9),
                "eval_and_write_share": (self.eval_s + self.write_s) / max(total_s, 1e-9)}


@dataclasses.dataclass
class RunSummary:
    """A run's summary (``summary.json``): workdir, steps (the last step), the first and last train losses,
    val (the latest validation metrics), lr_scale (the plateau's), best_step (of the best checkpoint),
    stopped ("done" or "budget"), timing (``Timing.report``), memory (the preflight's plan, None when no
    step ran) and data_state (the input iterator's state, None when not resumable or no step ran)."""

    workdir: str
    steps: int
    first_train_loss: float | None
    last_train_loss: float | None
    val: dict[str, Any] | None
    lr_scale: float
    best_step: int | None
    stopped: str
    timing: dict[str, Any]
    memory: dict[str, Any] | None
    data_state: Any

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (the values themselves, not copies)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def save(self, path: pathlib.Path) -> None:
        write_text_atomic(path, json.dumps(json_safe(self.to_dict()), indent=1, sort_keys=True) + "\n")
