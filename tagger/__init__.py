"""A sequence tagger (word embedding ⊕ ELMo → BiGRU → CRF) trained on the shared engine.

The fluid release's lexical-analysis (LAC) demo, rebuilt: `sh run.sh lac`.
"""
