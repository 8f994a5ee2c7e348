"""A throw-away PostgreSQL server with the dev stack's Cloud SQL connection limit, and the rendered
migration Job run against it.

It listens on its own port and socket (never the shared 127.0.0.1:5432 server), so tests using it
do not touch the shared `airflow` database. Its max_connections is the one the dev stack's tier gets
on Cloud SQL (components/config/connection_budget.py: db-g1-small -> 50), so "remaining connection slots are
reserved" shows up here exactly when it would in the cloud.

The one deviation for processes pointed at it: the rendered connection URL's port (5432, the proxy
sidecar) is swapped for this server's port.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from components.config.connection_budget import max_connections
from tests.conftest import stack_config

from .harness import SetupError
from .pod import LocalPod, find, free_port, secret_data

REFUSED_MARKERS = ("remaining connection slots are reserved", "too many clients already")


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise SetupError("PostgreSQL binaries not found: run `make test` (scripts/ensure-postgres.sh installs them)")
    return Path(found[-1]).parent


def dev_tier_max_connections() -> int:
    """max_connections of the dev stack's Cloud SQL instance, from Pulumi.dev.yaml's tier and flags."""
    config = stack_config("dev")
    limit = max_connections(config["airflow-gke:dbTier"], json.loads(config.get("airflow-gke:dbFlags") or "{}"))
    assert limit is not None, "the dev stack's tier must have a known connection limit"
    return limit


@dataclass
class PgServer:
    root: Path
    max_connections: int
    port: int = field(default_factory=free_port)

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def _as_postgres(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        # PostgreSQL refuses to run as root; ensure-postgres.sh creates the `postgres` user.
        if os.getuid() == 0:
            argv = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{a}'" for a in argv)]
        return subprocess.run(argv, capture_output=True, text=True, **kwargs)

    def start(self) -> "PgServer":
        binary = postgres_bin()
        shutil.rmtree(self.root, ignore_errors=True)
        self.socket_dir.mkdir(parents=True)
        if os.getuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.socket_dir, "postgres")
        data = self.root / "data"
        result = self._as_postgres([str(binary / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                                    "--auth-host=scram-sha-256", "-E", "UTF8"])
        if result.returncode != 0:
            raise SetupError(f"initdb failed: {result.stderr[-2000:]}")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.socket_dir} "
                   f"-c max_connections={self.max_connections} -c fsync=off -c log_line_prefix=%m")
        result = self._as_postgres([str(binary / "pg_ctl"), "-D", str(data), "-l", str(self.root / "server.log"),
                                    "-w", "-t", "60", "-o", options, "start"])
        if result.returncode != 0:
            raise SetupError(f"pg_ctl start failed: {result.stderr[-2000:]} {self.server_log()[-2000:]}")
        return self

    def stop(self) -> None:
        self._as_postgres([str(postgres_bin() / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate",
                           "-w", "stop"])
        shutil.rmtree(self.root, ignore_errors=True)

    def server_log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run([str(postgres_bin() / "psql"), "-h", str(self.socket_dir), "-p", str(self.port),
                                 "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise SetupError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def client_connections(self, user: str) -> int:
        return int(self.psql(f"select count(*) from pg_stat_activity where usename = '{user}'").strip())

    def url_for(self, rendered_url: str) -> str:
        """The rendered connection URL with this server's port instead of the proxy's."""
        parts = urlsplit(rendered_url)
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0] + f":{self.port}"))


@dataclass
class DevTier:
    """A migrated Airflow database on the dev-tier server, for the rendered objects given."""

    server: PgServer
    objects: list[dict]
    user: str

    @property
    def rendered_url(self) -> str:
        return secret_data(find(self.objects, "Secret", "airflow-secrets"))["sql-alchemy-conn"]

    def overrides(self, **extra: str) -> dict[str, str]:
        return {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.server.url_for(self.rendered_url),
                "AIRFLOW__LOGGING__REMOTE_LOGGING": "False", **extra}

    def create_database(self) -> None:
        url = urlsplit(self.rendered_url)
        name = url.path.lstrip("/")
        self.server.psql(f'drop database if exists "{name}" with (force)')
        self.server.psql(f"do $$ begin if not exists (select from pg_roles where rolname = '{url.username}') then "
                         f"create role \"{url.username}\" login; end if; end $$")
        self.server.psql(f"alter role \"{url.username}\" with login password '{url.password}'")
        self.server.psql(f'create database "{name}" owner "{url.username}"')

    def run_job(self, job: LocalPod, containers: tuple[str, ...] = ("db-migrate", "create-admin-user"),
                timeout: float = 600) -> list[subprocess.CompletedProcess]:
        """Run the rendered migration Job's containers in order, as the Job does; stop at the first failure."""
        results = []
        for name in containers:
            results.append(job.run(name, self.overrides(), timeout=timeout))
            if results[-1].returncode != 0:
                break
        return results


def start_dev_tier(objects: list[dict]) -> DevTier:
    server = PgServer(Path(f"/tmp/airflow-gke-devtier-{os.getpid()}-{time.time_ns()}"), dev_tier_max_connections())
    server.start()
    user = urlsplit(secret_data(find(objects, "Secret", "airflow-secrets"))["sql-alchemy-conn"]).username
    tier = DevTier(server, objects, user)
    tier.create_database()
    return tier
