"""A test-only executor for the real scheduler: instead of creating a pod, it writes the command the
KubernetesExecutor would give the task pod (the provider's own `workload_to_command_args`, i.e.
`python -m airflow.sdk.execution_time.execute_workload --json-string <workload>`) to a spool folder.
The test then runs the rendered task pod with exactly that command (tests/integration/bundle.py) and
reports the pod's exit back through a `.result` file, which `sync()` turns into the executor event.

Used with `AIRFLOW__CORE__EXECUTOR=tests.integration.spool_executor.SpoolExecutor` and
`AIRFLOW_GKE_SPOOL_DIR`; the executor path end to end (pods through a Kubernetes API) is issue 10 part 1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from airflow.executors.base_executor import BaseExecutor
from airflow.providers.cncf.kubernetes.pod_generator import workload_to_command_args


class SpoolExecutor(BaseExecutor):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.spool = Path(os.environ["AIRFLOW_GKE_SPOOL_DIR"])
        self.spool.mkdir(parents=True, exist_ok=True)
        self.keys: dict[str, object] = {}

    def start(self) -> None:
        pass

    def _process_workloads(self, workloads) -> None:
        for workload in workloads:
            self.queued_tasks.pop(workload.key, None)
            self.running.add(workload.key)
            name = str(workload.ti.id)
            self.keys[name] = workload.key
            ti = workload.ti
            record = {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id,
                      "try_number": ti.try_number, "args": workload_to_command_args(workload)}
            temporary = self.spool / f".{name}.tmp"
            temporary.write_text(json.dumps(record))
            temporary.rename(self.spool / f"{name}.json")

    def sync(self) -> None:
        for result in self.spool.glob("*.result"):
            key = self.keys.pop(result.stem, None)
            if key is not None:
                (self.success if result.read_text().strip() == "0" else self.fail)(key)
            result.unlink()

    def end(self) -> None:
        self.sync()

    def terminate(self) -> None:
        pass
