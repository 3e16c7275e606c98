"""Seeded generators of example data for the blueprint's use cases."""
