"""A PostgreSQL cluster that chute runs itself: a project's own (`PROJECT/.chute/pg`), or the
one default cluster of this user for `chute load` outside a project (`clusters_home()/default`).

Every cluster chute creates is recorded in `clusters_home()/registry/`, so `chute db list`
can show them all (folder, port, state, size) and `chute db prune` can remove those whose
project folder is gone.

It uses the PostgreSQL server binaries installed on the machine. initdb refuses to run as
root, so as root every server command runs as the `postgres` user and the cluster folder
belongs to it. The server listens on 127.0.0.1 only, with a password generated at init
and kept in a file only the owner can read.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from chute.errors import EmbeddedDatabaseError

USER = "chute"
DATABASE = "chute"


def clusters_home() -> Path:
    """Where chute keeps what is not inside a project: $CHUTE_CLUSTERS_DIR, else /var/lib/chute/clusters
    as root (the postgres user must reach it), else ~/.local/share/chute/clusters."""
    if env := os.environ.get("CHUTE_CLUSTERS_DIR"):
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/chute/clusters")
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "chute" / "clusters"


def default_cluster() -> "EmbeddedPostgres":
    """The cluster `chute load` (and `chute db`) use outside a project: one per user, wherever
    the command runs, so loads from different folders land in one database."""
    return EmbeddedPostgres(clusters_home() / "default")


def cluster_of(folder: Path, *, chosen: bool = False) -> "EmbeddedPostgres":
    """The embedded cluster for a command given `folder` (-p, default "."): the folder's own when it
    was `chosen` explicitly, holds a chute.toml or already has a cluster; else this user's default."""
    folder = Path(folder)
    if chosen or (folder / "chute.toml").is_file() or (folder / ".chute" / "pg").exists():
        return EmbeddedPostgres(folder / ".chute" / "pg")
    return default_cluster()


def registered() -> list["EmbeddedPostgres"]:
    """Every cluster chute created on this machine (for this user's clusters_home)."""
    import json

    found = []
    for entry in sorted((clusters_home() / "registry").glob("*.json")):
        try:
            noted = json.loads(entry.read_text())
            found.append(EmbeddedPostgres(Path(noted["link"]), home=Path(noted.get("home") or noted["link"])))
        except (OSError, ValueError, KeyError):
            continue
    return found


def find_bindir() -> Path:
    """The folder with initdb and pg_ctl: $CHUTE_PG_BIN, else the newest Debian-style install."""
    if env := os.environ.get("CHUTE_PG_BIN"):
        return Path(env)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    candidates += [str(Path(p).parent) for p in filter(None, [shutil.which("initdb")])]
    for folder in reversed(candidates):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    raise EmbeddedDatabaseError(
        "no PostgreSQL server binaries found (initdb, pg_ctl). Install them "
        "(`apt-get install postgresql`, or run `make demo`), set CHUTE_PG_BIN to their folder, "
        "or point chute at a database with --db / CHUTE_DATABASE_URL."
    )


