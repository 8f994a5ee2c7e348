"""The Deployments roll out alongside the migration Job (components/airflow/pod/migrations_wait.py): not after it in
the graph, but every pod that talks to the metadata DB waits for the migrated schema, as long as the Job may
run, and the rollout keeps the old pods serving meanwhile. The real `airflow db check-migrations` against
PostgreSQL: tests/integration/test_migrations_wait.py."""

from __future__ import annotations

import pytest

from components.airflow.pod import migrations_wait
from components.airflow.deployment import deployment
from components.airflow.jobs import migration_job
from components.airflow.pod.shared import AIRFLOW_UID
from components.airflow.workload_spec import AIRFLOW_CFG_PATH, WorkloadSpec
from components.airflow.dag_processor import dag_processor_deployment
from preview.harness import Capture
from tests.unit.container_helpers import airflow_command_line, command_line, containers, env
from tests.unit.test_workload_spec import make_spec

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"
CRONJOB = "kubernetes:batch/v1:CronJob"


def db_deployments(spec: WorkloadSpec) -> list[dict]:
    return [d for d in (deployment(spec), dag_processor_deployment(spec)) if d is not None]


@pytest.fixture(params=["git-sync", "git-bundle"])
def spec(request) -> WorkloadSpec:
    return make_spec(dag_source=request.param)


def wait_seconds(container: dict) -> int:
    (flag,) = [a for a in command_line(container) if a.startswith("--migration-wait-timeout=")]
    return int(flag.split("=", 1)[1])


def test_every_db_pod_waits_for_migrations_after_the_proxy_with_the_airflow_settings(spec):
    deployments = db_deployments(spec)
    assert len(deployments) == (2 if spec.settings.dag_source == "git-bundle" else 1)
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        names = [c["name"] for c in pod["initContainers"]]
        wait = pod["initContainers"][names.index("wait-for-migrations")]
        # After the proxy native sidecar: init containers start in order, the sidecar serves 127.0.0.1:5432.
        assert pod["initContainers"][names.index("cloud-sql-proxy")]["restartPolicy"] == "Always"
        assert names.index("cloud-sql-proxy") < names.index("wait-for-migrations")
        assert "restartPolicy" not in wait  # a real init container: the pod's containers start after it
        assert command_line(wait)[:3] == ["airflow", "db", "check-migrations"]
        assert wait["image"] == spec.settings.image
        resources = wait["resources"]
        assert resources["requests"]["cpu"] and resources["requests"]["memory"] and resources["limits"]["memory"]
        security = wait["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] == AIRFLOW_UID
        assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
        # It reads the same database as the processes it guards, with the same config file.
        main = next(c for c in pod["containers"] if airflow_command_line(c)[:1] == ["airflow"])
        for name in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__FERNET_KEY"):
            assert env(wait)[name] == env(main)[name]
        assert {m["mountPath"] for m in wait["volumeMounts"]} >= {AIRFLOW_CFG_PATH, "/tmp"}


def test_the_wait_lasts_as_long_as_the_job_may_run_and_the_rollout_deadlines_cover_it(spec):
    job = migration_job(spec)
    job_deadline = job["spec"]["activeDeadlineSeconds"]
    assert int(job["metadata"]["annotations"]["pulumi.com/timeoutSeconds"]) == job_deadline
    for deployment in db_deployments(spec):
        pod = deployment["spec"]["template"]["spec"]
        (wait,) = [c for c in pod["initContainers"] if c["name"] == "wait-for-migrations"]
        # A migration the Job may still finish is never given up on by the pods.
        assert wait_seconds(wait) >= job_deadline
        # Neither Kubernetes (progress deadline) nor Pulumi's await call a rollout failed while its pods wait:
        # the wait plus a normal rollout (Pulumi's default 10 minutes) fits in both.
        rollout_room = wait_seconds(wait) + 600
        assert deployment["spec"]["progressDeadlineSeconds"] >= rollout_room
        assert int(deployment["metadata"]["annotations"]["pulumi.com/timeoutSeconds"]) >= rollout_room


def test_old_pods_keep_serving_while_new_ones_wait(spec):
    """A new pod waiting for migrations is not Ready; with no unavailable pod allowed, the rollout keeps every
    old one until it is. The git-bundle dag-processor is the exception by design: Recreate (dag_processor.py),
    so DAG parsing pauses until the migration is done; scheduling goes on from the serialized DAGs."""
    strategy = deployment(spec)["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    own = dag_processor_deployment(spec)
    assert own is None or own["spec"]["strategy"] == {"type": "Recreate"}


def test_check_migrations_command_is_what_the_pods_run():
    assert migrations_wait.check_migrations_args(7) == ["airflow", "db", "check-migrations",
                                                        "--migration-wait-timeout=7"]
    pod = deployment(make_spec())["spec"]["template"]["spec"]
    (wait,) = [c for c in pod["initContainers"] if c["name"] == "wait-for-migrations"]
    assert command_line(wait) == migrations_wait.check_migrations_args()
    assert "wait-for-migrations" not in containers(pod)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_deployments_do_not_wait_for_the_job_in_the_graph_but_the_cleanup_does(request, stack):
    capture: Capture = request.getfixturevalue(stack)
    (job,) = capture.of_type(JOB)
    deployments = capture.of_type(DEPLOYMENT)
    assert len(deployments) == (2 if stack == "prod" else 1)  # prod: git-bundle, its own dag-processor
    namespace = next(r for r in capture.resources if r.type == "kubernetes:core/v1:Namespace")
    for deployment in deployments:
        assert job.urn not in deployment.dependencies, deployment.name
        assert namespace.urn in deployment.dependencies  # the other dependencies stay
    db_cronjobs = [c for c in capture.of_type(CRONJOB) if c.name.endswith("db-cleanup")]  # pod-cleanup: no DB
    assert db_cronjobs
    for cronjob in db_cronjobs:  # no wait container of its own: still after the Job
        assert job.urn in cronjob.dependencies
