"""`Monitoring`: the stack's Cloud Monitoring dashboard, its alert policies and who they notify.

One alert policy with one PromQL condition ORs every check (monitoring_specs.py); its documentation, and at
length docs/operations.md ("Alerts"), says what each check means and the first three things to check."""

from typing import NotRequired, Optional, Sequence, TypedDict

import pulumi
import pulumi_gcp as gcp

from .common import child_options, type_token
from .monitoring_specs import Scope, alert_documentation, alert_query, checks, dashboard_json

NOBODY_TOLD = ("airflow-gke:alertEmails is empty: the alert policies exist but notify nobody. "
               "Fix: pulumi config set --path 'airflow-gke:alertEmails[0]' oncall@example.com")


class MonitoringArgs(TypedDict):
    project: pulumi.Input[str]
    """GCP project id the dashboard, policies and channels live in (the cluster's and the database's)."""
    cluster_name: pulumi.Input[str]
    """GKE cluster name: GMP and GKE system metrics carry it, so the queries see this stack only."""
    namespace: str
    """Kubernetes namespace of the Airflow workload."""
    sql_instance_name: pulumi.Input[str]
    """Cloud SQL instance name (Cloud SQL metrics' database_id is PROJECT:INSTANCE)."""
    max_connections: NotRequired[int]
    """The tier's max_connections (components/config/connection_budget.py); unset: no connection alert."""
    alert_emails: Sequence[str]
    """Addresses every policy notifies (one email channel each); empty: nobody is told, and a warning says so."""
    title: str
    """Dashboard title and policy name prefix, e.g. the stack's namePrefix and environment."""


class Monitoring(pulumi.ComponentResource):
    dashboard_id: pulumi.Output[str]
    """Id of the Cloud Monitoring dashboard."""
    alert_policy_names: pulumi.Output[list[str]]
    """Resource names of the alert policies (one: every check in one condition)."""
    notification_channel_ids: pulumi.Output[list[str]]
    """Ids of the e-mail notification channels (one per alertEmails address)."""

    def __init__(self, name: str, args: MonitoringArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("Monitoring"), name, {}, opts)
        scope = pulumi.Output.all(args["project"], args["cluster_name"], args["sql_instance_name"]).apply(
            lambda v: Scope(project=v[0], cluster=v[1], namespace=args["namespace"], sql_instance=v[2]))
        channels = [gcp.monitoring.NotificationChannel(
            f"{name}-email-{index}", project=args["project"], type="email",
            display_name=f"{args['title']} alerts: {email}", labels={"email_address": email},
            opts=child_options(self, opts)) for index, email in enumerate(args["alert_emails"])]
        if not channels:
            pulumi.log.warn(NOBODY_TOLD, resource=self)

        dashboard = gcp.monitoring.Dashboard(
            f"{name}-dashboard", project=args["project"],
            dashboard_json=scope.apply(lambda s: dashboard_json(f"Airflow ({args['title']})", s,
                                                                 args.get("max_connections"))),
            opts=child_options(self, opts))
        # ONE policy with ONE condition: Cloud Monitoring bills $1.50 a month per condition, paused or not
        # (https://cloud.google.com/monitoring/alerts/cost-control recommends consolidating); the `check` label
        # of each series says which check fired (monitoring_specs.alert_query).
        found = scope.apply(lambda s: checks(s, args.get("max_connections")))
        policy = gcp.monitoring.AlertPolicy(
            f"{name}-alerts", project=args["project"], combiner="OR", severity="ERROR",
            display_name=f"{args['title']}: Airflow checks",
            conditions=[gcp.monitoring.AlertPolicyConditionArgs(
                display_name="Airflow, GKE and Cloud SQL checks (see the check label)",
                condition_prometheus_query_language=gcp.monitoring.AlertPolicyConditionConditionPrometheusQueryLanguageArgs(
                    query=found.apply(alert_query), duration="0s", evaluation_interval="60s",
                    alert_rule="airflow_checks", rule_group="airflow"))],
            documentation=gcp.monitoring.AlertPolicyDocumentationArgs(
                mime_type="text/markdown",
                content=found.apply(lambda f: alert_documentation(f, args["namespace"]))),
            notification_channels=[c.id for c in channels],
            alert_strategy=gcp.monitoring.AlertPolicyAlertStrategyArgs(auto_close="86400s"),
            opts=child_options(self, opts))

        self.dashboard_id = dashboard.id
        self.alert_policy_names = pulumi.Output.all(policy.name)
        self.notification_channel_ids = pulumi.Output.all(*[c.id for c in channels])
        self.register_outputs({"dashboard_id": self.dashboard_id, "alert_policy_names": self.alert_policy_names,
                               "notification_channel_ids": self.notification_channel_ids})

