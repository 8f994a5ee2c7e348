"""A Kubernetes API emulator and a local kubelet, so the real KubernetesExecutor runs task pods offline.

See apiserver.py (what the emulator serves and why) and kubelet.py (how a pod becomes local
processes). `LocalCluster` wires the two; the harness points the scheduler at it with a kubeconfig
file (`[kubernetes_executor] in_cluster = False`, `config_file`) instead of in-cluster config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..gitsync import DagRepo
from .apiserver import KubeApiEmulator
from .kubelet import LocalKubelet


class LocalCluster:
    """The emulator plus one kubelet, started together; `kubeconfig` is the file the scheduler reads."""

    def __init__(self, objects: list[dict], work: Path, namespace: str, dag_repo: Optional[DagRepo],
                 airflow_images: set[str], services: dict[str, str], overrides: dict[str, str]) -> None:
        self.api = KubeApiEmulator()
        self.kubelet = LocalKubelet(self.api.url, namespace, objects, work / "kubelet", dag_repo, airflow_images,
                                    services, overrides)
        self.api.log_reader = self.kubelet.read_log
        self.namespace = namespace
        self.kubeconfig = self.api.write_kubeconfig(work / "kubeconfig.yaml", namespace)

    def start(self) -> "LocalCluster":
        self.api.start()
        self.kubelet.start()
        return self

    def stop(self) -> None:
        self.kubelet.stop()
        self.api.stop()

    @property
    def posted(self) -> list[dict]:
        """Pod bodies exactly as the executor POSTed them, oldest first."""
        return self.api.store.posted

    def pod(self, name: str) -> Optional[dict]:
        return self.api.store.get(self.namespace, name)

    def pods(self) -> list[dict]:
        return self.api.store.list(self.namespace, lambda _: True, lambda _: True)["items"]
