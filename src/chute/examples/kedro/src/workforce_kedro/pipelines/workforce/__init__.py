"""Cut, type and check the headcount-by-gender table of the other entities."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
