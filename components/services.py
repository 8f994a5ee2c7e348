"""Enable the Google APIs the stack needs before anything uses them."""

from __future__ import annotations

from typing import Optional, Sequence, TypedDict

import pulumi
import pulumi_gcp as gcp

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


class ProjectServicesArgs(TypedDict):
    project: pulumi.Input[str]
    """GCP project id in which to enable the APIs."""
    services: Sequence[str]
    """API service names, e.g. `container.googleapis.com`."""


class ProjectServices(pulumi.ComponentResource):
    """Enables Google APIs; `disable_on_destroy=False` so a destroy never breaks other users of the project."""

    services: list[gcp.projects.Service]

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
        self.register_outputs({"services": [s.service for s in self.services]})
