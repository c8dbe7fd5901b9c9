"""Reading raw files, song-string parsing, business rules, vocabularies, interactions and splits."""
