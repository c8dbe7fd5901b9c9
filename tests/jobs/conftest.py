"""Fixtures of the job tests: tiny datasets on disk, a local store and its registry, packages."""

from dataset_support import (  # noqa: F401
    make_playlists,
    make_ratings,
    playlists_dir,
    ratings_dir,
    tracking_overrides,
)
from lifecycle_support import make_package, registry, settings  # noqa: F401
