"""A stalled git-sync is detected: the rendered sidecar exits within the documented bound (the kubelet then
restarts it), and settings that would let a stall go unnoticed are refused before anything is declared.

The model of git-sync below is written from git-sync v4.7.1's sync loop (main.go: each attempt runs under
`--sync-timeout`, then sleeps `--period`; exit once consecutive failures reach `--max-failures`, a negative
value retries forever), independent of components/airflow/pod/git_sync_liveness.py, and fed only the rendered env."""

from __future__ import annotations

import re
from typing import Optional

import pytest

from components.airflow.deployment import deployment
from components.airflow.pod.task_pod import pod_template
from components.airflow.pod.git_sync_liveness import MAX_STALL_DETECTION_SECONDS
from preview.harness import Capture
from tests.conftest import run_stack
from tests.unit.container_helpers import containers, env_value, every_container, init_containers
from tests.unit.test_config import load_error
from tests.unit.test_workload_rendered import deployment_pod
from tests.unit.test_workload_spec import make_spec


def seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, f"expected a duration in seconds, got {duration!r}"
    return int(match.group(1))


def git_sync_exit_after_stall(container: dict) -> Optional[int]:
    """Seconds from the last good sync to git-sync's exit when every later fetch hangs; None: never exits."""
    period = seconds(env_value(container, "GITSYNC_PERIOD"))
    timeout = seconds(env_value(container, "GITSYNC_SYNC_TIMEOUT"))
    max_failures = int(env_value(container, "GITSYNC_MAX_FAILURES"))
    elapsed, failures = 0, 0
    for _ in range(10_000):
        elapsed += period + timeout  # sleep one period, then the attempt hangs until the sync timeout kills it
        failures += 1
        if max_failures >= 0 and failures >= max_failures:
            return elapsed
    return None


@pytest.fixture(scope="module")
def prod_git_sync() -> Capture:
    return run_stack("prod", dagSource="git-sync")


@pytest.mark.parametrize("fixture", ["dev", "prod_git_sync"])
def test_rendered_git_sync_exits_on_a_stall_within_the_documented_bound(request, fixture):
    pod = deployment_pod(request.getfixturevalue(fixture))
    sidecar = containers(pod)["git-sync"]
    for container in (sidecar, init_containers(pod)["git-sync-init"]):
        assert env_value(container, "GITSYNC_SYNC_TIMEOUT") == env_value(sidecar, "GITSYNC_SYNC_TIMEOUT")
    bound = git_sync_exit_after_stall(sidecar)
    assert bound is not None, "git-sync retries a hung sync forever: a stall is never detected"
    assert bound <= MAX_STALL_DETECTION_SECONDS
    # Before the first sync `/` answers 503: the startup probe must let git-sync reach its own (logged) exit,
    # and still stop a wedged start about one probe period after that bound.
    startup = sidecar["startupProbe"]
    assert startup["httpGet"]["path"] == "/"
    startup_window = startup["periodSeconds"] * startup["failureThreshold"]
    assert bound <= startup_window <= bound + 2 * startup["periodSeconds"]
    # A git helper that outlives the killed `git` holds git-sync's attempt open (no WaitDelay in v4.7.1):
    # curl's low-speed abort must end a silent HTTPS transfer within the sync timeout.
    for container in (sidecar, init_containers(pod)["git-sync-init"]):
        assert int(env_value(container, "GIT_HTTP_LOW_SPEED_LIMIT")) >= 1
        assert 0 < int(env_value(container, "GIT_HTTP_LOW_SPEED_TIME")) < seconds(
            env_value(container, "GITSYNC_SYNC_TIMEOUT"))
    # After the first sync `/` is 200 for the process's life: liveness only catches a wedged HTTP server,
    # so it may be quick.
    liveness = sidecar["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] <= 120


@pytest.mark.parametrize("overrides, key", [
    ({"gitSyncMaxFailures": "-1"}, "gitSyncMaxFailures"),
    ({"gitSyncMaxFailures": "30"}, "gitSyncMaxFailures"),
    ({"gitSyncPeriod": "1h", "gitSyncMaxFailures": "1"}, "gitSyncPeriod"),
])
def test_a_stall_that_would_go_unnoticed_is_refused_with_one_message(overrides, key):
    error = load_error(**overrides)
    assert len(error.problems) == 1, error.problems
    problem = error.problems[0]
    assert problem.startswith(f"airflow-gke:{key} ") and f"within {MAX_STALL_DETECTION_SECONDS}s" in problem
    assert f"Fix: pulumi config set airflow-gke:{key} " in problem


def test_git_bundle_mode_reports_git_sync_keys_once():
    """No git-sync runs in git-bundle mode: its keys are refused as out of place, not also as a stall."""
    error = load_error(environment="prod", dagSource="git-bundle", gitSyncMaxFailures="-1")
    assert len(error.problems) == 1 and "unset when airflow-gke:dagSource is git-bundle" in error.problems[0]


def test_ssh_transport_gives_up_on_a_silent_remote_within_the_sync_timeout():
    spec = make_spec(git_credentials_kind="ssh")
    pods = [deployment(spec)["spec"]["template"]["spec"], pod_template(spec)["spec"]]
    git_syncs = [c for pod in pods for c in every_container(pod) if c["name"] in ("git-sync", "git-sync-init")]
    assert len(git_syncs) >= 3
    for container in git_syncs:
        command = env_value(container, "GIT_SSH_COMMAND")
        assert command.split()[0] == "ssh"  # git-sync v4.7.1 appends its -i / known-hosts options to it
        options = dict(re.findall(r"-o (\w+)=(\d+)", command))
        silence = int(options["ServerAliveInterval"]) * int(options["ServerAliveCountMax"])
        assert 0 < silence < seconds(env_value(container, "GITSYNC_SYNC_TIMEOUT"))
