"""mantra_jax.datasets."""
