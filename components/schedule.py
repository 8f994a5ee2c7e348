"""`ActiveHoursSchedule`: the stack sleeps outside its active hours, with no CI and no laptop involved.

Two Cloud Scheduler jobs ("pause" at the window's end, "resume" at its start, cron in the window's time zone:
Cloud Scheduler evaluates the schedule in `time_zone` and follows its DST,
https://cloud.google.com/scheduler/docs/configuring/cron-job-schedules) start an execution of one Cloud
Workflows workflow (components/pause_workflow.py) through the Workflow Executions API
(https://cloud.google.com/workflows/docs/schedule-workflow). The workflow runs as its own service account,
holding a custom role with exactly the permissions its calls need; the jobs run as a second account that may
only start workflow executions (roles/workflows.invoker).

`paused: true` (a holiday): the resume job is paused (Job.paused) and the pause job fires every hour, so the
stack goes to sleep within the hour of `pulumi up` and stays asleep even if someone wakes it by hand.
"""

from __future__ import annotations

import base64
import json
from typing import Optional, Sequence, TypedDict

import pulumi
import pulumi_gcp as gcp

from .common import child_options, type_token
from .config.schedule import ActiveHours
from .pause_workflow import PauseTarget, Pool, permissions, workflow_definition

# Enabled only on a stack with a schedule (__main__.py); the drain's Cloud Monitoring is in REQUIRED_APIS already.
APIS = ("cloudscheduler.googleapis.com", "workflows.googleapis.com")
INVOKER_ROLE = "roles/workflows.invoker"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
PAUSED_PAUSE_CRON = "0 * * * *"  # `paused`: put the stack back to sleep every hour



def pause_role_id(name_prefix: str) -> str:
    """Id of the pause workflow's custom role (ids allow letters, digits, '_' and '.'); the CI bootstrap grants
    the same name (components/ci_identity.py pause_roles_of_stacks)."""
    return f"{name_prefix.replace('-', '_')}_pause"

class ActiveHoursScheduleArgs(TypedDict):
    project: pulumi.Input[str]
    """GCP project id."""
    region: str
    """Region of the workflow and the Scheduler jobs."""
    cluster_location: str
    """Zone or region of the GKE cluster."""
    cluster_name: pulumi.Input[str]
    """The cluster whose node pools are paused."""
    node_pools: Sequence[tuple[pulumi.Input[str], int, int]]
    """(name, autoscaler min, autoscaler max) per node pool: scaled to 0 at a pause, restored at a resume."""
    instance_name: pulumi.Input[str]
    """Cloud SQL instance stopped at a pause (activationPolicy NEVER) and started at a resume (ALWAYS)."""
    namespace: str
    """Kubernetes namespace of the task pods the pause waits for."""
    active_hours: Optional[ActiveHours]
    """The weekly window the stack is awake; None: only `paused` decides."""
    paused: bool
    """Stay asleep until set back to false."""
    drain_minutes: int
    """How long a pause waits for running task pods; 0: not at all."""


def job_body(action: str) -> str:
    """A Workflow Executions `executions.create` body carrying {"action": ...} as the workflow's argument
    (https://cloud.google.com/workflows/docs/reference/executions/rest/v1/projects.locations.workflows.executions/create),
    base64 as Cloud Scheduler's http_target.body takes it."""
    return base64.b64encode(json.dumps({"argument": json.dumps({"action": action})}).encode()).decode()


def job_schedules(active_hours: Optional[ActiveHours], paused: bool) -> dict[str, tuple[str, str, bool]]:
    """action -> (cron, time zone, paused) of each Scheduler job."""
    jobs: dict[str, tuple[str, str, bool]] = {}
    zone = active_hours.tz if active_hours else "Etc/UTC"
    jobs["pause"] = (PAUSED_PAUSE_CRON if paused else active_hours.cron("pause"), zone, False)
    if active_hours is not None:
        jobs["resume"] = (active_hours.cron("resume"), zone, paused)
    return jobs


