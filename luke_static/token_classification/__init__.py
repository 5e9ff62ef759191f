"""Token classification with LUKE (`LukeForTokenClassification`): a tag per word, entities read from the tags."""
