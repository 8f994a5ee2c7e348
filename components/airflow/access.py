"""The objects around the pods: Services, ServiceAccounts, RBAC and NetworkPolicies (who reaches and
runs what), the PodDisruptionBudget and the Namespace."""

from __future__ import annotations

from typing import Optional

from .front_door import GOOGLE_FRONT_END_RANGES
from .pod import metrics_exporter
from .pod.airflow_processes import TRIGGER_LOG_SERVER_PORT
from .workload_spec import (AIRFLOW_KSA, API_PORT, API_SERVICE_NAME, DEPLOYMENT_NAME, ROLE_NAME, UI_SERVICE_NAME,
                            UI_SERVICE_PORT, WORKER_KSA, WORKER_LOG_SERVER_PORT, WorkloadSpec, labels, metadata,
                            selector)


def ui_service(spec: WorkloadSpec) -> dict:
    service_spec: dict = {
        "type": "ClusterIP" if spec.settings.service_type == "ClusterIP" else "LoadBalancer",
        "selector": selector(spec, "airflow"),
        "ports": [{"name": "http", "port": UI_SERVICE_PORT, "targetPort": "api", "protocol": "TCP"}],
    }
    annotations = None
    if spec.settings.service_type == "InternalLoadBalancer":
        annotations = {"networking.gke.io/load-balancer-type": "Internal"}
    if service_spec["type"] == "LoadBalancer" and spec.settings.load_balancer_source_ranges:
        service_spec["loadBalancerSourceRanges"] = list(spec.settings.load_balancer_source_ranges)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": metadata(spec, UI_SERVICE_NAME, "ui", annotations), "spec": service_spec}


def api_service(spec: WorkloadSpec) -> dict:
    """Cluster-internal Service for the execution API that task pods call."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(spec, API_SERVICE_NAME, "api"),
            "spec": {"type": "ClusterIP", "selector": selector(spec, "airflow"),
                     "ports": [{"name": "api", "port": API_PORT, "targetPort": "api", "protocol": "TCP"}]}}


def statsd_service(spec: WorkloadSpec) -> dict:
    """Where task pods and the git-bundle dag-processor send StatsD (UDP) to an `airflow` pod's exporter."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": metadata(spec, metrics_exporter.STATSD_SERVICE_NAME, "metrics"),
            "spec": {"type": "ClusterIP", "selector": selector(spec, "airflow"),
                     "ports": [{"name": "statsd", "port": metrics_exporter.STATSD_PORT, "targetPort": "statsd",
                                "protocol": "UDP"}]}}


# Managed Service for Prometheus runs its collectors (a DaemonSet, pod network) in this namespace:
# DefaultOperatorNamespace in pkg/operator/operator.go and the collector in manifests/operator.yaml of
# GoogleCloudPlatform/prometheus-engine@2ffde4ec7b7e4ca1da4e32f36b692945b78a60e4;
# https://cloud.google.com/stackdriver/docs/managed-prometheus/setup-managed
GMP_NAMESPACE = "gmp-system"
# Ports the collectors scrape (scraping.py): the exporter's only.
SCRAPED_PORTS = (metrics_exporter.METRICS_PORT,)


def scraped_pods(spec: WorkloadSpec) -> dict:
    """The always-on pods (the `airflow` pods and the git-bundle dag-processor), not task pods."""
    matched = {k: v for k, v in selector(spec, "airflow").items() if k != "app.kubernetes.io/component"}
    return {"matchLabels": matched, "matchExpressions": [
        {"key": "app.kubernetes.io/component", "operator": "In", "values": ["airflow", "dag-processor"]}]}


def service_accounts(spec: WorkloadSpec) -> list[dict]:
    # Task identities are worker pods under another name: no Kubernetes API token either.
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "automountServiceAccountToken": automount,
         "metadata": metadata(spec, ksa, component, {"iam.gke.io/gcp-service-account": gsa})}
        for ksa, gsa, component, automount in (
            (AIRFLOW_KSA, spec.airflow_service_account, "airflow", True),
            (WORKER_KSA, spec.worker_service_account, "worker", False),
            *((ksa, gsa, "worker", False) for ksa, gsa in spec.task_service_accounts))
    ]


def pod_launcher_role(spec: WorkloadSpec) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": metadata(spec, ROLE_NAME, "rbac"),
            "rules": [
                {"apiGroups": [""], "resources": ["pods"],
                 "verbs": ["create", "get", "list", "watch", "patch", "delete"]},
                {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["events"], "verbs": ["list", "watch"]},
            ]}


