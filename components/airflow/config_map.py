"""The `airflow-config` ConfigMap: airflow.cfg, the task pod template, in git-bundle mode the task
pods' entry point, with IAP sign-in the auth manager's modules. Its digest sits in the always-on pods' template (deployment.pod_checksums)."""

from __future__ import annotations

import yaml

from .pod import git_bundle, iap_sign_in, metrics_exporter
from .pod.task_pod import pod_template
from .workload_spec import CONFIGMAP_NAME, WorkloadSpec, metadata

AIRFLOW_CFG = """\
# airflow-gke: Airflow is configured with AIRFLOW__<SECTION>__<KEY> environment variables (see the
# Deployment); this file exists so Airflow does not try to write one into a read-only filesystem.
[core]
"""


def config_map(spec: WorkloadSpec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(spec, CONFIGMAP_NAME, "config"),
        "data": {
            "airflow.cfg": AIRFLOW_CFG,
            "pod_template_file.yaml": yaml.safe_dump(pod_template(spec), sort_keys=False),
            metrics_exporter.MAPPING_KEY: metrics_exporter.mapping_config(),
            **({git_bundle.FETCH_SCRIPT_KEY: git_bundle.fetch_script()} if git_bundle.is_git_bundle(spec.settings)
               else {}),
            **iap_sign_in.config_map_data(spec.settings),
        },
    }
