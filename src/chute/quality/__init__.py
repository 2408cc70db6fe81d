"""Data quality: contracts a table's rows must satisfy, and the quarantine of those that don't.

    from chute.quality import Contract, ColumnRules, Rule
"""

from chute.config.contracts import ColumnRules, Contract, Rule

__all__ = ["ColumnRules", "Contract", "Rule"]
