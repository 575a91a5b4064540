"""Builders and local receivers shared by the tests (importable as `support`)."""
