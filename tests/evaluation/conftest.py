"""Fixtures of the evaluation tests: tiny datasets on disk."""

from dataset_support import make_playlists, make_ratings, playlists_dir, ratings_dir  # noqa: F401
