"""Relation classification with LUKE (TACRED): data and the official scorer (`data`), the job."""
