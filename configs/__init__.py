"""Training recipes (YAML), installed as the package ``sciSR.recipes``; see :mod:`sciSR.training.recipes`."""
