"""`chute ui`: serve the dashboard (src/chute/ui) for one project."""

from __future__ import annotations

import os
from pathlib import Path

import click

from chute.cli._common import db_option, out, project_option
from chute.errors import ConfigError

TOKEN_ENV = "CHUTE_UI_TOKEN"


@click.command()
@project_option
@db_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but a loopback address needs a token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--token", envvar=TOKEN_ENV, metavar="TOKEN", show_envvar=True,
              help="Require this token on every request (open the URL once with ?token=TOKEN; a cookie keeps it).")
@click.option("--grafana-dashboard", "grafana_path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              metavar="FILE", help="Write a Grafana dashboard (JSON) over the ledger's PostgreSQL tables and "
              "chute watch's Prometheus metrics to FILE ('-': standard output), then exit. See docs/dashboard.md.")
def ui(project_dir: Path, db_url: str | None, host: str, port: int, token: str | None,
       grafana_path: Path | None) -> None:
    """Serve the dashboard: runs, files, quarantine, the pipeline graph and the tables.

    \b
    chute ui -p mystocks                   http://127.0.0.1:8765
    CHUTE_UI_TOKEN=$(openssl rand -hex 16) chute ui -p mystocks --host 0.0.0.0
    chute ui --grafana-dashboard chute-grafana.json   (import it in Grafana; serves nothing)
    """
    if grafana_path is not None:
        _write_grafana(grafana_path)
        return
    import uvicorn

    from chute.config.project import load_project
    from chute.db.resolve import resolve_database
    from chute.ui.app import create_app
    from chute.ui.security import is_loopback

    token = token or None
    if not is_loopback(host) and not token:
        raise ConfigError(f"binding to {host} exposes the dashboard beyond this machine: give a token with "
                          f"--token or ${TOKEN_ENV} (for example: python3 -c 'import secrets; "
                          "print(secrets.token_urlsafe(24))')")
    if token is not None and len(token) < 16:
        raise ConfigError("the dashboard token must be at least 16 characters")
    project = load_project(project_dir)
    _check_port_free(host, port)
    app = create_app(project, resolve_database(project, db_url, project_dir), token=token)
    shown = f"[{host}]" if ":" in host else host
    out.print(f"chute dashboard for [bold]{project.name}[/] on http://{shown}:{port}/"
              + (" (open it once with ?token=<your token>)" if token else ""), highlight=False)
    uvicorn.run(app, host=host, port=port, log_level=os.environ.get("CHUTE_UI_LOG_LEVEL", "warning"),
                server_header=False)


def _write_grafana(path: Path) -> None:
    """The dashboard is the same for every project (a variable picks the pipelines): no project or
    database is read."""
    from chute.ui import grafana

    text = grafana.dumps()
    if str(path) == "-":
        click.echo(text, nl=False)
        return
    path.write_text(text, encoding="utf-8")
    out.print(f"wrote {path}: a Grafana dashboard ({len(grafana.build()['panels'])} panels); import it with "
              "Dashboards > New > Import (docs/dashboard.md, Grafana)", highlight=False)


def _check_port_free(host: str, port: int) -> None:
    """Refuse a port already taken, with a clear message and exit status 2 (uvicorn would exit 3)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                              "is another server (or another chute ui) using it? Choose another with --port") from None
