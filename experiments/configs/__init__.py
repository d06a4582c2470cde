"""ml_collections configs of the experiments (``get_config(preset)``; presets ``cpu`` and ``paper``) and
their shared blocks (``blocks``)."""
