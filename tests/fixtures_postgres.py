"""A pytest plugin giving tests a real, throwaway PostgreSQL server.

``postgres_url`` (session scope) runs ``initdb`` and ``pg_ctl start`` in a temporary directory,
listening on 127.0.0.1 at a free port with fsync off, and yields the SQLAlchemy URL of an empty
database ``glasspane_test``. At session end the server is stopped (``pg_ctl stop -m
immediate``, or a SIGKILL to the postmaster's PID if that fails) and the directory removed.

``postgres_db_url`` (function scope) gives each test a database of its own on that server, so
tests stay independent (:func:`create_database` makes more when a test needs several).

The binaries are looked up on ``PATH`` and then under ``/usr/lib/postgresql/*/bin`` (Debian's
layout, which is not on ``PATH``). When they are missing, tests using these fixtures skip.
As root, the server runs as the ``postgres`` user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SKIP_REASON = "PostgreSQL binaries not found; install Debian's postgresql package"
DATABASE = "glasspane_test"
SUPERUSER = "postgres"
START_TIMEOUT = 60


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or ``None`` when PostgreSQL is missing."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    debian = [Path(path) for path in glob.glob("/usr/lib/postgresql/*/bin")]
    # Newest major version first: /usr/lib/postgresql/<major>/bin.
    debian.sort(key=lambda bindir: int(bindir.parent.name) if bindir.parent.name.isdigit() else 0)
    candidates += reversed(debian)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; the Debian package creates the `postgres` user.
    if os.geteuid() == 0:
        return ["runuser", "-u", SUPERUSER, "--", *command]
    return command


def _run(command: list[str], log: Path) -> None:
    # Output goes to a file, never a pipe: the postmaster inherits the descriptors and would
    # keep a pipe open after pg_ctl exits.
    with log.open("ab") as out:
        subprocess.run(
            _as_server_user(command),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=START_TIMEOUT,
        )


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stop(bindir: Path, data: Path, log: Path) -> None:
    pid = _postmaster_pid(data)
    try:
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], log)
    except (subprocess.SubprocessError, OSError):
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _url(port: int, database: str) -> str:
    return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}/{database}"


def create_database(server_url: str, name: str | None = None) -> str:
    """Create an empty database on the server of ``server_url``; return its URL.

    Args:
        server_url: the URL of any database on the server (``postgres_url``).
        name: the new database's name; a unique ``gp_<hex>`` when omitted.
    """
    import psycopg
    from sqlalchemy import make_url

    name = name or f"gp_{uuid.uuid4().hex[:16]}"
    url = make_url(server_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(database_url: str) -> None:
    """Drop the database of ``database_url``, disconnecting any session still on it."""
    import psycopg
    from sqlalchemy import make_url

    url = make_url(database_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of database ``glasspane_test`` on a throwaway PostgreSQL server for the session."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(SKIP_REASON)
    root = Path(tempfile.mkdtemp(prefix="glasspane-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(SUPERUSER)
        except KeyError:
            shutil.rmtree(root)
            pytest.fail(f"running as root needs a `{SUPERUSER}` user to run PostgreSQL as")
        os.chown(root, owner.pw_uid, owner.pw_gid)
    log.touch()
    if os.geteuid() == 0:
        os.chown(log, owner.pw_uid, owner.pw_gid)
    started = False
    try:
        _run(
            [str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8"],
            log,
        )
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -c fsync=off "
            f"-c full_page_writes=off -c synchronous_commit=off "
            f"-c unix_socket_directories={root}"
        )
        _run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start"],
            log,
        )
        started = True
        url = create_database(_url(port, "postgres"), DATABASE)
    except (subprocess.SubprocessError, OSError) as exc:
        if started:
            _stop(bindir, data, log)
        tail = log.read_text(errors="replace")[-2000:]
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"starting PostgreSQL from {bindir} failed: {exc}\n{tail}")
    try:
        yield url
    finally:
        _stop(bindir, data, log)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_db_url(postgres_url: str) -> Iterator[str]:
    """The URL of a fresh, empty database on the session's PostgreSQL server, for one test."""
    url = create_database(postgres_url)
    yield url
    drop_database(url)
