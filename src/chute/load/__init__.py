"""Rows -> tables, exactly once: one transaction holds a unit's rows and its ledger rows.

    unit.py          LoadUnit: COPY into staging, merge/append/replace into targets, the ledger
                     rows and rejects, commit
    commit_hooks.py  statements that ride in a load's transaction (chain messages, exports)
    export.py        [tables.NAME] export: the table written to CSV after a load

May import: quality, ledger, db and below.
"""
