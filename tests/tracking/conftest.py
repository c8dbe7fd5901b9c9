"""Fixtures of the tracking tests: tiny packages with chosen metrics, a local store, its registry."""

from lifecycle_support import make_package, registry, settings  # noqa: F401
