"""`load_stack_config`: reads every area of the stack config in turn, applies the prod-only rules, and
raises one ConfigError with every problem or returns the validated StackConfig."""

from __future__ import annotations

import dataclasses
import re
from typing import Optional

from .run_mode import is_deploying
from .airflow import _read_airflow
from .airflow_overrides import read_airflow_config
from .cluster import _read_cluster
from .database import _check_connection_budget, _read_database
from .declared import declarations, unknown_key_problems
from .network import RETIRED_KEY, _read_network
from .pause import _read_pause
from .reader import PROJECT, ConfigError, PulumiConfigSource, _parse_list, _Reader
from .registry import read_keep_tag_prefixes, warn_if_image_ages_out
from .settings import RegistrySettings, StackConfig
from .task_access import read_secrets, read_task_identities, read_worker_roles

ENVIRONMENTS = ("dev", "staging", "prod")

_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
# What Cloud Monitoring takes as an email channel's address: one mailbox, no display name.
_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def _parse_emails(raw) -> tuple[str, ...]:
    emails = tuple(str(e).strip() for e in _parse_list(raw))
    if any(not _EMAIL.match(e) for e in emails) or len(set(emails)) != len(emails):
        raise ValueError(raw)
    return emails


def load_stack_config(source=None, deploying: Optional[bool] = None) -> StackConfig:
    """Read and validate the whole stack configuration, or raise ConfigError listing every problem.

    `deploying` (default: whether this run is `pulumi up`, components/config/run_mode.py) turns the values that
    only warn in a preview, such as documentation IP ranges, into errors."""
    reader = _Reader(source if source is not None else PulumiConfigSource())
    deploying = is_deploying() if deploying is None else deploying
    # A misspelt airflow-gke: key would otherwise be dropped without a word (the CLI checks declared keys only).
    set_keys = getattr(reader.source, "keys", None)
    if set_keys is not None:
        reader.problems += unknown_key_problems(PROJECT, set_keys(), declarations(),
                                                handled=[reader.full_key(RETIRED_KEY)])

    project = reader.required_string("gcp:project", _PROJECT_ID,
                                     "a GCP project id: 6-30 lowercase letters, digits or '-'", "<your-gcp-project-id>")
    region = reader.required_string("gcp:region", _REGION, "a GCP region such as us-central1 or europe-west4",
                                    "us-central1")
    environment = reader.string("environment", "dev", choices=ENVIRONMENTS)
    is_prod = environment == "prod"
    name_prefix = reader.string("namePrefix", "airflow", pattern=re.compile(r"^[a-z][a-z0-9-]{1,14}[a-z0-9]$"),
                                allowed="3-16 lowercase letters, digits or '-', starting with a letter",
                                example="airflow")

    network = _read_network(reader)
    cluster = _read_cluster(reader, region, is_prod, deploying)
    database = _read_database(reader, is_prod)
    log_retention_days = reader.integer("logRetentionDays", 30, 1, 3650)
    logs_force_destroy = reader.boolean("logsForceDestroy", False)
    if is_prod:
        for key, on in (("dbDeletionProtection", database.deletion_protection),
                        ("dbPulumiProtect", database.pulumi_protect),
                        ("clusterDeletionProtection", cluster.deletion_protection)):
            if not on:
                reader.fail(key, "false", "true on a prod stack (the metadata database must not be deletable)", "true")
        if logs_force_destroy:
            reader.fail("logsForceDestroy", "true", "false on a prod stack (task logs must not be deleted with the stack)",
                        "false")

    # Repository ids are unique per project and location, so a second stack in the project needs its own:
    # the default is the namePrefix, which for the default prefix is the `airflow` existing stacks have.
    registry = RegistrySettings(
        repository_id=reader.string("registryRepository", name_prefix, pattern=re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"),
                                    allowed="lowercase letters, digits and '-', starting with a letter",
                                    example="airflow"),
        keep_versions=reader.integer("registryKeepVersions", 10, 1, 1000),
        keep_tag_prefixes=read_keep_tag_prefixes(reader),
    )
    airflow = _read_airflow(reader, environment, deploying, name_prefix)
    pause = _read_pause(reader, is_prod, cluster.mode)
    secrets_backend, secrets_prefix = read_secrets(reader, environment, name_prefix)
    airflow = dataclasses.replace(
        airflow, worker_roles=read_worker_roles(reader, project),
        task_identities=read_task_identities(reader, project, name_prefix), secrets_backend=secrets_backend,
        secrets_prefix=secrets_prefix, secrets_project=project, airflow_config=read_airflow_config(reader))
    warn_if_image_ages_out(airflow.image, project, region, registry.repository_id, registry.keep_tag_prefixes)
    _check_connection_budget(reader, database, airflow)
    # Read by the offline change plan (`make changes BASE=...`), which refuses unacknowledged data loss on
    # prod; checked here only so a malformed value fails early.
    reader.parsed("acknowledgeReplace", (), lambda raw: tuple(str(k) for k in _parse_list(raw)),
                  'a JSON list of config key names, e.g. ["namePrefix"]', "",
                  fix=reader.path_fix("acknowledgeReplace[0]", "namePrefix"))

    alert_emails = reader.parsed("alertEmails", (), _parse_emails,
                                 'a JSON list of distinct e-mail addresses, e.g. ["oncall@example.com"]', "",
                                 fix=reader.path_fix("alertEmails[0]", "oncall@example.com"))

    if reader.problems:
        raise ConfigError(reader.problems)
    return StackConfig(
        project=project,
        region=region,
        environment=environment,
        name_prefix=name_prefix,
        network=network,
        cluster=cluster,
        database=database,
        registry=registry,
        log_retention_days=log_retention_days,
        logs_force_destroy=logs_force_destroy,
        airflow=airflow,
        labels={"app": "airflow", "environment": environment, "managed-by": "pulumi"},
        alert_emails=alert_emails,
        pause=pause,
    )
