"""PQL compiler (filled below)."""
