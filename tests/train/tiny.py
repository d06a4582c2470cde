"""Tiny synthetic training runs shared by the tests (and run as a script by the resume-with-kill test).

Classes are separable by construction: class c images are noise plus a colour offset depending on c, so a
few steps of the tiny IMC classifier lower the loss. Data are in-memory grain datasets (real grain
iterators with get_state/set_state), independent of mantra_jax.data.

    python tests/train/tiny.py --workdir DIR --steps 6 [--hold_after 2] [--kill_in_save 4] [--task loc]

``--kill_in_save N`` SIGKILLs the process from inside the save of checkpoint N (while Orbax writes its JSON
items into the step's temporary directory). ``--task loc`` trains the tiny ManTraNet on synthetic masks
(a bright square is the forged region) with the localisation task instead of the IMC classifier.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

import numpy as np

NUM_CLASSES = 4
SIZE = 16
BATCH = 4
# These runs test the loop (resume, checkpoints, sharding), not the CPU convolution speed-ups that
# ``conv_algorithm="auto"`` / ``kernel_grad="auto"`` pick on CPU (Winograd, per-tap kernel gradients; their
# numerics are tests/ops'): XLA's direct convolutions and kernel gradients trace and compile the train step
# in about half the CPU time (39 -> 22 s for a tiny IMC run here), the bulk of every run's cost.
FAST_COMPILE = {"kernel_grad": "xla", "conv_algorithm": "direct"}  # fields of the model's ``Compute``


def fast_compile(model):
    """``model`` with its compute policy's convolution choices set to ``FAST_COMPILE`` (dtype kept)."""
    from mantra_jax.models.compute import with_choices

    return with_choices(model, **FAST_COMPILE)


@contextlib.contextmanager
def fast_compile_models():
    """For the block, every model is resolved (``mantra_jax.models.compute.Compute.resolve``, the one place:
    training steps, inference) with the choices ``FAST_COMPILE``: for the tests of runners (experiments,
    sprint) that build their models from a config."""
    import dataclasses

    import pytest

    from mantra_jax.models.compute import Compute

    resolve = Compute.resolve
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Compute, "resolve", lambda self, platform: resolve(dataclasses.replace(self, **FAST_COMPILE),
                                                                         platform))
        yield


def imc_model(**kwargs):
    """The tiny IMC classifier over NUM_CLASSES classes, with XLA's own convolutions (``FAST_COMPILE``)."""
    from mantra_jax.models.variants import make_imc_classifier

    return fast_compile(make_imc_classifier("tiny", num_classes=NUM_CLASSES, **kwargs))


LOC_WINDOWS = (7,)  # one ConvLSTM step instead of three: a third of the LADN's program, same loop
LOC_CONFIG = {"kind": "mantranet", "variant": "tiny", "windows": list(LOC_WINDOWS)}


def loc_model():
    """The tiny ManTraNet with one window (``LOC_WINDOWS``) and XLA's own convolutions (``FAST_COMPILE``)."""
    from mantra_jax.models.variants import make_mantranet

    return fast_compile(make_mantranet("tiny", windows=LOC_WINDOWS))


def levels() -> dict[str, np.ndarray]:
    """A 2-level hierarchy over 4 classes: {0, 1} and {2, 3}, then the leaves."""
    coarse = np.zeros((NUM_CLASSES, 2), np.float32)
    coarse[[0, 1], 0] = 1
    coarse[[2, 3], 1] = 1
    return {"HL0": coarse, "HL1": np.eye(NUM_CLASSES, dtype=np.float32)}


