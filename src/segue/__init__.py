"""Segue: next-song and user-item recommendations, from raw playlists and ratings to a monitored API."""

__version__ = "0.1.0"