class ActiveHoursSchedule(pulumi.ComponentResource):
    workflow_name: pulumi.Output[str]
    service_account_email: pulumi.Output[str]
    wake_command: pulumi.Output[str]

    def __init__(self, name: str, args: ActiveHoursScheduleArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("ActiveHoursSchedule"), name, {}, opts)
        project, region = args["project"], args["region"]
        child = lambda **extra: child_options(self, opts, **extra)  # noqa: E731

        wake = f"gcloud workflows run {name}-pause --location {region} --data '{{\"action\":\"resume\"}}'"
        # The program no longer starts the database or sizes the pools; while paused, a change that needs a
        # running instance (dbTier, flags) or new pods waits on something asleep. Said at every preview.
        pulumi.log.warn(f"{name}: the stack sleeps outside {args.get('active_hours') or 'nothing (paused: true)'}"
                        f"{' and is paused' if args['paused'] else ''}. Before a `pulumi up` that changes the "
                        f"database or the Airflow workload while it sleeps, wake it: {wake} "
                        f"(docs/operations.md, Pausing outside working hours)", resource=self)
        runner = gcp.serviceaccount.Account(f"{name}-pause", project=project, account_id=f"{name}-pause"[:30],
                                            display_name="Pauses and resumes the stack (Workflows)", opts=child())
        role = gcp.projects.IAMCustomRole(
            f"{name}-pause-role", project=project, role_id=pause_role_id(name),
            title=f"{name}: pause and resume", permissions=list(permissions()),
            description="Node pool autoscaling and size, Cloud SQL activation policy, task-pod metrics: "
                        "the calls of the pause workflow (components/pause_workflow.py)", opts=child())
        grant = gcp.projects.IAMMember(f"{name}-pause-grant", project=project, role=role.name,
                                       member=runner.member, opts=child())

        source = pulumi.Output.all(project, args["cluster_name"], args["instance_name"],
                                   [pool[0] for pool in args["node_pools"]]).apply(
            lambda parts: workflow_definition(PauseTarget(
                project=parts[0], location=args["cluster_location"], cluster=parts[1], instance=parts[2],
                pools=tuple(Pool(pool_name, low, high)
                            for pool_name, (_, low, high) in zip(parts[3], args["node_pools"])),
                namespace=args["namespace"], drain_minutes=args["drain_minutes"])))
        workflow = gcp.workflows.Workflow(
            f"{name}-pause", project=project, region=region, name=f"{name}-pause",
            description="Pause (drain, node pools to 0, Cloud SQL stopped) or resume the stack",
            service_account=runner.email, source_contents=source,
            deletion_protection=False,  # configuration only: re-created from the program
            opts=child(depends_on=[grant]))

        trigger = gcp.serviceaccount.Account(
            f"{name}-pause-trigger", project=project, account_id=f"{name}-pause-trigger"[:30],
            display_name="Cloud Scheduler: starts the pause workflow", opts=child())
        # pulumi-gcp 10.2.0 has no workflow-level IAM resource, so the invoker role is on the project: it lets
        # the account start executions of workflows and nothing else.
        invoker = gcp.projects.IAMMember(f"{name}-pause-invoker", project=project, role=INVOKER_ROLE,
                                         member=trigger.member, opts=child())
        executions = pulumi.Output.concat("https://workflowexecutions.googleapis.com/v1/", workflow.id, "/executions")
        for action, (cron, zone, job_paused) in job_schedules(args.get("active_hours"), args["paused"]).items():
            gcp.cloudscheduler.Job(
                f"{name}-{action}", project=project, region=region, name=f"{name}-{action}",
                description=f"{action} the stack ({args.get('active_hours') or 'paused'})",
                schedule=cron, time_zone=zone, paused=job_paused, attempt_deadline="60s",
                retry_config=gcp.cloudscheduler.JobRetryConfigArgs(retry_count=3, min_backoff_duration="30s"),
                http_target=gcp.cloudscheduler.JobHttpTargetArgs(
                    uri=executions, http_method="POST", body=job_body(action),
                    headers={"Content-Type": "application/json"},
                    oauth_token=gcp.cloudscheduler.JobHttpTargetOauthTokenArgs(
                        service_account_email=trigger.email, scope=CLOUD_PLATFORM_SCOPE)),
                opts=child(depends_on=[invoker]))

        self.workflow_name = workflow.name
        self.service_account_email = runner.email
        self.wake_command = pulumi.Output.concat(
            "gcloud workflows run ", workflow.name, f" --location {region} --data '{{\"action\":\"resume\"}}'")
        self.register_outputs({"workflow_name": self.workflow_name, "service_account_email": self.service_account_email,
                               "wake_command": self.wake_command})
