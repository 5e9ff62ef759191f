"""Data for the jobs: vocabularies, shard files, batch streams in worker processes."""
