"""The rendered `wait-for-migrations` init container, run for real (Airflow 3.3.2, PostgreSQL) against a
database of its own: it does not pass on an un-migrated schema, and passes promptly once the rendered
`db-migrate` container of the migration Job has run — the property that lets the Deployment roll out
alongside the Job (components/airflow/pod/migrations_wait.py)."""

from __future__ import annotations

import time

import pytest

from components.airflow.pod import migrations_wait

from .harness import make_pod, psql
from .pod import wait_until

# Own database and role: the rest of the suite's `airflow` database is left alone.
DATABASE = ROLE = "airflow_migrations_wait"
PASSWORD = "wait-for-migrations"
SHORT_WAIT_SECONDS = 3
PROMPT_SECONDS = 60  # generous for a loaded 2-core machine; the check polls once a second


@pytest.fixture(scope="module")
def empty_database():
    psql(f'drop database if exists "{DATABASE}" with (force)')
    psql(f"do $$ begin if not exists (select from pg_roles where rolname = '{ROLE}') then "
         f"create role \"{ROLE}\" login; end if; end $$")
    psql(f"alter role \"{ROLE}\" with login password '{PASSWORD}'")
    psql(f'create database "{DATABASE}" owner "{ROLE}"')
    yield f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:5432/{DATABASE}"
    psql(f'drop database if exists "{DATABASE}" with (force)')


def test_rendered_wait_holds_until_the_rendered_migration_has_run(rendered, empty_database):
    pod = make_pod(rendered, "Deployment", "airflow", "migrations-wait-pod")
    job = make_pod(rendered, "Job", None, "migrations-wait-job")
    overrides = {"AIRFLOW__LOGGING__REMOTE_LOGGING": "False", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": empty_database}
    wait = pod.container("wait-for-migrations")
    rendered_argv = pod.argv(wait, pod.env(wait, overrides))
    assert rendered_argv == migrations_wait.check_migrations_args()

    # 1. Un-migrated: with its timeout shortened, the rendered command gives up non-zero (the kubelet would
    #    restart it; the pod's containers never start).
    short = [f"--migration-wait-timeout={SHORT_WAIT_SECONDS}" if a.startswith("--migration-wait-timeout=") else a
             for a in rendered_argv]
    refused = pod.run("wait-for-migrations", overrides, argv=short, timeout=180)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, output[-2000:]
    assert f"There are still unapplied migrations after {SHORT_WAIT_SECONDS} seconds" in output, output[-2000:]

    # 2. The rendered command as is keeps waiting while the schema is missing ...
    waiter = pod.start("wait-for-migrations", overrides)
    try:
        wait_until(lambda: "Waiting for migrations" in pod.log_tail("wait-for-migrations"), 120, 1,
                   what="wait-for-migrations polling the empty database")
        assert waiter.poll() is None, pod.log_tail("wait-for-migrations")
        # ... and passes promptly once the Job's rendered `airflow db migrate` is done.
        migrate = job.run("db-migrate", overrides, timeout=300)
        assert migrate.returncode == 0, (migrate.stdout + migrate.stderr)[-2000:]
        migrated_at = time.monotonic()
        assert waiter.wait(timeout=PROMPT_SECONDS) == 0, pod.log_tail("wait-for-migrations")
        assert time.monotonic() - migrated_at < PROMPT_SECONDS
    finally:
        pod.stop_all()
