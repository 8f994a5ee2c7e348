"""Apache Airflow on Google Cloud: GKE + Cloud SQL + Artifact Registry, one `pulumi up` per stack."""

import pulumi

from components.airflow.workload import AirflowWorkload
from components.airflow.workload_args import settings_args
from components.airflow.workload_spec import AIRFLOW_KSA, WORKER_KSA
from components.cluster import Cluster
from components.config import load_stack_config
from components.config.task_access import task_ksa
from components.database import Database
from components.frontdoor import FrontDoor, front_door_apis
from components.identity import Identity, WorkloadIdentityBindings
from components.logs import LogsBucket
from components.monitoring import Monitoring
from components.network import Network
from components.registry import Registry
from components.schedule import APIS as PAUSE_APIS, ActiveHoursSchedule
from components.services import REQUIRED_APIS, ProjectServices
from components.ui_access import UiAccess, ui_access_apis

cfg = load_stack_config()  # fails here, before any resource, on bad or missing config
name, project, region = cfg.name_prefix, cfg.project, cfg.region
paused_by_schedule = cfg.pause.enabled  # the pause workflow then owns pool sizes and the database's activation
ui = cfg.airflow.front_door  # airflow-gke:uiHost: a public HTTPS front door, else port-forward only
uses_secret_manager = cfg.airflow.secrets_backend == "secret-manager"
apis = ProjectServices(f"{name}-apis", {"project": project, "services": (
    *REQUIRED_APIS, *(PAUSE_APIS if paused_by_schedule else ()),
    *(front_door_apis(ui.ui_dns_zone) if ui.enabled else ()), *ui_access_apis(dict(cfg.airflow.ui_access)),
    *(("secretmanager.googleapis.com",) if uses_secret_manager else ()))})
after_apis = pulumi.ResourceOptions(depends_on=[apis.ready])  # enabled, and given time to propagate

network = Network(name, {"project": project, "region": region, **cfg.network.as_args()}, after_apis)
logs = LogsBucket(f"{name}-logs", {"project": project, "location": region, "labels": cfg.labels,
                                   "retention_days": cfg.log_retention_days,
                                   "force_destroy": cfg.logs_force_destroy}, after_apis)
identity = Identity(name, {"project": project, "logs_bucket": logs.bucket_name,
                           "worker_roles": cfg.airflow.worker_roles, "task_identities": dict(cfg.airflow.task_identities),
                           "secrets_prefix": cfg.airflow.secrets_prefix if uses_secret_manager else ""}, after_apis)
# Images are pulled by the kubelet with the node account; no pod account needs registry access.
registry = Registry(name, {"project": project, "location": region, **cfg.registry.as_args(), "reader_members": [
    pulumi.Output.concat("serviceAccount:", identity.node_service_account_email)]}, after_apis)
database = Database(name, {"project": project, "region": region, "network_id": network.network_id,
                           "labels": cfg.labels, "pause_managed": paused_by_schedule, **cfg.database.as_args()},
                    pulumi.ResourceOptions(depends_on=[apis.ready, network.private_services_connection],
                                           protect=cfg.database.pulumi_protect))
cluster = Cluster(name, {"project": project, "network_id": network.network_id, "subnet_id": network.subnet_id,
                         "master_cidr": cfg.network.master_cidr, "labels": cfg.labels,
                         "node_service_account": identity.node_service_account_email,
                         "pause_managed": paused_by_schedule, **cfg.cluster.as_args()},
                  after_apis)
workload_identity = WorkloadIdentityBindings(f"{name}-wi", {
    "workload_pool": cluster.workload_pool, "namespace": cfg.airflow.namespace,
    "bindings": {AIRFLOW_KSA: identity.airflow_service_account_name,
                 WORKER_KSA: identity.worker_service_account_name,
                 **{task_ksa(i): gsa for i, gsa in identity.task_service_account_names.items()}},
    # Stacks created before the bindings moved out of Identity keep theirs (no delete after create).
    "aliases": {AIRFLOW_KSA: [{"name": f"{name}-airflow-wi", "parent_urn": identity.urn}],
                WORKER_KSA: [{"name": f"{name}-worker-wi", "parent_urn": identity.urn}]}}, after_apis)
front_door = FrontDoor(name, {"project": project, "host": ui.ui_host, "dns_zone": ui.ui_dns_zone,
                                "labels": cfg.labels}, after_apis) if ui.enabled else None
airflow = AirflowWorkload(name, {
    "settings": settings_args(cfg.airflow), "database_connection_name": database.connection_name,
    "database_name": database.database_name, "database_user": database.user_name,
    "database_password": database.password, "airflow_service_account": identity.airflow_service_account_email,
    "worker_service_account": identity.worker_service_account_email, "logs_bucket_url": logs.url,
    **({"front_door": {"address_name": front_door.address_name,
                       "certificate_map_name": front_door.certificate_map_name}} if front_door else {}),
    "protect_fernet_key": cfg.database.pulumi_protect,  # the database is unreadable without it
    "task_service_accounts": {task_ksa(i): email for i, email in identity.task_service_account_emails.items()}},
    pulumi.ResourceOptions(providers=[cluster.provider], depends_on=[workload_identity]))  # bindings before pods
monitoring = Monitoring(f"{name}-monitoring", {
    "project": project, "cluster_name": cluster.name, "namespace": cfg.airflow.namespace,
    "sql_instance_name": database.instance_name, "alert_emails": cfg.alert_emails, "title": f"{name} {cfg.environment}",
    **({"max_connections": cfg.database.max_connections} if cfg.database.max_connections else {})}, after_apis)
if cfg.airflow.ui_access:  # IAP lets these members through; the api-server maps them to Airflow roles
    UiAccess(f"{name}-ui-access", {"project": project, "access": dict(cfg.airflow.ui_access),
                                   "host": ui.ui_host}, after_apis)

schedule = paused_by_schedule and ActiveHoursSchedule(name, {
    "project": project, "region": region, "cluster_location": cfg.cluster.location, "cluster_name": cluster.name,
    "node_pools": cluster.node_pools, "instance_name": database.instance_name, "namespace": cfg.airflow.namespace,
    "active_hours": str(cfg.pause.active_hours or ""), "paused": cfg.pause.paused,
    "drain_minutes": cfg.pause.drain_minutes},
    after_apis)

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
pulumi.export("monitoring_dashboard", monitoring.dashboard_id)
if schedule:
    pulumi.export("wake_command", schedule.wake_command)
if front_door:
    pulumi.export("ui_url", f"https://{ui.ui_host}")
    pulumi.export("ui_address", front_door.address)
    pulumi.export("ui_dns_record", front_door.dns_record)
