"""The maintenance container: the place operators `kubectl exec` into (same image, env and mounts as the
scheduler), whose PID 1 is the groomer that keeps the pod's `logs` emptyDir bounded.

Writers (Airflow 3.3.2): the dag-processor appends one log per DAG file per parse under
logs/dag_processor/<date>/<bundle>/<file>.log and never deletes them (about 3 MB per DAG file per day
at a 10 s parse interval); the triggerer writes trigger logs locally and uploads them to GCS when a
trigger ends. An emptyDir over its sizeLimit gets the whole pod evicted by the kubelet
(https://kubernetes.io/docs/concepts/scheduling-eviction/node-pressure-eviction/ and
https://kubernetes.io/docs/concepts/storage/volumes/#emptydir: "sizeLimit ... the pod is evicted").

Bound: `delete_local_logs` removes uploaded trigger logs, and the maintenance container (PID 1 of
its own, the place operators `kubectl exec` into) runs the groomer below in every pod with a local
`logs` volume (the `airflow` pod, and in git-bundle mode the dag-processor's own pod): every
GROOM_INTERVAL it truncates any log file over LOG_FILE_CAP and deletes files untouched for
LOG_RETENTION. Open trigger logs (TRIGGER_LOG_GLOB) are spared by both rules: the triggerer uploads
one only when its trigger ends (file_task_handler), a deferred task may stay quiet for hours, and a
truncated or deleted file would lose that task's log; delete_local_logs removes them after upload. Steady state
per DAG file is then at most cap + one interval of growth, so the volume holds
  dag_files x (cap + rate x interval) + other logs of the retention window
which docs/operations.md and tests/integration/test_soak_dev_tier.py check against the sizeLimit
for DOCUMENTED_DAG_FILES (the sizeLimit is shared.LOGS_SIZE_LIMIT, with the pod's other volumes).
"""

from __future__ import annotations

from ..workload_spec import WorkloadSpec
from .airflow_processes import airflow_container, airflow_env
from .shared import LOGS_DIR

GROOM_INTERVAL_SECONDS = 60
LOG_FILE_CAP_BYTES = 1024 * 1024
LOG_RETENTION_MINUTES = 120
DOCUMENTED_DAG_FILES = 1000  # the DAG-file count the bound is documented (and tested) for
# The triggerer's local log of a deferred task: <task log>.trigger.<triggerer job id>.log
# (Airflow 3.3.2 airflow/utils/log/file_task_handler.py, FileTaskHandler.add_triggerer_suffix).
TRIGGER_LOG_GLOB = "*.trigger.*.log"

# Names of the env vars the groomer reads (values rendered into the maintenance container).
GROOM_ENV = {
    "LOGS_DIR": LOGS_DIR,
    "GROOM_INTERVAL_SECONDS": str(GROOM_INTERVAL_SECONDS),
    "LOG_FILE_CAP_BYTES": str(LOG_FILE_CAP_BYTES),
    "LOG_RETENTION_MINUTES": str(LOG_RETENTION_MINUTES),
    "TRIGGER_LOG_GLOB": TRIGGER_LOG_GLOB,
}

# bash, not the image's entrypoint: exits at once on SIGTERM (a bare `sleep infinity` as PID 1 ignores
# it and holds the pod for the whole grace period). `sleep & wait` lets the trap run mid-sleep.
# No $(...) here: the kubelet would expand $(NAME) in command/args.
GROOMER_SCRIPT = """\
trap 'exit 0' TERM INT
while true; do
  find -H "$LOGS_DIR" -type f ! -name "$TRIGGER_LOG_GLOB" -mmin +"$LOG_RETENTION_MINUTES" -delete 2>/dev/null
  find -H "$LOGS_DIR" -type f ! -name "$TRIGGER_LOG_GLOB" -size +"$LOG_FILE_CAP_BYTES"c \\
    -exec truncate -s 0 {} + 2>/dev/null
  find -H "$LOGS_DIR" -mindepth 1 -type d -empty -mmin +"$LOG_RETENTION_MINUTES" -delete 2>/dev/null
  sleep "$GROOM_INTERVAL_SECONDS" & wait $!
done
"""


def groomer_command() -> list[str]:
    return ["bash", "-c", GROOMER_SCRIPT]


def groomer_env() -> list[dict]:
    return [{"name": name, "value": value} for name, value in GROOM_ENV.items()]


def steady_state_bytes(dag_files: int, bytes_per_file_second: float, other_bytes: float = 0.0) -> float:
    """Largest size the logs volume reaches with the groomer running: every processor log at the cap
    plus one groom interval of growth, plus the other logs kept for the retention window."""
    per_file = LOG_FILE_CAP_BYTES + bytes_per_file_second * GROOM_INTERVAL_SECONDS
    return dag_files * per_file + other_bytes


def maintenance_container(spec: WorkloadSpec) -> dict:
    # Same image, env and mounts as the scheduler: the place to `kubectl exec` into. Its PID 1 grooms the
    # logs volume and exits on SIGTERM.
    return airflow_container(spec, "maintenance", [], "maintenance", command=groomer_command(),
                             env=[*airflow_env(spec), *groomer_env()])
