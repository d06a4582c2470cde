"""mantra_jax.train: training of the IMC classifier and of the whole ManTra-Net.

One concept per module (none is imported here, so ``import mantra_jax.train`` stays light):

| module         | what                                                                          |
|----------------|-------------------------------------------------------------------------------|
| state          | ``TrainState`` (params, batch_stats, opt_state, step, plateau), init          |
| plateau        | learning-rate halving after ``patience`` evaluations without improvement      |
| optimizer      | the paper's Adam; per-group learning rates (0 = frozen)                       |
| end_to_end     | the FR / HF / HR settings and loading a pretrained feature extractor          |
| projections    | the post-update projections as an optax transformation                        |
| losses         | IMC cross-entropy, pixel binary cross-entropy (from logits)                   |
| imc_metrics    | top-k accuracy at every hierarchy level                                        |
| pixel_metrics  | streaming pixel F1 per forgery kind and histogram AUC                          |
| tasks          | the IMC and localisation tasks: loss + validation sums + summary              |
| step           | pure train / eval steps (uint8 inputs converted on device, gradient accumulation) |
| feeder         | next batch read and copied to the device while the current step runs          |
| preflight      | compile the step once, fit it into device memory (micro-batches)              |
| flops          | analytic FLOP counts of the steps, accelerator bf16 peaks (MFU)               |
| sharding       | mesh, batch sharding, jitted steps, ``jax.distributed`` set-up                 |
| checkpoints    | Orbax checkpoints (periodic, best, data-iterator state), inference restore    |
| tensorboard    | TensorBoard event files without TensorFlow                                    |
| writers        | JSON lines + TensorBoard metrics, summary tables                              |
| loop           | the training loop (resume, evaluate, checkpoint, log)                         |
| loop_actions   | the loop's periodic actions after each step, in their order                   |
| loop_record    | the loop's checkpointed bookkeeping, timings and run summary (dataclasses)    |
| inputs         | the experiments' input streams on ``mantra_jax.data``                          |
| experiments    | the experiment runners behind ``experiments/{imc385,ladn,ablation_anomaly}.py`` |

The configs (``experiments/configs``) and the command line (``experiments/launch.py``) live in
``experiments/``.
"""
