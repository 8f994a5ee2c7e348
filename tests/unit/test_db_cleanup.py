"""The weekly metadata clean-up CronJob (`airflow db clean`), on by default, off with retention 0."""

from __future__ import annotations

from tests.conftest import run_stack
from tests.integration.pod import expand_kubelet_vars
from tests.unit.container_helpers import env

CRONJOB = "kubernetes:batch/v1:CronJob"


def cronjob(capture) -> dict:
    return next(m for _, m in capture.kubernetes_objects()
                if m["kind"] == "CronJob" and m["metadata"]["name"] == "airflow-db-cleanup")


def test_cleanup_cronjob_runs_db_clean_behind_the_proxy(dev):
    manifest = cronjob(dev)
    spec = manifest["spec"]
    assert spec["concurrencyPolicy"] == "Forbid" and len(spec["schedule"].split()) == 5
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    proxy = pod["initContainers"][0]
    assert proxy["name"] == "cloud-sql-proxy" and proxy["restartPolicy"] == "Always"
    assert proxy["args"][-1] == dev.one("gcp:sql/databaseInstance:DatabaseInstance").outputs["connectionName"]
    clean = pod["containers"][0]
    variables = env(clean)
    assert variables["METADATA_RETENTION_DAYS"]["value"] == "90"
    assert variables["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]["valueFrom"]["secretKeyRef"]["name"] == "airflow-secrets"
    # What bash receives after the kubelet's $(VAR)/$$ expansion: the shell computes the cut-off date.
    script = expand_kubelet_vars(clean["command"][2], {k: v.get("value", "") for k, v in variables.items()})
    assert script.startswith("exec airflow db clean --clean-before-timestamp ")
    assert '"$(date -u -d "-${METADATA_RETENTION_DAYS} days"' in script and "--yes" in script
    security = clean["securityContext"]
    assert security["readOnlyRootFilesystem"] and security["runAsNonRoot"] and not security["allowPrivilegeEscalation"]
    assert pod["automountServiceAccountToken"] is False and pod["restartPolicy"] == "Never"


def test_cleanup_retention_follows_config_and_zero_turns_it_off():
    assert env(cronjob(run_stack("dev", metadataRetentionDays="30"))["spec"]["jobTemplate"]["spec"]["template"]
               ["spec"]["containers"][0])["METADATA_RETENTION_DAYS"]["value"] == "30"
    assert not [r for r in run_stack("dev", metadataRetentionDays="0").of_type(CRONJOB) if "db-cleanup" in r.name]
