"""Typed, validated stack configuration: the only place that reads `pulumi.Config`.

Every value is parsed and checked before any resource is declared. All problems are
collected and raised together as one `ConfigError` whose lines each name the key, the
value, what is allowed and the `pulumi config set` command that fixes it.

Modules, imports flowing down the list: reader (raw values, parsers, ConfigError), settings (the
dataclasses), network / cluster / database / airflow (each area's keys and cross-key checks), stack
(`load_stack_config`). Everything importers use is re-exported here.
"""

from .airflow import DAG_SOURCES, GIT_SYNC_ONLY_KEYS, SERVICE_TYPES, _quantity, image_problem, is_valid_git_url
from .cluster import CLUSTER_MODES, MIN_KUBERNETES_MINOR, RELEASE_CHANNELS
from .database import POSTGRES_VERSIONS
from .reader import PROJECT, ConfigError, PulumiConfigSource
from .settings import (AIRFLOW_VERSION, CLOUD_SQL_PROXY_IMAGE, DEFAULT_AIRFLOW_IMAGE, DEFAULT_RESOURCES,
                       GIT_SYNC_IMAGE, KUBERNETES_SCHEMA_VERSION, STATSD_EXPORTER_IMAGE, AirflowSettings, ClusterSettings,
                       ContainerResources, DatabaseSettings, FrontDoorSettings, NetworkSettings, PauseSettings,
                       RegistrySettings, StackConfig)
from .stack import ENVIRONMENTS, load_stack_config

__all__ = [
    "AIRFLOW_VERSION", "CLOUD_SQL_PROXY_IMAGE", "CLUSTER_MODES", "DAG_SOURCES", "DEFAULT_AIRFLOW_IMAGE",
    "DEFAULT_RESOURCES", "ENVIRONMENTS", "GIT_SYNC_IMAGE", "GIT_SYNC_ONLY_KEYS", "KUBERNETES_SCHEMA_VERSION",
    "MIN_KUBERNETES_MINOR", "POSTGRES_VERSIONS", "PROJECT", "RELEASE_CHANNELS", "SERVICE_TYPES", "STATSD_EXPORTER_IMAGE",
    "AirflowSettings", "ClusterSettings", "ConfigError", "ContainerResources", "DatabaseSettings", "FrontDoorSettings",
    "NetworkSettings", "PauseSettings", "PulumiConfigSource", "RegistrySettings", "StackConfig",
    "image_problem", "is_valid_git_url", "load_stack_config", "_quantity",
]
