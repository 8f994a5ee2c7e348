"""Reading and checking the Cloud SQL keys, and the connection budget every Airflow pool must fit."""

from __future__ import annotations

import re

from .rules import check_database
from .connection_budget import SUPERUSER_RESERVED_CONNECTIONS, connection_budget, max_connections
from .reader import _Reader
from .settings import AirflowSettings, DatabaseSettings

POSTGRES_VERSIONS = ("POSTGRES_16", "POSTGRES_17")

_DB_TIER = re.compile(r"^db-(f1-micro|g1-small|custom-\d+-\d+|perf-optimized-n-\d+|[a-z0-9]+(-[a-z0-9]+)+)$")


def _read_database(reader: _Reader, is_prod: bool) -> DatabaseSettings:
    flags = reader.json_object("dbFlags")
    database = DatabaseSettings(
        version=reader.string("dbVersion", "POSTGRES_16", choices=POSTGRES_VERSIONS),
        tier=reader.string("dbTier", "db-custom-1-3840", pattern=_DB_TIER,
                           allowed="a Cloud SQL tier such as db-custom-1-3840 or db-g1-small",
                           example="db-custom-1-3840"),
        high_availability=reader.boolean("dbHighAvailability", is_prod),
        disk_size_gb=reader.integer("dbDiskSizeGb", 20, 10, 65536),
        backup_retention_count=reader.integer("dbBackupRetentionCount", 14 if is_prod else 7, 1, 365),
        log_retention_days=reader.integer("dbLogRetentionDays", 7, 1, 7),
        maintenance_day=reader.integer("dbMaintenanceDay", 7, 1, 7),
        maintenance_hour=reader.integer("dbMaintenanceHour", 3, 0, 23),
        flags=tuple(sorted((str(k), str(v)) for k, v in flags.items())),
        deletion_protection=reader.boolean("dbDeletionProtection", True),
        pulumi_protect=reader.boolean("dbPulumiProtect", is_prod),
        password_version=reader.integer("dbPasswordVersion", 1, 1, 1_000_000),
    )
    check_database(reader, database.backup_retention_count, database.log_retention_days, database.tier)
    return database


def _check_connection_budget(reader: _Reader, database: DatabaseSettings, airflow: AirflowSettings) -> None:
    """Every pool full, every probe running, a rollout and both Jobs at once must fit max_connections."""
    limit = max_connections(database.tier, dict(database.flags))
    budget = connection_budget(airflow.replicas, airflow.db_pool_size, airflow.db_pool_max_overflow,
                               jobs=2 if airflow.metadata_retention_days > 0 else 1,
                               separate_dag_processor=airflow.dag_source == "git-bundle")
    if limit is not None and budget.total > limit - SUPERUSER_RESERVED_CONNECTIONS:
        reader.fail("dbPoolSize", airflow.db_pool_size,
                    f"a pool that fits airflow-gke:dbTier {database.tier}: {budget.describe(limit)}; lower "
                    "dbPoolSize, dbPoolMaxOverflow or replicas, pick a larger dbTier, or raise max_connections",
                    fix=reader.path_fix("dbFlags.max_connections", str(budget.total + SUPERUSER_RESERVED_CONNECTIONS)))
