"""`python -m bilm.cache_token_embeddings`: the command line `bilm.cli.cache_token_embeddings` (see its help)."""

from bilm.cli import cache_token_embeddings as main
from engine.cli import run

if __name__ == "__main__":
    run(main)
