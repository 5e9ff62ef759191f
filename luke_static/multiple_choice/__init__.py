"""Multiple choice with LUKE (`LukeForMultipleChoice`): a prompt and its choices → the most likely choice."""
