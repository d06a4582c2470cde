"""mantra_jax.infer."""