def _postgres_can_enter(folder: Path) -> bool:
    """Whether the postgres user can reach `folder` (or, if it does not exist yet, its nearest
    existing parent): asked of the system, so ACLs and group bits count too."""
    while not folder.exists():
        folder = folder.parent
    return subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(folder)]).returncode == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedPostgres:
    def __init__(self, folder: Path, *, fast: bool = False, home: Path | None = None):
        self.link = Path(folder).absolute()  # .chute/pg: the cluster, or a link to where it lives
        self.fast = fast  # fsync off: for throwaway test clusters only
        self.home = home  # where the registry says the data lives (the link may be gone with its project)

    @property
    def folder(self) -> Path:
        if self.home is not None and not self.link.exists():
            return self.home
        return self.link.resolve()

    @property
    def data(self) -> Path:
        return self.folder / "data"

    # -- state kept beside the cluster --------------------------------------------------
    @property
    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def _read(self, name: str) -> str:
        return (self.folder / name).read_text().strip()

    @property
    def port(self) -> int:
        return int(self._read("port"))

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://{USER}:{self._read('password')}@127.0.0.1:{self.port}/{database}"

    # -- commands ------------------------------------------------------------------------
    def _as_owner(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [*self._as_owner(), str(find_bindir() / args[0]), *args[1:]]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if check and done.returncode != 0:
            raise EmbeddedDatabaseError(
                f"{args[0]} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}"
                f"\nserver log: {self.folder / 'server.log'}"
            )
        return done

    def running(self) -> bool:
        if not self.initialised:
            return False
        return self._run("pg_ctl", "status", "-D", str(self.data), check=False).returncode == 0

    @property
    def _entry(self) -> Path:
        import hashlib

        return clusters_home() / "registry" / (hashlib.sha256(str(self.link).encode()).hexdigest()[:16] + ".json")

    def register(self) -> None:
        """Note this cluster in the registry (once; clusters made before the registry get noted on start)."""
        import json

        if not self._entry.exists():
            self._entry.parent.mkdir(parents=True, exist_ok=True)
            self._entry.write_text(json.dumps({"link": str(self.link), "home": str(self.folder),
                                               "created": time.time()}) + "\n")

    def forget(self) -> None:
        self._entry.unlink(missing_ok=True)

    def size(self) -> int:
        """Bytes on disk (0 when it cannot be read)."""
        total = 0
        for path in self.folder.rglob("*") if self.folder.exists() else ():
            try:
                total += path.lstat().st_size
            except OSError:
                pass
        return total

    def init(self) -> None:
        if os.geteuid() == 0 and not self.link.exists() and not _postgres_can_enter(self.link.parent):
            self._relocate()
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        password = secrets.token_urlsafe(24)
        (self.folder / "password").write_text(password + "\n")
        os.chmod(self.folder / "password", 0o600)
        (self.folder / "port").write_text(f"{_free_port()}\n")
        with tempfile.NamedTemporaryFile("w", dir=self.folder, delete=False) as pw:
            pw.write(password + "\n")
        if os.geteuid() == 0:
            self._give_to_postgres()
        try:
            self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=scram-sha-256",
                      f"--pwfile={pw.name}", "-E", "UTF8", "--locale=C.UTF-8")
        finally:
            os.unlink(pw.name)
        self.register()

    def _relocate(self) -> None:
        """The postgres user cannot reach the project (say, under /root): keep the cluster in
        /var/lib/chute and leave a link in the project, so everything else finds it as usual."""
        import hashlib

        home = clusters_home()
        target = home / hashlib.sha256(str(self.link).encode()).hexdigest()[:16]
        home.mkdir(parents=True, exist_ok=True, mode=0o755)
        self.link.parent.mkdir(parents=True, exist_ok=True)
        target.mkdir(exist_ok=True)
        self.link.symlink_to(target, target_is_directory=True)

    def _give_to_postgres(self) -> None:
        owner = pwd.getpwnam("postgres")
        for path in [self.folder, *self.folder.rglob("*")]:
            os.chown(path, owner.pw_uid, owner.pw_gid)
        if not _postgres_can_enter(self.folder):  # the server must reach its folder through every parent
            raise EmbeddedDatabaseError(
                f"as root, chute runs PostgreSQL as the 'postgres' user, which cannot reach {self.folder}: "
                "make its parent folders traversable (chmod o+x) or use --db / CHUTE_DATABASE_URL"
            )

    def start(self) -> str:
        """Initialise if needed, start if stopped; return the URL. Safe to call repeatedly."""
        if not self.initialised:
            self.init()
        if not self.running():
            port = self.port
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                port = _free_port()  # someone else took our port since last time
                (self.folder / "port").write_text(f"{port}\n")
            except OSError:
                pass
            options = [f"-p {port}", "-c listen_addresses=127.0.0.1", "-c unix_socket_directories=''",
                       "-c max_wal_size=4GB", "-c shared_buffers=256MB",
                       # A local cluster has no replicas: COPY into a table created or truncated
                       # in the same transaction then skips the WAL (crash safety is unchanged).
                       "-c wal_level=minimal", "-c max_wal_senders=0"]
            if self.fast:
                options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
            log = self.folder / "server.log"
            self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(log),
                      "-o", " ".join(options))
            self._ensure_database()
            self.register()
        return self.url()

    def _ensure_database(self) -> None:
        import psycopg
        from psycopg import sql

        for attempt in range(50):
            try:
                with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=5) as conn:
                    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
                        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
                    # The role and the ledger's schema are both named chute: with the default
                    # search_path ("$user", public) a user's unqualified CREATE TABLE in psql
                    # would land in the ledger's schema, where `chute load --into NAME` (public)
                    # and its readers do not look.
                    conn.execute(sql.SQL("ALTER ROLE {} SET search_path = public").format(sql.Identifier(USER)))
                    return
            except psycopg.OperationalError:
                if attempt == 49:
                    raise
                time.sleep(0.1)

    def stop(self) -> bool:
        if not self.running():
            return False
        self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data))
        return True

    def status(self) -> dict[str, object]:
        info: dict[str, object] = {"folder": str(self.folder), "initialised": self.initialised,
                                   "running": self.running()}
        if self.initialised:
            info["port"] = self.port
        return info

    def orphans(self) -> list[int]:
        """PIDs of a postmaster still serving this cluster's data folder (running, but its folder
        or its link was deleted: only /proc still knows it)."""
        data = str(self.folder / "data")
        pids = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                args = cmdline.read_bytes().split(b"\0")
            except OSError:
                continue
            if args and args[0].endswith(b"postgres") and b"-D" in args:
                at = args.index(b"-D")
                if at + 1 < len(args) and args[at + 1].decode(errors="replace").rstrip("/") == data:
                    pids.append(int(cmdline.parent.name))
        return pids

    def describe(self) -> dict[str, object]:
        """For `chute db list`: which project (or the default), where, port, state, size, and
        whether the project folder still exists."""
        default = self.link == default_cluster().link
        project = None if default else self.link.parent.parent
        return {"project": str(project) if project else "(default: chute load outside a project)",
                "data": str(self.folder), "port": self.port if self.initialised else None,
                "state": "running" if self.running() or self.orphans() else ("stopped" if self.initialised else "gone"),
                "bytes": self.size(), "project_exists": default or (project is not None and project.is_dir())}

    def remove(self) -> None:
        """Stop the cluster, delete its data (and the project's link to it), forget it."""
        if self.initialised:
            self.stop()
        for pid in self.orphans():  # its folder was deleted under it: pg_ctl cannot find it any more
            os.kill(pid, signal.SIGTERM)
        target = self.folder
        if self.link.is_symlink():
            self.link.unlink()
        shutil.rmtree(target, ignore_errors=True)
        self.forget()