def pod_launcher_binding(spec: WorkloadSpec) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": metadata(spec, ROLE_NAME, "rbac"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE_NAME},
            "subjects": [{"kind": "ServiceAccount", "name": AIRFLOW_KSA, "namespace": spec.settings.namespace}]}


def api_ingress_rules(spec: WorkloadSpec) -> list[dict]:
    """Who reaches the API/UI port of the Airflow pods: the namespace's own pods (task pods call the execution
    API); with airflow-gke:uiHost the Gateway's load balancer, whose proxies and health checks come from
    Google's front-end ranges; with a LoadBalancer Service, anyone (the load balancer's own source ranges
    filter the clients, and its traffic reaches the pods through the nodes). kubectl port-forward enters the
    pod's own network namespace, and the kubelet's probes come from the node, which NetworkPolicy always
    admits (https://kubernetes.io/docs/concepts/services-networking/network-policies/)."""
    ports = [{"port": API_PORT, "protocol": "TCP"}]
    if spec.settings.service_type != "ClusterIP":
        return [{"ports": ports}]
    rules = [{"from": [{"podSelector": {}}], "ports": ports}]
    if spec.settings.front_door.enabled:
        rules.append({"from": [{"ipBlock": {"cidr": cidr}} for cidr in GOOGLE_FRONT_END_RANGES], "ports": ports})
    return rules


# Names of network_policies(), in order: the workload declares one resource per name before the spec resolves.
NETWORK_POLICY_NAMES = ("default-deny-ingress", "airflow-api-ingress", "worker-logs-ingress", "metrics-scrape-ingress",
                        "statsd-ingress", "trigger-logs-ingress")


def network_policies(spec: WorkloadSpec) -> list[dict]:
    """Deny all ingress in the namespace, then open only the API/UI port of the Airflow pods (to the clients
    api_ingress_rules names), the task pods' log server to the Airflow pods, and the triggerer's log server to
    the Airflow pods (the api-server of any replica shows a running trigger's log by fetching it from the
    triggerer that runs it), the metrics ports to GMP's collectors, and the exporter's StatsD port to the
    namespace's other Airflow pods."""
    def policy(name: str, component: str, pod_selector: dict, ingress: list) -> dict:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": metadata(spec, name, component),
                "spec": {"podSelector": pod_selector, "policyTypes": ["Ingress"], "ingress": ingress}}

    return [
        policy("default-deny-ingress", "network", {}, []),
        policy("airflow-api-ingress", "airflow", {"matchLabels": selector(spec, "airflow")}, api_ingress_rules(spec)),
        policy("worker-logs-ingress", "worker", {"matchLabels": selector(spec, "worker")},
               [{"from": [{"podSelector": {"matchLabels": selector(spec, "airflow")}}],
                 "ports": [{"port": WORKER_LOG_SERVER_PORT, "protocol": "TCP"}]}]),
        policy("metrics-scrape-ingress", "metrics", scraped_pods(spec),
               [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": GMP_NAMESPACE}}}],
                 "ports": [{"port": port, "protocol": "TCP"} for port in SCRAPED_PORTS]}]),
        policy("statsd-ingress", "metrics", {"matchLabels": selector(spec, "airflow")},
               [{"from": [{"podSelector": {"matchLabels": selector(spec, component)}}
                          for component in ("worker", "dag-processor")],
                 "ports": [{"port": metrics_exporter.STATSD_PORT, "protocol": "UDP"}]}]),
        policy("trigger-logs-ingress", "airflow", {"matchLabels": selector(spec, "airflow")},
               [{"from": [{"podSelector": {"matchLabels": selector(spec, "airflow")}}],
                 "ports": [{"port": TRIGGER_LOG_SERVER_PORT, "protocol": "TCP"}]}]),
    ]


def pod_disruption_budget(spec: WorkloadSpec) -> Optional[dict]:
    if spec.settings.replicas < 2:
        return None
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": metadata(spec, DEPLOYMENT_NAME, "airflow"),
            "spec": {"minAvailable": 1, "selector": {"matchLabels": selector(spec, "airflow")}}}


def namespace(spec: WorkloadSpec) -> dict:
    ns_labels = {**labels(spec, "namespace"),
                 # Pod Security Admission: the API server itself refuses pods that break these rules.
                 "pod-security.kubernetes.io/enforce": "restricted",
                 "pod-security.kubernetes.io/warn": "restricted"}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": spec.settings.namespace, "labels": ns_labels}}
