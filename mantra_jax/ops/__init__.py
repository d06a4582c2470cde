"""mantra_jax.ops."""
