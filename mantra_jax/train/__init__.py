"""mantra_jax.train."""
