"""Start-up stays light: the CLI, config parsing and a run with nothing to load import no
pyarrow, numpy, pgpq, SQLAlchemy or httpx (together they were a third of a no-op run's time;
benchmarks/bench_noop.py measures it). The loading code imports them where it loads. rich
comes in only when something is shown to a person: `--json` output never needs it."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pyarrow", "numpy", "pgpq", "sqlalchemy", "httpx", "boto3", "fastapi", "rich")


def _imported_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint('imported:', *(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1].split()[1:]


def test_the_cli_and_the_config_models_import_nothing_heavy():
    assert _imported_after("import chute.cli.main, chute.run.runner, chute.watch.service, chute.config.project") == []


def test_a_run_with_nothing_new_imports_nothing_heavy(stocks, db_url, cli):
    cli("run", "-p", stocks, "--db", db_url)  # the first run loads (and may import anything)
    code = (f"from chute.cli.main import main\n"
            f"try:\n    main(['run', '-p', {str(stocks)!r}, '--db', {db_url!r}, '--json'])\n"
            f"except SystemExit as exc:\n    assert exc.code == 0, exc.code")
    assert _imported_after(code) == []


def test_the_cli_alone_imports_no_dataframes_database_driver_or_models():
    """`chute --version`, `--help` and a mistyped command answer in ~0.1 s: polars, psycopg and
    pydantic (~0.45 s together) come in with the command that needs them."""
    probe = ("import chute.cli.main, sys\n"
             "print('imported:', *(m for m in ('polars', 'psycopg', 'pydantic') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1:] == []
