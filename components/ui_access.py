"""IAP access for the people and CI accounts of `airflow-gke:uiAccess`, and the IAP switch of the UI's backend.

Who reaches the api-server is decided twice: IAP lets through only members holding
roles/iap.httpsResourceAccessor (here), and the api-server's auth manager maps the identity IAP signed to an
Airflow role (auth/airflow_gke_auth_manager.py), refusing anyone the map does not name.

Which IAP resource the grant is on. The narrowest, WebBackendServiceIamMember
(projects/P/iap_web/compute/services/SERVICE), needs the backend service's name, and GKE Gateway creates and
names that service itself from the Gateway/HTTPRoute/Service (not Pulumi), so it is unknown before the
first deploy. The next level is WebTypeComputeIamMember (projects/P/iap_web/compute: every IAP-protected
global backend service of the project, not App Engine), rather than WebIamMember (projects/P/iap_web: also
App Engine). Sources: pulumi-gcp 10.2.0 pulumi_gcp/iap/web_type_compute_iam_member.py (import id
`projects/{{project}}/iap_web/compute`); terraform-provider-google google/services/iap/iam_iap_web_type_compute.go;
IAP resource hierarchy https://cloud.google.com/iap/docs/managing-access#resource_hierarchy.
When the UI's host is known (the front door), an IAM condition `request.host == HOST` narrows the grant to
this UI: IAP evaluates request.host/request.path in conditions on its resources
(https://cloud.google.com/iap/docs/cloud-iap-context-aware-access-howto, "hostname and path conditions").

The IAP switch itself is the GCPBackendPolicy's `spec.default.iap` (networking.gke.io/v1): without an OAuth
client, GKE uses the Google-managed client (GKE "Configure Gateway resources using Policies", Configure IAP:
`oauth2ClientSecret` and `clientID` optional from GKE 1.29.9-gke.1251000;
https://cloud.google.com/kubernetes-engine/docs/how-to/configure-gateway-resources#configure_iap). The
Google-managed client admits only the organization's users in a browser; programmatic callers use a
service account (IAP checks its signed ID token; https://cloud.google.com/iap/docs/authentication-howto).
"""

import hashlib
import re
from typing import Mapping, NotRequired, Optional, Sequence, TypedDict

import pulumi
import pulumi_gcp as gcp

from .common import child_options, type_token
from .services import IAP_API

IAP_ACCESSOR_ROLE = "roles/iap.httpsResourceAccessor"
# The api-server asks it whether a person is in a `group:` member (auth/airflow_gke_groups.py); its calls are
# billed to and enabled on the project of the caller's service account, this one.
CLOUD_IDENTITY_API = "cloudidentity.googleapis.com"


def ui_access_apis(access: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The APIs sign-in needs: none without members, IAP with any, Cloud Identity too with a group."""
    members = members_of(tuple(access.items()))
    if not members:
        return ()
    return (IAP_API, *((CLOUD_IDENTITY_API,) if any(m.startswith("group:") for m in members) else ()))


def members_of(access: Sequence[tuple[str, Sequence[str]]]) -> tuple[str, ...]:
    """Every member of uiAccess once: IAP access does not depend on the Airflow role."""
    return tuple(dict.fromkeys(m for _, members in access for m in members))


def grant_name(prefix: str, member: str) -> str:
    """A stable, readable resource name per member (a changed member is a new grant)."""
    kind, _, value = member.partition(":")
    slug = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")[:40]
    return f"{prefix}-iap-{kind.lower()}-{slug}-{hashlib.sha256(member.encode()).hexdigest()[:6]}"


def host_condition(host: str) -> Optional[dict]:
    """IAM condition that limits a grant to requests for `host` (None: no host known, project-wide)."""
    if not host:
        return None
    return {"title": "airflow-ui-host", "description": "IAP access to the Airflow UI host only",
            "expression": f'request.host == "{host}"'}


def iap_grants(access: Sequence[tuple[str, Sequence[str]]], host: str = "") -> list[dict]:
    """The WebTypeComputeIamMember args, one per member."""
    condition = host_condition(host)
    return [{"member": m, "role": IAP_ACCESSOR_ROLE, **({"condition": condition} if condition else {})}
            for m in members_of(access)]


class UiAccessArgs(TypedDict):
    project: pulumi.Input[str]
    """GCP project id of the IAP-protected backend services."""
    access: Mapping[str, Sequence[str]]
    """Airflow role -> IAM members (`user:`, `group:`, `domain:`, `serviceAccount:`); each member gets IAP access."""
    host: NotRequired[str]
    """The UI's host: the grants are limited to requests for it; "" or missing: project-wide."""


class UiAccess(pulumi.ComponentResource):
    """One IAP accessor grant per uiAccess member."""

    def __init__(self, name: str, args: UiAccessArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("UiAccess"), name, {}, opts)
        access = tuple((role, tuple(members)) for role, members in args["access"].items())
        self.grants = [
            gcp.iap.WebTypeComputeIamMember(grant_name(name, grant["member"]), project=args["project"],
                                            **grant, opts=child_options(self, opts))
            for grant in iap_grants(access, args.get("host", ""))
        ]
        self.register_outputs({"members": [g["member"] for g in iap_grants(access)]})
