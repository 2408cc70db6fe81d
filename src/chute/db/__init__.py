"""PostgreSQL plumbing, nothing about runs or the ledger.

    postgres.py  connect (psycopg), connect_loader (ADBC), DDL (ensure_table), existing columns,
                 password masking (redact)
    copy.py      Arrow -> binary COPY (pgpq) into temporary tables
    target.py    Target (a table as the loader sees it) and targets_of (a project's, in load order)
    embedded.py  the embedded cluster in PROJECT/.chute/pg (initdb, start, stop)
    kept.py      KeptConnections: connections and schema checks kept between runs (chute watch)
    resolve.py   resolve_database: --db, $CHUTE_DATABASE_URL, chute.toml, else the embedded cluster

May import: config, formats, pipeline, transforms and the loose modules.
"""