def imc_records(n: int, seed: int, size: int = SIZE) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    colours = np.array([[0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [-0.5, -0.5, -0.5]], np.float32)
    out = []
    for i in range(n):
        label = i % NUM_CLASSES
        image = rng.uniform(-0.4, 0.4, (size, size, 3)).astype(np.float32) + colours[label]
        out.append({"image": np.clip(image, -1, 1), "label": np.int32(label)})
    return out


def loader(records, batch: int, seed: int, repeat: bool = True):
    import grain

    ds = grain.MapDataset.source(records)
    if repeat:
        ds = ds.shuffle(seed=seed).repeat(None)
    return ds.batch(batch, drop_remainder=True).to_iter_dataset()


def loc_records(n: int, seed: int, size: int = SIZE) -> list[dict[str, np.ndarray]]:
    """Noise images with a brightened square (the mask) at a random place."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        image = rng.uniform(-0.5, 0.3, (size, size, 3)).astype(np.float32)
        mask = np.zeros((size, size, 1), np.float32)
        y, x = rng.integers(0, size // 2, 2)
        mask[y:y + size // 2, x:x + size // 2] = 1
        out.append({"image": np.clip(image + 0.6 * mask, -1, 1), "mask": mask, "kind": np.int32(0)})
    return out


def kill_in_save(step: int) -> None:
    """SIGKILL this process when Orbax writes the JSON items of checkpoint ``step`` (mid-save)."""
    import os
    import signal

    import orbax.checkpoint as ocp

    handler = ocp.handlers.JsonCheckpointHandler
    for name in ("save", "async_save"):
        original = getattr(handler, name)

        def wrapped(self, directory, *args, _original=original, **kwargs):
            path = str(directory) + "/"
            if f"/checkpoints/{step}.orbax-checkpoint-tmp" in path or f"/checkpoints/{step}/" in path:
                print(f"KILLED IN SAVE {step}", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            return _original(self, directory, *args, **kwargs)

        setattr(handler, name, wrapped)


def run(workdir: str, steps: int, hold_after: int | None = None, steps_per_epoch: int = 2,
        checkpoint_every: int = 2, progress: bool = False, task: str = "imc") -> dict:
    from mantra_jax.train.loop import LoopConfig, train
    from mantra_jax.train.optimizer import adam
    from mantra_jax.train.tasks import imc_task, localisation_task

    if task == "loc":
        model = loc_model()
        config = LoopConfig(num_steps=steps, steps_per_epoch=steps_per_epoch,
                            checkpoint_every_steps=checkpoint_every, keep=2, patience=1, log_every_steps=1,
                            seed=0, progress=progress)
        return train(model=model, model_config=LOC_CONFIG, task=localisation_task(),
                     tx=adam(1e-3), train_data=loader(loc_records(16, 0), BATCH // 2, seed=1),
                     eval_data=loader(loc_records(4, 1), BATCH // 2, seed=0, repeat=False),
                     workdir=workdir, config=config)
    model = imc_model()
    config = LoopConfig(num_steps=steps, steps_per_epoch=steps_per_epoch, checkpoint_every_steps=checkpoint_every,
                        keep=2, patience=1, log_every_steps=1, seed=0, progress=progress)

    def on_checkpoint(step: int) -> None:
        print(f"CHECKPOINT {step}", flush=True)
        if hold_after is not None and step >= hold_after:
            time.sleep(600)  # wait to be killed

    return train(model=model, model_config={"kind": "imc", "variant": "tiny", "num_classes": NUM_CLASSES},
                 task=imc_task(levels(), NUM_CLASSES), tx=adam(1e-3),
                 train_data=loader(imc_records(32, 0), BATCH, seed=1),
                 eval_data=loader(imc_records(8, 1), BATCH, seed=0, repeat=False),
                 workdir=workdir, config=config, on_checkpoint=on_checkpoint)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--hold_after", type=int, default=None, help="sleep after this checkpoint (to be killed)")
    parser.add_argument("--kill_in_save", type=int, default=None, help="SIGKILL inside this checkpoint's save")
    parser.add_argument("--task", choices=("imc", "loc"), default="imc")
    args = parser.parse_args(argv)
    if args.kill_in_save is not None:
        kill_in_save(args.kill_in_save)
    run(args.workdir, args.steps, args.hold_after, task=args.task)


if __name__ == "__main__":
    main(sys.argv[1:])
