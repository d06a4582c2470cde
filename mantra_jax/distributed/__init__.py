"""Several processes, one program: JAX's multi-controller runtime (``jax.distributed``) set up from the
environment (``runtime``) and a local launcher that starts N processes on one machine (``launch``)."""
