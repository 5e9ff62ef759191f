"""Shared test helpers: toy data writers, numpy references and tiny model builders."""
