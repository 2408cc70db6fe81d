"""One run end to end: select files, read, load units, record, report.

    runner.py     Runner: list -> classify against the ledger -> claim -> read -> nodes -> load
    plan.py       build_plan (the user's module + declared steps), landing_zone
    after_run.py  the run log and notifications, never raising
    runlog.py     the run's JSON log file
    prefetch.py   parse the next block on a thread while this one loads
    replay.py     `chute replay`: quarantined records loaded again
    load_file.py  `chute load FILE --into TABLE`: one file, no project needed
    status.py     read-only overview of a project for `chute status` and the dashboard

May import: chain, notify, extract, load, quality, ledger, db and below.
"""
