"""Open Entity typing with LUKE: data, the training job, micro P/R/F1."""
