"""`python -m tagger VERB [flags]`: the LAC tagger's commands (training is `sh run.sh lac`)."""

from engine.command import dispatch, quiet

quiet()

VERBS = {
    "predict": ("tagger.predict:main", "tag text with an exported tagger: one JSON record per line"),
}

if __name__ == "__main__":
    dispatch("tagger", VERBS)
