"""workforce_kedro: the workforce reports' "other entities" headcount table, as a Kedro project."""

__version__ = "0.1"
