"""The ledger: schema `chute` in the target database, and what a run reports.

    schema.py       ensure_schema: every chute.* table, created in one place
    files.py        chute.runs and chute.files: start/finish a run, LedgerRow (a file's row) and
                    record_outcome, what is known, loaded or latest, the run lock. Every query
                    over chute.files is here, but the dashboard's read-only views (ui/queries.py)
                    and the join that gives a load's rejects their file_id (quality/quarantine.py)
    summary.py      RunSummary and FileOutcome (shared by run, chain, watch, deploy, notify)
    workers.py      chute.workers: runners sharing a zone claim files; dead ones are reaped
    heartbeat.py    a thread renewing a lease
    deadletters.py  chute.dead_letters: files, events and messages given up on
    queue.py        chute.subscriptions and chute.queue: the chain between stages
    watermarks.py   chute.watermarks: where each extraction got to

May import: db and below. Not quality, load or run.
"""
