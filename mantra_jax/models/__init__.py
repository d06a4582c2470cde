"""mantra_jax.models."""
