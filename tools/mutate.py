"""Mutation check: apply named code breaks, one at a time, to a temporary copy of the tracked files and run
the tests that should catch each (serially, ``-p no:xdist``); print a table: break, tests run, caught
(with the ids of the tests that failed, at most MAX_FAILED of them).

    python tools/mutate.py [NAME ...] [--slow] [--timeout S]

Shared-data tests need $MANTRA_SHARED (e.g. /work/shared). A break is caught when its tests exit non-zero (a collection error counts; "no tests ran", exit 5, does
not). Exit 1 when any break survives, 2 on bad usage (unknown name, a break whose old text is missing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# name -> (file, exact old text, new text, tests that must catch it)
BREAKS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "accumulation": ("mantra_jax/train/step.py",
                     "jax.tree.map(lambda g: g / k, grads)", "jax.tree.map(lambda g: g, grads)",
                     ("tests/train/test_step.py", "tests/train/test_preflight.py")),
    "halo": ("mantra_jax/infer/halo.py",
             "featex = radius(model.featex.layers())",
             "featex = radius(model.featex.layers()) - 1",
             ("tests/infer/test_halo.py",)),
    "halo-ladn": ("mantra_jax/infer/halo.py",  # pass 2's halo one pixel short
                  "ladn = max(r + k * (steps - t) for t, r in enumerate(reach)) + p",
                  "ladn = max(r + k * (steps - t) for t, r in enumerate(reach)) + p - 1",
                  ("tests/infer/test_halo.py",)),
    "flops-shortcuts": ("mantra_jax/train/flops.py",  # residual units' projection shortcuts not counted
                        '("trunk", "shortcut", "transform")', '("trunk", "transform")',
                        ("tests/train/test_flops.py",)),
    "flops-steps": ("mantra_jax/models/structure.py",  # the ConvLSTM's convolutions counted once, not per step
                    "self.in_ch * self.out_ch * self.steps", "self.in_ch * self.out_ch",
                    ("tests/train/test_flops.py",)),
    "structure-shortcut": ("mantra_jax/models/structure.py",  # the walk drops the projection shortcuts
                           "                if c != b:\n", "                if False:\n",
                           ("tests/models/test_structure.py",)),
    "structure-first": ("mantra_jax/models/structure.py",  # the first layer taken to be the release's 5x5
                        'Layer(FirstLayer.SCOPE, first_layer_kernel(cfg.first_layer), 3, c, "first")',
                        'Layer(FirstLayer.SCOPE, 5, 3, c, "first")',
                        ("tests/models/test_structure.py", "tests/train/test_flops.py")),
    "scope-ladn": ("mantra_jax/models/ladn.py",  # the LADN's scope constant no longer its tree name
                   'SCOPE: ClassVar[str] = "LADN"', 'SCOPE: ClassVar[str] = "Ladn"',
                   ("tests/models/test_mantranet.py",)),
    "constraints-walk": ("mantra_jax/models/constraints.py",  # the walk stops at the top module
                         "        table.update(under(scope, module_table(child)))\n", "        pass\n",
                         ("tests/models/test_constraints.py", "tests/train/test_projections.py")),
    "step-reach": ("mantra_jax/ops/anomaly.py",  # time_z's per-step reach one pixel short
                   "return tuple(int(n) // 2 for n in windows) + (0,)",
                   "return tuple(int(n) // 2 - 1 for n in windows) + (0,)",
                   ("tests/infer/test_halo.py", "tests/ops/test_anomaly.py")),
    "h5-names": ("mantra_jax/io/keras_h5.py",  # the LADN's file names lose their group level
                 'yield f"{group}/{group}/{var}", value', 'yield f"{group}/{var}", value',
                 ("tests/io/test_keras_h5.py",)),
    "digest": ("mantra_jax/manipulations/morphology.py",
               "return cv2.dilate(image, disc(size), anchor=anchor)",
               "return cv2.dilate(image, disc(size), anchor=anchor)[::-1]",
               ("tests/manipulations/test_digests.py",)),
    "digest-palette": ("mantra_jax/manipulations/quantization.py",  # C150 .. C225 all quantise to 150 colours
                       "pil.quantize(int(colours),", "pil.quantize(min(int(colours), 150),",
                       ("tests/manipulations/test_digests.py",)),
    "compile-cache": ("mantra_jax/compile_cache.py",  # a filled cache folder is not read: every process recompiles
                      'jax.config.update("jax_compilation_cache_dir", str(path))',
                      'jax.config.update("jax_compilation_cache_dir", None if any(path.iterdir()) else str(path))',
                      ("tests/test_compile_cache.py",)),
    "process-start": ("mantra_jax/cli/common.py",  # the start measured from the report's snapshot, not the process's
                      "return max(float(f.read().split()[0]) - started, 0.0)",
                      "return time.monotonic() - _IMPORTED",
                      ("tests/cli/test_memory_and_compile.py",)),
    "sharding": ("mantra_jax/train/sharding.py",
                 "return NamedSharding(mesh, PartitionSpec(DATA_AXIS))",
                 "return NamedSharding(mesh, PartitionSpec())",
                 ("tests/train/test_sharding.py",)),
    "sharding-pairing": ("mantra_jax/train/sharding.py",  # images and labels mispaired across devices
                         "        value = np.asarray(value)\n",
                         "        value = np.asarray(value)\n        if key == 'image' and mesh.devices.size > 1:\n"
                         "            value = np.roll(value, 1, axis=0)\n",
                         ("tests/train/test_sharding.py",)),  # its 8-device test is --slow
    "sharding-f64": ("mantra_jax/models/featex.py",  # the float64 reference's first layer back to float32
                     "jnp.promote_types(self.compute.dtype, jnp.float32),\n", "jnp.float32,\n",
                     ("tests/models/test_backbones.py",)),
    "parity": ("mantra_jax/models/ladn.py",  # 0.1% on the logits: caught by the quick 23x37 test
               'out["pred"] = jax.nn.sigmoid(logits)', 'out["pred"] = jax.nn.sigmoid(logits * 1.001)',
               ("tests/io/test_keras_h5.py",)),
    "constraints": ("mantra_jax/train/projections.py",
                    "return matched[name](p + u) - p", "return u",
                    ("tests/train/test_projections.py", "tests/train/test_step.py")),
    "torch_map": ("mantra_jax/io/torch_pt.py",  # the port's ConvLSTM input / recurrent halves swapped
                  "return hwio[:, :, :-f], hwio[:, :, -f:]", "return hwio[:, :, f:], hwio[:, :, :f]",
                  ("tests/io/test_torch_pt.py",)),
    "weights-digest": ("mantra_jax/io/msgpack_weights.py",  # a byte past each variable's first 16 goes unseen
                       "h.update(a.tobytes())", "h.update(a.tobytes()[:16])", ("tests/io/test_msgpack_weights.py",)),
    "weights-digest-layout": ("mantra_jax/io/msgpack_weights.py",  # not the documented layout: old files unread
                              "for k in sorted(tree, key=str):", "for k in sorted(tree, key=str, reverse=True):",
                              ("tests/io/test_msgpack_weights.py",)),
    "auc-ties": ("mantra_jax/train/pixel_metrics.py",  # same-bin (tied) pairs counted as wins, not halves
                 "np.sum(pos * (below + 0.5 * neg))", "np.sum(pos * (below + neg))",
                 ("tests/train/test_pixel_metrics.py",)),
    "robustness-clean": ("mantra_jax/eval/robustness.py",  # the "clean" row scores other images than eval's
                         'record("none", "", None, None)',
                         'record("none", "", None, lambda image, mask, k: (image[::-1].copy(), mask))',
                         ("tests/cli/test_eval_benchmark.py",)),
    "per_image_tiling": ("mantra_jax/infer/tiled.py",  # tiles normalised by their own moments
                         "    if _per_image(model):\n        return model.apply(variables, x, method=ManTraNet.outlier",
                         "    if False:\n        return model.apply(variables, x, method=ManTraNet.outlier",
                         ("tests/infer/test_tiled.py",)),
    "resume": ("mantra_jax/train/loop.py",
               "if self.ckpt is not None and self.ckpt.latest_step() is not None:",
               "if False and self.ckpt is not None:",
               ("tests/train/test_loop_io.py", "tests/train/test_loop.py")),  # test_loop.py is --slow
    "loop-action-order": ("mantra_jax/train/loop_actions.py",  # a checkpoint before its step's evaluation
                          "ACTIONS = (CHECK_FINITE, LOG, EVALUATE, CHECKPOINT,",
                          "ACTIONS = (CHECK_FINITE, LOG, CHECKPOINT, EVALUATE,", ("tests/train/test_loop_actions.py",)),
    "loop-runs-actions-out-of-order": ("mantra_jax/train/loop.py",  # the loop ignores the actions' order
                                       "for action in self.actions:", "for action in reversed(self.actions):",
                                       ("tests/train/test_loop_actions.py",)),
    "evaluate-variables-stats": ("mantra_jax/train/loop_actions.py",  # scoring drops the moving statistics
                                 "create_train_state(dict(variables), optax.identity())",
                                 "create_train_state({**variables, \"batch_stats\": jax.tree.map(lambda a: 0 * a, "
                                 "variables[\"batch_stats\"])}, optax.identity())",
                                 ("tests/train/test_loop_actions.py",)),
    "study-column-level": ("experiments/studies.py",  # a column trained at the default level, not its own
                           "hierarchy_level=column.level,", "hierarchy_level=None,",
                           ("tests/experiments/test_studies.py",)),
    "loop-record-keys": ("mantra_jax/train/loop_record.py",  # a checkpoint's loop item gains a key
                         "if self.last_train_loss is not None:", "if True:", ("tests/train/test_loop_record.py",)),
    "loop-config-drops-field": ("mantra_jax/train/loop.py",  # from_config leaves keep at its default
                                'for f in dataclasses.fields(cls) if f.name != "progress"}',
                                'for f in dataclasses.fields(cls) if f.name not in ("progress", "keep")}',
                                ("tests/train/test_loop_config.py",)),
    "report_escape": ("mantra_jax/report/page.py",  # file names shown raw in the report
                      "return html.escape(printable(value), quote=True)", "return printable(value)",
                      ("tests/report/test_report.py",)),
    "report_sort": ("mantra_jax/report/page.py",  # the script sorts one way only
                    "s=dir==='asc'?1:-1", "s=1", ("tests/report/test_report_browser.py",)),
    "report_overwrite": ("mantra_jax/cli/report.py",  # mantra report replaces a user's report.html
                         "        out.check_free(files_in_use(folder))\n", "",
                         ("tests/report/test_report.py",)),
    "report_bins": ("mantra_jax/eval/saved_maps.py",  # pooled curves from wrongly binned scores
                    "np.floor(p * HIST_BINS)", "np.round(p * HIST_BINS)", ("tests/report/test_saved_maps.py",)),
    "memory_pass1": ("mantra_jax/infer/memory.py",  # the feature-extractor pass, the larger one, not counted
                     "network = max(cost.pass1 * largest(featex_halo), cost.pass2 * largest(ladn_halo))",
                     "network = cost.pass2 * largest(ladn_halo)",
                     ("tests/infer/test_memory.py",)),
    "memory_whole": ("mantra_jax/infer/memory.py",  # whole-image inference whatever the budget
                     "if whole <= allowed:", "if True:",
                     ("tests/infer/test_memory.py", "tests/cli/test_memory_and_compile.py")),  # the latter --slow
    "process-part": ("mantra_jax/data/pipeline.py",  # every process would read the first part of a batch
                     "self.offset = index * self.local", "self.offset = 0",
                     ("tests/data/test_pipeline.py",)),
    "process-part-training": ("mantra_jax/data/pipeline.py",  # the same, seen in the 2-process parameters
                              "self.offset = index * self.local", "self.offset = 0",
                              ("tests/distributed/test_training.py::"
                               "test_two_processes_of_four_devices_train_like_one_process_of_eight",)),  # --slow
    "launch-signal-death": ("mantra_jax/distributed/launch.py",  # a child killed by a signal goes unnoticed
                            "failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]",
                            "failed = [(i, c) for i, c in enumerate(codes) if c is not None and c > 0]",
                            ("tests/distributed/test_launch.py",)),
    "coordinator-probe": ("mantra_jax/distributed/runtime.py",  # JAX's client then aborts the process
                          "if coordinator_address and process_id not in (None, 0):", "if False:",
                          ("tests/distributed/test_runtime.py",)),
    "detect-merge": ("mantra_jax/cli/detect.py",  # process 0 summarises only its own images
                     "    for i in range(1, count):\n", "    for i in range(1, 1):\n",
                     ("tests/distributed/test_detect.py",)),
    "detect-split": ("mantra_jax/cli/detect.py",  # every process does every image
                     "mine = list(zip(paths, stems))[index::count]", "mine = list(zip(paths, stems))",
                     ("tests/distributed/test_detect.py",)),
    "sprint-resume-moments": ("experiments/sprint.py",  # a resumed window starts Adam's moments afresh
                              "init_opt_state=hr_opt)", "init_opt_state=None)",
                              ("tests/experiments/test_sprint.py",)),  # --slow
    "sprint-export-weights": ("experiments/sprint.py",  # the export holds the weights from before HR
                              'whole = jax.device_get({"params": state.params, "batch_stats": state.batch_stats})',
                              'whole = jax.device_get(hr["init_variables"])',
                              ("tests/experiments/test_sprint.py",)),  # --slow
    "sprint-preset-share": ("experiments/configs/sprint.py",  # the IMC phase's share of the time changes
                            "c.imc_share = 0.35", "c.imc_share = 0.4", ("tests/experiments/configs/test_sprint.py",)),
    "sprint-budget-flag": ("experiments/sprint.py",  # --budget_s 0 is accepted (and a sprint of 1 s a phase runs)
                           "lambda v: v is None or v > 0", "lambda v: True", ("tests/experiments/test_sprint.py",)),
    "data-state-topology": ("mantra_jax/train/checkpoints.py",  # a 2-process state resumed as another's
                            "if any(s != states[0] for s in states[1:]):", "if False:",
                            ("tests/distributed/test_checkpoint_topology.py",)),
    "resolve-thresholds": ("mantra_jax/models/compute.py",  # F(4x4) Winograd from 64 channels on the CPU
                           "WINOGRAD4_MIN_CHANNELS = 256", "WINOGRAD4_MIN_CHANNELS = 64",
                           ("tests/models/test_compute.py",)),
    "resolve-off-cpu": ("mantra_jax/models/compute.py",  # a GPU's model gets the CPU's speed-ups
                        'cpu = platform == "cpu"', "cpu = True",
                        ("tests/models/test_compute.py", "tests/train/test_lowering.py")),  # the latter --slow
    "resolve-module": ("mantra_jax/models/featex.py",  # the trunk ignores its resolved algorithm
                       "algorithm=rule.algorithm(kernel.shape))", 'algorithm="direct")',
                       ("tests/models/test_compute.py",)),
    "infer-resolve": ("mantra_jax/infer/whole.py",  # whole-image inference runs the policy as it was given
                      "    model = for_platform(model, jax.default_backend())  # its", "    model = model  # its",
                      ("tests/infer/test_whole.py",)),
    "tiled-resolve": ("mantra_jax/infer/tiled.py",  # the same for tiled inference's first pass
                      "    model = for_platform(model, jax.default_backend())  # its", "    model = model  # its",
                      ("tests/infer/test_tiled.py",)),
    "op-auto": ("mantra_jax/ops/conv.py",  # the op takes "auto" (and fails later, unclearly)
                "    if algorithm not in ALGORITHMS:\n", '    if algorithm not in ALGORITHMS + ("auto",):\n',
                ("tests/ops/test_conv.py",)),
    "script-stray-args": ("experiments/script_main.py",  # a stray positional argument is ignored
                          "    if len(rest) > 1:\n", "    if False:\n",
                          ("tests/experiments/test_script_main.py",)),
    "bench-memory-child-flags": ("experiments/bench_memory.py",  # children measure the default weights
                                 'f"--checkpoint={_CHECKPOINT.value}", ', "",
                                 ("tests/experiments/test_bench_memory.py",)),
}


MAX_FAILED = 5


def _copy_tracked(dest: Path) -> None:
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True,
                           text=True).stdout.split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def failed_tests(pytest_output: str) -> list[str]:
    """The ids of the tests pytest's short summary (``-rf``) lists as failed, parameters kept."""
    return [line.split(" ", 1)[1].split(" - ", 1)[0] for line in pytest_output.splitlines()
            if line.startswith("FAILED ")]


