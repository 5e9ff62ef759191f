"""The training engine every job shares: config, executor loop, checkpoints, logging."""
