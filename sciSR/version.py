"""The version of sciSR, in one place: the package metadata (``pyproject.toml``) reads it from here."""

__version__ = "0.2.0.dev0"
