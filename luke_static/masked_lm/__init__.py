"""The masked language model (the pretrained LUKE checkpoints' head): filling words and entities."""
