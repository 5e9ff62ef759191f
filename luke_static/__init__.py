"""LUKE (entity-aware transformer) as static programs.

Not built yet: the model, converters and the SQuAD / Open Entity jobs are
planned on top of the shared engine (`engine/`).
"""
