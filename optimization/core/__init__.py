"""Pure portfolio math: numpy, pandas and cvxpy in, arrays and frozen dataclasses out.

Nothing here imports Django, another app of this project, or a broker SDK; an
import-linter contract (pyproject.toml) keeps it so.
"""
