"""git-sync (dagSource git-sync): the sidecar that keeps the branch head in the `dags` volume of the
Airflow pod, and the one-time clone (`git-sync-init`) that starts that pod and every task pod.

Everything git-sync gets is here: its env (repository, ref, period, credentials), its mounts, its port
and probes. How a stalled sync is noticed (sync timeout, bounded failures, transport keepalives) is
worked out in git_sync_liveness.py beside this module, which config validation also uses.
"""

from __future__ import annotations

from ...config import GIT_SYNC_IMAGE
from ..workload_spec import (GIT_KNOWN_HOSTS_PATH, GIT_LINK, GIT_SECRET_NAME, GIT_SSH_KEY_PATH, WorkloadSpec)
from . import git_sync_liveness
from .shared import container_security, env_var, git_ssh_mounts, http_probe, image_pull_policy, secret_env

GIT_SYNC_UID = 65533  # the user of the git-sync image
GIT_SYNC_HTTP_PORT = 8081
GIT_ROOT = "/git"  # where git-sync sees the `dags` volume; Airflow mounts it at DAGS_MOUNT


def git_sync_env(spec: WorkloadSpec, one_time: bool) -> list[dict]:
    env = [
        env_var("GITSYNC_REPO", spec.settings.dags_repo),
        env_var("GITSYNC_REF", spec.settings.dags_ref),
        env_var("GITSYNC_ROOT", GIT_ROOT),
        env_var("GITSYNC_LINK", GIT_LINK),
        env_var("GITSYNC_DEPTH", "1"),
        env_var("GITSYNC_PERIOD", f"{spec.settings.git_sync_period_seconds}s"),
        env_var("GITSYNC_MAX_FAILURES", spec.settings.git_sync_max_failures),
        env_var("GITSYNC_SYNC_TIMEOUT", f"{git_sync_liveness.GIT_SYNC_TIMEOUT_SECONDS}s"),  # bounds a hung fetch
    ]
    env += [env_var(name, value) for name, value in git_sync_liveness.transport_stall_env(
        spec.settings.git_credentials_kind)]
    if one_time:
        env.append(env_var("GITSYNC_ONE_TIME", "true"))
    else:
        # `/` for the kubelet's probes only; no GITSYNC_HTTP_METRICS (default false in v4.7.1): nothing
        # scrapes git-sync (scraping.py), tests/unit/test_listeners.py.
        env.append(env_var("GITSYNC_HTTP_BIND", f"0.0.0.0:{GIT_SYNC_HTTP_PORT}"))
    if spec.settings.git_credentials_kind == "token":
        env += [secret_env("GITSYNC_USERNAME", GIT_SECRET_NAME, "username"),
                secret_env("GITSYNC_PASSWORD", GIT_SECRET_NAME, "token")]
    elif spec.settings.git_credentials_kind == "ssh":
        env.append(env_var("GITSYNC_SSH_KEY_FILE", GIT_SSH_KEY_PATH))
        if spec.settings.git_ssh_known_hosts:
            env += [env_var("GITSYNC_SSH_KNOWN_HOSTS", "true"),
                    env_var("GITSYNC_SSH_KNOWN_HOSTS_FILE", GIT_KNOWN_HOSTS_PATH)]
        else:  # no known_hosts configured: the host key cannot be checked (docs/configuration.md: set dagsSshKnownHosts)
            env.append(env_var("GITSYNC_SSH_KNOWN_HOSTS", "false"))
    return env


def git_sync_mounts(spec: WorkloadSpec) -> list[dict]:
    return [{"name": "dags", "mountPath": GIT_ROOT}, {"name": "tmp", "mountPath": "/tmp"}, *git_ssh_mounts(spec)]


def git_sync_probes(spec: WorkloadSpec) -> dict:
    """`/` answers 503 until the first sync, then 200 forever (git-sync v4.7.1): it only tells a wedged
    process. A later stall makes git-sync itself exit (sync timeout + bounded failures, see
    git_sync_liveness.py); the startup probe outlasts that bound so git-sync's own exit comes first."""
    period = git_sync_liveness.PROBE_PERIOD_SECONDS
    startup = git_sync_liveness.startup_failure_threshold(spec.settings.git_sync_period_seconds,
                                                           spec.settings.git_sync_max_failures)
    return {"startupProbe": http_probe("/", "git-sync", period=period, timeout=5, failures=startup),
            "livenessProbe": http_probe("/", "git-sync", period=period, timeout=5, failures=3)}


def git_sync_container(spec: WorkloadSpec, one_time: bool = False) -> dict:
    """The sidecar, or with `one_time` the init container that clones once before Airflow starts."""
    container = {
        "name": "git-sync-init" if one_time else "git-sync",
        "image": GIT_SYNC_IMAGE,
        "imagePullPolicy": image_pull_policy(GIT_SYNC_IMAGE),
        "env": git_sync_env(spec, one_time),
        "resources": spec.settings.resources["git-sync"].to_k8s(),
        "securityContext": container_security(GIT_SYNC_UID),
        "volumeMounts": git_sync_mounts(spec),
    }
    if not one_time:
        container["ports"] = [{"name": "git-sync", "containerPort": GIT_SYNC_HTTP_PORT, "protocol": "TCP"}]
        # No readiness probe: the `airflow` pod is behind the execution API Service, and `/` answers 503
        # after every git-sync restart until its next sync; a repository outage would take the API away from
        # running tasks. Liveness is all git-sync needs.
        container.update(git_sync_probes(spec))
    return container
