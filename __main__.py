"""Apache Airflow on Google Cloud: GKE + Cloud SQL + Artifact Registry, one `pulumi up` per stack."""

import pulumi

from components.airflow import AIRFLOW_KSA, WORKER_KSA, AirflowWorkload
from components.cluster import Cluster
from components.config import load_stack_config
from components.database import Database
from components.identity import Identity
from components.logs import LogsBucket
from components.network import Network
from components.registry import Registry
from components.services import REQUIRED_APIS, ProjectServices

cfg = load_stack_config()  # fails here, before any resource, on bad or missing config
name = cfg.name_prefix
apis = ProjectServices(f"{name}-apis", {"project": cfg.project, "services": REQUIRED_APIS})
after_apis = pulumi.ResourceOptions(depends_on=[apis])

network = Network(name, {
    "project": cfg.project, "region": cfg.region, "subnet_cidr": cfg.network.subnet_cidr,
    "pods_cidr": cfg.network.pods_cidr, "services_cidr": cfg.network.services_cidr,
    "private_services_prefix_length": cfg.network.private_services_prefix_length}, after_apis)
logs = LogsBucket(f"{name}-logs", {
    "project": cfg.project, "location": cfg.region, "retention_days": cfg.log_retention_days,
    "force_destroy": cfg.logs_force_destroy, "labels": cfg.labels}, after_apis)
identity = Identity(name, {
    "project": cfg.project, "logs_bucket": logs.bucket_name, "namespace": cfg.airflow.namespace,
    "airflow_kubernetes_service_account": AIRFLOW_KSA, "worker_kubernetes_service_account": WORKER_KSA},
    after_apis)
registry = Registry(name, {
    "project": cfg.project, "location": cfg.region, "repository_id": cfg.registry.repository_id,
    "keep_versions": cfg.registry.keep_versions,
    "reader_members": [identity.node_service_account_email.apply(lambda e: f"serviceAccount:{e}"),
                       identity.airflow_service_account_email.apply(lambda e: f"serviceAccount:{e}")]}, after_apis)
database = Database(name, {
    "project": cfg.project, "region": cfg.region, "network_id": network.network_id,
    "version": cfg.database.version, "tier": cfg.database.tier,
    "high_availability": cfg.database.high_availability, "disk_size_gb": cfg.database.disk_size_gb,
    "backup_retention_count": cfg.database.backup_retention_count,
    "log_retention_days": cfg.database.log_retention_days, "maintenance_day": cfg.database.maintenance_day,
    "maintenance_hour": cfg.database.maintenance_hour, "flags": cfg.database.flags,
    "deletion_protection": cfg.database.deletion_protection, "labels": cfg.labels},
    pulumi.ResourceOptions(depends_on=[apis, network.private_services_connection], protect=cfg.database.pulumi_protect))
cluster = Cluster(name, {
    "project": cfg.project, "location": cfg.cluster.location, "mode": cfg.cluster.mode,
    "network_id": network.network_id, "subnet_id": network.subnet_id, "master_cidr": cfg.network.master_cidr,
    "master_authorized_networks": cfg.cluster.master_authorized_networks,
    "node_service_account": identity.node_service_account_email,
    "release_channel": cfg.cluster.release_channel, "kubernetes_version": cfg.cluster.kubernetes_version,
    "machine_type": cfg.cluster.node_machine_type, "min_nodes": cfg.cluster.node_min_count,
    "max_nodes": cfg.cluster.node_max_count, "disk_size_gb": cfg.cluster.node_disk_size_gb,
    "spot_pool": cfg.cluster.spot_pool, "spot_machine_type": cfg.cluster.spot_machine_type,
    "spot_max_nodes": cfg.cluster.spot_max_count, "deletion_protection": cfg.cluster.deletion_protection,
    "labels": cfg.labels}, after_apis)
airflow = AirflowWorkload(name, {
    "settings": cfg.airflow, "database_connection_name": database.connection_name,
    "database_name": database.database_name, "database_user": database.user_name,
    "database_password": database.password, "airflow_service_account": identity.airflow_service_account_email,
    "worker_service_account": identity.worker_service_account_email, "logs_bucket_url": logs.url},
    pulumi.ResourceOptions(providers=[cluster.provider]))

pulumi.export("cluster_name", cluster.name)
pulumi.export("cluster_endpoint", cluster.endpoint)
pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("database_connection_name", database.connection_name)
pulumi.export("database_private_ip", database.private_ip)
pulumi.export("registry_image_base", registry.image_base)
pulumi.export("node_service_account", identity.node_service_account_email)
pulumi.export("airflow_service_account", identity.airflow_service_account_email)
pulumi.export("worker_service_account", identity.worker_service_account_email)
pulumi.export("logs_bucket", logs.url)
pulumi.export("airflow_namespace", airflow.namespace)
pulumi.export("airflow_ui_service", airflow.ui_service_name)
pulumi.export("airflow_admin_password", airflow.admin_password)
