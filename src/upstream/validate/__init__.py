"""Stage 2, validate: the Great Expectations suite built from the contract's rules (suite.py),
offline Data Docs (datadocs.py) and the checks behind `upstream validate` (check.py)."""
