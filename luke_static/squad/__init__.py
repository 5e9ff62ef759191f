"""SQuAD 1.1 with LUKE: data, features with doc-stride windows, post-processing, the training job."""
