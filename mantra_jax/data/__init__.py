"""mantra_jax.data."""
