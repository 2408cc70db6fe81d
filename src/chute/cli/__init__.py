"""The `chute` command: parse, call the API, render. One module per command group.

    main.py     the group, init, run, status, load, db; registers the others
    _common.py  exit codes, error handling, shared options, JSON output, run reports
    watch.py, quality.py, s3.py, ui.py, deploy.py, extract.py   the other groups
    console.py  rich consoles for stdout and stderr

May import anything; nothing imports it.
"""
