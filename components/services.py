"""Enable the Google APIs the stack needs, and wait until the enablement has propagated."""

from __future__ import annotations

from typing import Optional, Sequence, TypedDict

import pulumi
import pulumi_gcp as gcp
import pulumiverse_time as time

from .common import child_options, type_token

REQUIRED_APIS = (
    "compute.googleapis.com",
    "container.googleapis.com",
    "containerfilesystem.googleapis.com",  # image streaming
    "sqladmin.googleapis.com",
    "servicenetworking.googleapis.com",
    "artifactregistry.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "storage.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
)
# Only with airflow-gke:uiAccess: the IAP grants (components/ui_access.py) call it.
IAP_API = "iap.googleapis.com"


# APIs the program cannot enable itself: enabling any API goes through Service Usage, and the provider
# reads the project through Cloud Resource Manager. Enable them once by hand (docs/deploy.md, Prerequisites).
PREREQUISITE_APIS = (
    "cloudresourcemanager.googleapis.com",
    "serviceusage.googleapis.com",
)

# Enabling an API returns before every backend serves it: a resource created at once fails now and then
# with "API has not been used in project ... wait a few minutes for the action to propagate"
# (hashicorp/terraform-provider-google#14720, #11195). The provider guide's answer is a fixed wait after
# enablement: https://registry.terraform.io/providers/hashicorp/google/latest/docs/guides/google_project_service#using-the-time-provider
PROPAGATION_WAIT = "60s"


class ProjectServicesArgs(TypedDict):
    project: pulumi.Input[str]
    """GCP project id in which to enable the APIs."""
    services: Sequence[str]
    """API service names, e.g. `container.googleapis.com`."""


class ProjectServices(pulumi.ComponentResource):
    """Enables Google APIs; `disable_on_destroy=False` so a destroy never breaks other users of the project.

    Resources that use an API depend on `ready`, a Sleep that starts once every API is enabled."""

    services: list[gcp.projects.Service]
    ready: time.Sleep

    def __init__(self, name: str, args: ProjectServicesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("ProjectServices"), name, {}, opts)
        self.services = [
            gcp.projects.Service(
                f"{name}-{service.split('.')[0]}",
                project=args["project"],
                service=service,
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=child_options(self, opts),
            )
            for service in args["services"]
        ]
        # The wait runs again only when the set of APIs changes, not on every `pulumi up`.
        self.ready = time.Sleep(
            f"{name}-propagation", create_duration=PROPAGATION_WAIT,
            triggers={"services": ",".join(sorted(args["services"]))},
            opts=child_options(self, opts, depends_on=self.services))
        self.register_outputs({"services": [s.service for s in self.services]})
