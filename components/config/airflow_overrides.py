"""`airflow-gke:airflowConfig`: Airflow settings without forking, `section.key -> value`, rendered as
AIRFLOW__SECTION__KEY on every Airflow container (components/airflow/pod/airflow_processes.py).

Checked against the pinned release's own configuration reference (airflow_config_reference.json, generated
from Airflow's config description by scripts/airflow_config_reference.py and held to it by
tests/integration/test_airflow_config_reference.py), so a misspelt key fails at preview instead of being
ignored by Airflow. Keys the program sets itself are refused with the airflow-gke key that sets them."""

from __future__ import annotations

import difflib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Optional

from .reader import _Reader

REFERENCE_PATH = Path(__file__).with_name("airflow_config_reference.json")
KEY = "airflowConfig"
_FIXED = "not configurable: the program sets it"

# section.key -> what to use instead. Every AIRFLOW__* the manifests render must be listed here
# (tests/unit/test_task_access.py reads the rendered containers); a `_cmd` / `_secret` variant of a listed
# key is owned too (Airflow reads those instead of the key: airflow/configuration.py, sensitive options).
OWNED: Mapping[str, str] = {
    "core.executor": f"{_FIXED} (KubernetesExecutor; per-task pods with pod_override, README \"Task pods\")",
    "core.dags_folder": "airflow-gke:dagsSubpath",
    "core.load_examples": _FIXED,
    "core.execution_api_server_url": f"{_FIXED} (the internal API Service)",
    "core.auth_manager": f"{_FIXED} (FAB; with airflow-gke:uiAccess, FAB behind verified IAP sign-in)",
    "core.hostname_callable": f"{_FIXED} (the pod IP, so other pods fetch live trigger and task logs)",
    "core.fernet_key": "airflow-gke:fernetKeyVersion (rotation); the keys themselves are generated",
    "database.sql_alchemy_conn": f"{_FIXED} (Cloud SQL through the Auth Proxy sidecar)",
    "database.sql_alchemy_pool_size": "airflow-gke:dbPoolSize",
    "database.sql_alchemy_max_overflow": "airflow-gke:dbPoolMaxOverflow",
    "database.sql_alchemy_pool_pre_ping": _FIXED,
    "api_auth.jwt_secret": "airflow-gke:secretsVersion (rotation)",
    "api.secret_key": "airflow-gke:secretsVersion (rotation)",
    "api.expose_config": _FIXED,
    "api.workers": f"{_FIXED} (counted in the database connection budget)",
    "api.base_url": "airflow-gke:baseUrl",
    "logging.remote_logging": f"{_FIXED} (task logs go to the logs bucket)",
    "logging.remote_base_log_folder": "airflow-gke:logRetentionDays (the bucket is the stack's)",
    "logging.remote_log_conn_id": f"{_FIXED} (Workload Identity, no connection)",
    "logging.delete_local_logs": _FIXED,
    "logging.trigger_log_server_port": f"{_FIXED} (the triggerer's log port the NetworkPolicy opens)",
    "kubernetes_executor.namespace": "airflow-gke:namespace",
    "kubernetes_executor.pod_template_file": "pod_override in the task's executor_config (examples/)",
    "kubernetes_executor.delete_worker_pods": _FIXED,
    "kubernetes_executor.delete_worker_pods_on_failure": "airflow-gke:failedPodRetentionHours",
    "kubernetes_executor.worker_pods_creation_batch_size": _FIXED,
    "kubernetes_executor.async_pod_creation": _FIXED,
    "dag_processor.refresh_interval": "airflow-gke:dagRefreshInterval",
    "dag_processor.min_file_process_interval": "airflow-gke:dagReparseInterval",
    "dag_processor.dag_bundle_config_list": "airflow-gke:dagSource, dagsRepo, dagsRef, gitBundleRefreshInterval",
    "dag_processor.bundle_refresh_check_interval": "airflow-gke:dagRefreshInterval",
    "dag_processor.stale_bundle_cleanup_interval": _FIXED,
    "dag_processor.dag_bundle_storage_path": f"{_FIXED} (the bundle's checkout in the pod's volume)",
    "secrets.backend": "airflow-gke:secretsBackend",
    "secrets.backend_kwargs": "airflow-gke:secretsBackend and airflow-gke:secretsPrefix",
    # components/airflow/pod/metrics_exporter.py: the exporter's mapping reads these names and tags
    "metrics.statsd_on": f"{_FIXED} (StatsD to the metrics-exporter sidecar or the airflow-statsd Service; docs/operations.md)",
    "metrics.statsd_host": f"{_FIXED} (StatsD to the metrics-exporter sidecar or the airflow-statsd Service; docs/operations.md)",
    "metrics.statsd_port": f"{_FIXED} (StatsD to the metrics-exporter sidecar or the airflow-statsd Service; docs/operations.md)",
    "metrics.statsd_prefix": f"{_FIXED} (StatsD to the metrics-exporter sidecar or the airflow-statsd Service; docs/operations.md)",
    "metrics.statsd_influxdb_enabled": f"{_FIXED} (StatsD to the metrics-exporter sidecar or the airflow-statsd Service; docs/operations.md)",
    "metrics.legacy_names_on": f"{_FIXED} (StatsD to the metrics-exporter sidecar or the airflow-statsd Service; docs/operations.md)",
}
_SECTION_KEY = re.compile(r"^([a-z][a-z0-9_.]*)\.([a-z][a-z0-9_]*)$")


