"""Text classification with LUKE or mLUKE: a text or a text pair → a label (`LukeForSequenceClassification`)."""
