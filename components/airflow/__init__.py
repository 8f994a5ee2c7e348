"""The Airflow 3 workload on Kubernetes: pure manifest builders (re-exported by spec.py) and one
component (workload.py)."""

from .spec import AIRFLOW_KSA, WORKER_KSA, WorkloadSpec
from .workload import AirflowWorkload, AirflowWorkloadArgs

__all__ = ["AIRFLOW_KSA", "WORKER_KSA", "AirflowWorkload", "AirflowWorkloadArgs", "WorkloadSpec"]
