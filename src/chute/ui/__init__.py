"""The dashboard (`chute ui`): FastAPI + Jinja2 + htmx, server-rendered.

    app.py       routes and actions       queries.py  read-only SQL for the pages
    security.py  token, CSRF, headers     svg.py      charts and the pipeline graph
    filters.py   template filters

May import: watch, run and below.
"""
