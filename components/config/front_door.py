"""Reading and checking the public front door keys: uiHost (the HTTPS host of the UI, served by a GKE Gateway
with a Google-managed certificate) and uiDnsZone (a Cloud DNS zone the program writes its A record into)."""

from __future__ import annotations

import re

from .reader import UP_REFUSES, _Reader
from .settings import FrontDoorSettings

# A lowercase fully qualified host name: labels of letters, digits and '-', at least one dot, no wildcard
# (a Google-managed certificate with load balancer authorization cannot be a wildcard:
# https://cloud.google.com/certificate-manager/docs/domain-authorization).
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
# A Cloud DNS managed zone name: 1-63 lowercase letters, digits and '-', starting with a letter.
_ZONE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
# RFC 2606 / RFC 6761 reserved names: the committed prod stack's placeholder host. A certificate for one
# never provisions (nobody can point its DNS at the load balancer), so `pulumi up` refuses it.
_PLACEHOLDER_HOST = re.compile(r"(^|\.)(example\.(com|net|org)|example|test|invalid|localhost)$")
UI_HOST_EXAMPLE = "airflow.your-company.com"


def read_front_door(reader: _Reader, service_type: str, deploying: bool) -> FrontDoorSettings:
    host = reader.string("uiHost", "", pattern=_HOST, allowed="a lowercase host name such as airflow.example.org "
                         "(no scheme, port, path or wildcard)", example=UI_HOST_EXAMPLE)
    zone = reader.string("uiDnsZone", "", pattern=_ZONE, allowed="a Cloud DNS managed zone name (not its DNS name)",
                         example="company-public")
    if not host:
        if zone:
            reader.fail("uiDnsZone", zone, "unset while airflow-gke:uiHost is unset (there is no record to write)",
                        fix="pulumi config rm airflow-gke:uiDnsZone")
        return FrontDoorSettings()
    if service_type != "ClusterIP":
        # Two doors: the Gateway (TLS, sign-in) and a plain-HTTP load balancer beside it that bypasses both.
        reader.fail("serviceType", service_type, "ClusterIP when airflow-gke:uiHost is set (the Gateway is the "
                    "UI's one public entry)", fix="pulumi config set airflow-gke:serviceType ClusterIP")
    if _PLACEHOLDER_HOST.search(host):
        _refuse_placeholder(reader, host, deploying)
    return FrontDoorSettings(ui_host=host, ui_dns_zone=zone)


def _refuse_placeholder(reader: _Reader, host: str, deploying: bool) -> None:
    allowed = "a host name in a domain you control, not a reserved example name (RFC 2606)"
    fix = f"pulumi config set airflow-gke:uiHost {UI_HOST_EXAMPLE}  (or `pulumi config rm airflow-gke:uiHost`)"
    reader.refuse_or_warn("uiHost", host, allowed, fix, deploying, warn_note=UP_REFUSES)


def front_door_base_url(reader: _Reader, base_url: str, ui_host: str) -> str:
    """The front door's URL is where links in the UI and e-mails point (the default baseUrl). A baseUrl of
    another host or scheme would send people around IAP; a sub-path is not routed (the HTTPRoute and the
    health check serve the host's root)."""
    front_door_url = f"https://{ui_host}"
    if base_url and base_url.rstrip("/") != front_door_url:
        reader.fail("baseUrl", base_url, f"unset or {front_door_url} when airflow-gke:uiHost is {ui_host} (the "
                    "UI is served at the root of that host, over HTTPS)", fix="pulumi config rm airflow-gke:baseUrl")
    return front_door_url
