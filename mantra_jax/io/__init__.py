"""mantra_jax.io."""
