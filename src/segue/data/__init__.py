"""Reading raw files, song-string parsing, business rules, vocabularies, interactions and splits.

Raw files in: ``input_formats`` (which reader), ``playlist_readers``, ``movielens_readers``,
``download``. Songs: ``song_text`` (text rules) < ``song_aliases`` (alias table, artist keys) <
``song_parser`` (whole strings). Ingestion: ``ingest`` (readers -> parser -> ``rules`` -> a
``dataset`` on disk, with ``rejects``). In memory: ``interactions`` and their ``splits``.
"""
