"""SQuAD 1.1 with LUKE: data and windows (`data`), answers and the official metric (`answers`), the job."""