@lru_cache(maxsize=None)
def reference() -> dict:
    return json.loads(REFERENCE_PATH.read_text())


def known_options() -> dict[str, str]:
    """`section.key` -> type, for every option of the pinned Airflow and its installed providers."""
    return {f"{section}.{key}": kind for section, keys in reference()["options"].items() for key, kind in keys.items()}


# Sections no Airflow release documents: the program's own auth manager's (auth/airflow_gke_iap.py), set
# from stack keys only (components/airflow/pod/iap_sign_in.py).
OWNED_SECTIONS: Mapping[str, str] = {
    "iap_auth": "the IAP sign-in's own section: airflow-gke:uiAccess (role_map), airflow-gke:uiBackendServiceId "
                "(backend_service_id)",
}


def owner_of(name: str) -> Optional[str]:
    """What to use instead of an owned `section.key` (or its _cmd/_secret variant, or a key of an owned
    section), else None."""
    base = re.sub(r"_(cmd|secret)$", "", name)
    return OWNED.get(name) or OWNED.get(base) or OWNED_SECTIONS.get(name.rsplit(".", 1)[0])


def env_name(name: str) -> str:
    section, key = name.rsplit(".", 1)
    return f"AIRFLOW__{section.upper().replace('.', '_')}__{key.upper()}"


def nearest_option(name: str, known: Mapping[str, str]) -> list[str]:
    """The closest documented option, in the same section first (a misspelt key), then anywhere (a key in
    the wrong section, e.g. scheduler.parsing_processes -> dag_processor.parsing_processes)."""
    section, key = name.rsplit(".", 1)
    same = {k.rsplit(".", 1)[1]: k for k in known if k.rsplit(".", 1)[0] == section}
    close = difflib.get_close_matches(key, list(same), n=1, cutoff=0.75)
    return [same[close[0]]] if close else difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)


def _value_problem(kind: str, value: str) -> Optional[str]:
    if kind == "integer" and not re.fullmatch(r"-?\d+", value):
        return "a whole number"
    if kind == "float" and not re.fullmatch(r"-?\d+(\.\d+)?", value):
        return "a number"
    if kind == "boolean" and value.lower() not in ("true", "false", "t", "f", "1", "0"):
        return "true or false"
    return None


def _as_text(value) -> Optional[str]:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float, str)):
        return str(value)
    return None  # lists and objects: Airflow options are strings


def flatten(overrides: Mapping, parent: str = "", path: str = KEY) -> dict[str, tuple[str, object]]:
    """`{core: {parallelism: 64}}` (what `pulumi config set --path airflowConfig.core.parallelism` writes) and
    `{"core.parallelism": 64}` alike as `{"core.parallelism": (PATH, 64)}`, PATH being the `--path` that
    names the value as it is stored (a segment holding '.' is quoted: `airflowConfig["core.parallelism"]`)."""
    flat = {}
    for name, value in overrides.items():
        name = str(name)
        full = f"{parent}.{name}" if parent else name
        here = f'{path}["{name}"]' if "." in name else f"{path}.{name}"
        flat.update(flatten(value, full, here) if isinstance(value, dict) else {full: (here, value)})
    return flat


def read_airflow_config(reader: _Reader) -> tuple[tuple[str, str], ...]:
    """The validated overrides, sorted, as (`section.key`, value text)."""
    overrides = flatten(reader.json_object(KEY))
    known = known_options()
    versions = f"Airflow {reference()['airflow']} and its installed providers"
    result = []
    for name, (path, value) in sorted(overrides.items()):
        match = _SECTION_KEY.match(name)
        if not match:
            reader.fail(path, value, "a key of the form section.key in lowercase, e.g. core.parallelism",
                        fix=f"{reader.path_fix(path, verb='rm')} && {reader.path_fix(f'{KEY}.core.parallelism', '64')}")
            continue
        replacement = owner_of(name)
        if replacement:
            reader.fail(path, value, f"an option the program does not set itself ([{match[1]}] {match[2]}: "
                        f"{replacement})", fix=reader.path_fix(path, verb="rm"))
            continue
        if name not in known:
            nearest = nearest_option(name, known)
            hint = f" (did you mean {nearest[0]}?)" if nearest else ""
            fix = reader.path_fix(path, verb="rm")
            if nearest:
                fix += f" && {reader.path_fix(f'{KEY}.{nearest[0]}', json.dumps(str(value)))}"
            reader.fail(path, value, f"an option documented by {versions}{hint}", fix=fix)
            continue
        text = _as_text(value)
        problem = "a string, number or boolean" if text is None else _value_problem(known[name], text)
        if problem:
            reader.fail(path, value, f"{problem} ([{match[1]}] {match[2]} is {known[name]})",
                        fix=reader.path_fix(path, "<value>"))
            continue
        result.append((name, text))
    return tuple(result)