def run_break(name: str, slow: bool, timeout: float) -> tuple[str, str]:
    """Applies break ``name`` in a fresh copy, runs its tests; returns (tests, caught): ``yes (the failed
    tests)``, ``no`` or ``timeout``. At most MAX_FAILED failures are collected, to bound the time."""
    rel, old, new, tests = BREAKS[name]
    with tempfile.TemporaryDirectory(prefix=f"mutate-{name}-") as tmp:
        root = Path(tmp)
        _copy_tracked(root)
        text = (root / rel).read_text()
        if text.count(old) != 1:
            raise SystemExit(f"mutate: break {name!r}: old text found {text.count(old)} times in {rel}")
        (root / rel).write_text(text.replace(old, new))
        env = {**os.environ, "PYTHONPATH": str(root), "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
        cmd = [sys.executable, "-m", "pytest", "-q", "-rf", f"--maxfail={MAX_FAILED}", "-p", "no:xdist",
               "-p", "no:cacheprovider",
               *(["--slow"] if slow else []), *tests]
        try:
            done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return " ".join(tests), "timeout"
    if done.returncode in (0, 5):
        return " ".join(tests), "no"
    failed = failed_tests(done.stdout)
    return " ".join(tests), f"yes ({', '.join(failed) or 'error: ' + done.stdout.strip().splitlines()[-1]})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"breaks to run (default all: {', '.join(BREAKS)})")
    parser.add_argument("--slow", action="store_true", help="include slow-marked tests")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per break (default 600)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BREAKS]
    if unknown:
        print(f"mutate: unknown break(s) {unknown}; known: {', '.join(BREAKS)}", file=sys.stderr)
        return 2
    rows = []
    for name in args.names or list(BREAKS):
        tests, caught = run_break(name, args.slow, args.timeout)
        rows.append((name, tests, caught))
        print(f"| {name} | {tests} | {caught} |", flush=True)
    return 0 if all(c.startswith("yes") for _, _, c in rows) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit as e:
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
            sys.exit(2)
        raise
