"""tensorflow-datasets builders whose prepared files every run and machine reads identically.

* ``imc385``: the fixed IMC-385 validation and test sets (``prepare_imc385``, ``imc385_source``).
* ``benchmarks``: the paper's forgery benchmarks from their published layouts.

Modules are imported explicitly (``from mantra_jax.datasets import imc385``): they import
tensorflow-datasets, which the rest of the package does not need.
"""
