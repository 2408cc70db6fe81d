"""The dashboard (`chute ui`): FastAPI + Jinja2 + htmx, server-rendered.

    app.py       routes and actions       queries.py  read-only SQL for the pages
    security.py  token, CSRF, headers     svg.py      charts, the pipeline and lineage graphs
    filters.py   template filters         assets.py   target tables as assets: schema, freshness
    trends.py    runs in time buckets     triggers.py schedules, triggers, watermarks

May import: watch, run and below.
"""
