"""`Monitoring`: the stack's Cloud Monitoring dashboard, its alert policies and who they notify.

The conditions and charts are in monitoring_specs.py; docs/operations.md ("Alerts") says what each alert
means and the first three things to check."""

from __future__ import annotations

from typing import Optional, Sequence, TypedDict

import pulumi
import pulumi_gcp as gcp

from .common import child_options, type_token
from .monitoring_specs import Alert, Scope, alerts, dashboard_json

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
    max_connections: Optional[int]
    """The tier's max_connections (components/config/connection_budget.py); None: no connection alert."""
    alert_emails: Sequence[str]
    """Addresses every policy notifies (one email channel each); empty: nobody is told, and a warning says so."""
    title: str
    """Dashboard title and policy name prefix, e.g. the stack's namePrefix and environment."""


class Monitoring(pulumi.ComponentResource):
    dashboard_id: pulumi.Output[str]
    alert_policy_names: list[pulumi.Output[str]]
    notification_channel_ids: list[pulumi.Output[str]]

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
                                                                 args["max_connections"])),
            opts=child_options(self, opts))
        # The keys do not depend on outputs, so the set of policies is known at preview.
        keys = [a.key for a in alerts(Scope("", "", "", ""), args["max_connections"])]
        policies = [gcp.monitoring.AlertPolicy(
            f"{name}-{key}", project=args["project"], combiner="OR", severity="ERROR",
            display_name=f"{args['title']}: {key}",
            conditions=scope.apply(lambda s, k=key: [_condition(_alert(s, args["max_connections"], k))]),
            documentation=gcp.monitoring.AlertPolicyDocumentationArgs(
                mime_type="text/markdown",
                content=f"See docs/operations.md, section `{key}`, for what this means and what to check first."),
            notification_channels=[c.id for c in channels],
            alert_strategy=gcp.monitoring.AlertPolicyAlertStrategyArgs(auto_close="86400s"),
            opts=child_options(self, opts)) for key in keys]

        self.dashboard_id = dashboard.id
        self.alert_policy_names = [p.name for p in policies]
        self.notification_channel_ids = [c.id for c in channels]
        self.register_outputs({"dashboard_id": self.dashboard_id, "alert_policy_names": self.alert_policy_names,
                               "notification_channel_ids": self.notification_channel_ids})


def _alert(scope: Scope, max_connections: Optional[int], key: str) -> Alert:
    return next(a for a in alerts(scope, max_connections) if a.key == key)


def _condition(alert: Alert) -> dict:
    """PromQL for GMP metrics; a threshold on a filter for Google's own (cloudsql, kubernetes.io)."""
    if alert.promql:
        return {"display_name": alert.title, "condition_prometheus_query_language": {
            "query": alert.promql, "duration": alert.duration, "evaluation_interval": "60s",
            "alert_rule": alert.key.replace("-", "_"), "rule_group": "airflow"}}
    aggregation = {"alignment_period": "300s" if alert.aligner == "ALIGN_DELTA" else "60s",
                   "per_series_aligner": alert.aligner}
    if alert.reducer:
        aggregation.update(cross_series_reducer=alert.reducer, group_by_fields=list(alert.group_by))
    return {"display_name": alert.title, "condition_threshold": {
        "filter": alert.metric_filter, "comparison": "COMPARISON_GT", "threshold_value": alert.threshold,
        "duration": alert.duration, "aggregations": [aggregation], "trigger": {"count": 1}}}
