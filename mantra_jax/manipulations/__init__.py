"""mantra_jax.manipulations."""
