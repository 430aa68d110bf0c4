"""A throwaway PostgreSQL cluster from the machine's own binaries (Debian's `postgresql` package): initdb in a temp
folder, TLS with a self-signed certificate (so `?sslmode=require` URLs, as Neon and Supabase hand out, are tried for
real), a free loopback port, stopped and removed after. PostgreSQL refuses to run as root, so under root (CI) the
server runs as the `postgres` user the package creates."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binaries() -> Path | None:
    """The newest installed server's bin folder (initdb, pg_ctl), or None."""
    found = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p, "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


class PostgresServer:
    def __init__(self) -> None:
        bin_dir = binaries()
        if bin_dir is None:
            raise FileNotFoundError("PostgreSQL server binaries not found (Debian: apt-get install postgresql)")
        self.bin = bin_dir
        self.port = _free_port()
        self.password = secrets.token_hex(12)
        self.root = Path(tempfile.mkdtemp(prefix="cascade-pg-"))
        self.data = self.root / "data"
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise FileNotFoundError("running as root, and no `postgres` user to run the server as") from None
            self._prefix = ["runuser", "-u", "postgres", "--"]
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._owner: tuple[int, int] | None = (user.pw_uid, user.pw_gid)
        else:
            self._owner = None

    def _file(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text)
        path.chmod(0o600)
        if self._owner:
            os.chown(path, *self._owner)
        return path

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self._prefix, *args], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({result.returncode}): {result.stderr[-2000:]}")

    def _certificate(self) -> list[str]:
        openssl = shutil.which("openssl")
        if openssl is None:
            return []
        key, crt = self.root / "server.key", self.root / "server.crt"
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
             "-keyout", str(key), "-out", str(crt)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        key.chmod(0o600)
        for path in (key, crt):
            if self._owner:
                os.chown(path, *self._owner)
        return ["-c", "ssl=on", "-c", f"ssl_cert_file={crt}", "-c", f"ssl_key_file={key}"]

    @property
    def tls(self) -> bool:
        return (self.root / "server.crt").exists()

    def start(self) -> PostgresServer:
        pwfile = self._file("pw", self.password + "\n")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "cascade", f"--pwfile={pwfile}",
            "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        options = [
            "-p", str(self.port), "-k", str(self.root), "-c", "listen_addresses=127.0.0.1",
            # A test cluster: durability is not what is under test, speed is welcome.
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            *self._certificate(),
        ]  # fmt: skip
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60",
            "-o", " ".join(options), "start",
        )  # fmt: skip
        return self

    def url(self, schema: str | None = None) -> str:
        query = ["sslmode=require"] if self.tls else []
        if schema is not None:
            query.append(f"options=-csearch_path%3D{schema}")
        return (
            f"postgresql://cascade:{self.password}@127.0.0.1:{self.port}/postgres" + "?" * bool(query) + "&".join(query)
        )

    def create_database(self) -> str:
        """The URL of a fresh, empty place for tables: a new schema, first on the URL's search_path (a new schema
        takes milliseconds where CREATE DATABASE takes a second or two)."""
        import psycopg

        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
