"""Google service accounts with least privilege, bound to Kubernetes service accounts by
Workload Identity. No service-account keys are created anywhere in this project."""

from __future__ import annotations

from typing import Optional, TypedDict

import pulumi
import pulumi_gcp as gcp

from .common import child_options, type_token

# What GKE nodes need to write logs/metrics; replaces the over-privileged default compute SA.
NODE_ROLES = (
    "roles/container.defaultNodeServiceAccount",
    "roles/serviceusage.serviceUsageConsumer",  # image streaming with a custom node SA
)
AIRFLOW_PROJECT_ROLES = ("roles/cloudsql.client",)


def workload_identity_member(project: str, namespace: str, kubernetes_service_account: str) -> str:
    """The IAM member that stands for one Kubernetes service account of the cluster's workload pool."""
    return f"serviceAccount:{project}.svc.id.goog[{namespace}/{kubernetes_service_account}]"


def bind_workload_identity(resource_name: str, google_service_account_id: pulumi.Input[str],
                           project: pulumi.Input[str], namespace: pulumi.Input[str],
                           kubernetes_service_account: pulumi.Input[str],
                           opts: Optional[pulumi.ResourceOptions] = None) -> gcp.serviceaccount.IAMMember:
    """Let the Kubernetes service account NAMESPACE/KSA act as the Google service account."""
    member = pulumi.Output.all(project, namespace, kubernetes_service_account).apply(
        lambda parts: workload_identity_member(*parts))
    return gcp.serviceaccount.IAMMember(
        resource_name, service_account_id=google_service_account_id,
        role="roles/iam.workloadIdentityUser", member=member, opts=opts)


class IdentityArgs(TypedDict):
    project: pulumi.Input[str]
    """GCP project id (also names the Workload Identity pool PROJECT.svc.id.goog)."""
    logs_bucket: pulumi.Input[str]
    """Bucket the Airflow and worker accounts may write task logs to (and nothing else)."""
    namespace: pulumi.Input[str]
    """Kubernetes namespace of the Airflow workload."""
    airflow_kubernetes_service_account: pulumi.Input[str]
    """KSA of the Airflow Deployment (scheduler, api-server, ...)."""
    worker_kubernetes_service_account: pulumi.Input[str]
    """KSA of KubernetesExecutor task pods."""


class Identity(pulumi.ComponentResource):
    node_service_account_email: pulumi.Output[str]
    airflow_service_account_email: pulumi.Output[str]
    worker_service_account_email: pulumi.Output[str]

    def __init__(self, name: str, args: IdentityArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("Identity"), name, {}, opts)
        project = args["project"]

        def account(suffix: str, description: str) -> gcp.serviceaccount.Account:
            return gcp.serviceaccount.Account(
                f"{name}-{suffix}", project=project, account_id=f"{name}-{suffix}"[:30],
                display_name=description, opts=child_options(self, opts))

        def member_of(sa: gcp.serviceaccount.Account) -> pulumi.Output[str]:
            return sa.email.apply(lambda email: f"serviceAccount:{email}")

        nodes = account("nodes", "GKE nodes (least privilege)")
        airflow = account("airflow", "Airflow scheduler, API server and DAG processor")
        worker = account("worker", "Airflow KubernetesExecutor task pods")

        for role in NODE_ROLES:
            gcp.projects.IAMMember(f"{name}-nodes-{role.split('/')[1].replace('.', '-')}", project=project,
                                   role=role, member=member_of(nodes), opts=child_options(self, opts))
        for role in AIRFLOW_PROJECT_ROLES:
            gcp.projects.IAMMember(f"{name}-airflow-{role.split('/')[1].replace('.', '-')}", project=project,
                                   role=role, member=member_of(airflow), opts=child_options(self, opts))
        for suffix, sa in (("airflow", airflow), ("worker", worker)):
            gcp.storage.BucketIAMMember(f"{name}-{suffix}-logs-writer", bucket=args["logs_bucket"],
                                        role="roles/storage.objectAdmin", member=member_of(sa),
                                        opts=child_options(self, opts))

        bind_workload_identity(f"{name}-airflow-wi", airflow.name, project, args["namespace"],
                               args["airflow_kubernetes_service_account"], child_options(self, opts))
        bind_workload_identity(f"{name}-worker-wi", worker.name, project, args["namespace"],
                               args["worker_kubernetes_service_account"], child_options(self, opts))

        self.node_service_account_email = nodes.email
        self.airflow_service_account_email = airflow.email
        self.worker_service_account_email = worker.email
        self.register_outputs({
            "node_service_account_email": nodes.email,
            "airflow_service_account_email": airflow.email,
            "worker_service_account_email": worker.email,
        })
