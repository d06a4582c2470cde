"""mantra_jax.eval."""
