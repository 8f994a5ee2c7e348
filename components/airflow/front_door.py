"""The Kubernetes half of the UI's public front door (airflow-gke:uiHost): a GKE Gateway (global external
Application Load Balancer) on the stack's static IP and Certificate Manager map (components/frontdoor.py), an
HTTPS route to the UI Service, an HTTP route that only redirects to HTTPS, and GKE's policies for the UI
Service's backend (health check; backend settings, where sign-in with IAP goes).

GKE docs these follow: https://cloud.google.com/kubernetes-engine/docs/how-to/deploying-gateways,
.../secure-gateway (certmap annotation, HTTP-to-HTTPS redirect), .../configure-gateway-resources
(HealthCheckPolicy, GCPBackendPolicy). The rendered objects are checked against the CRDs in tests/crds/.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .pod import iap_sign_in
from .pod.airflow_processes import HEALTH_PATH
from .workload_spec import UI_SERVICE_NAME, UI_SERVICE_PORT, WorkloadSpec, metadata

GATEWAY_NAME = "airflow-ui"
GATEWAY_CLASS = "gke-l7-global-external-managed"
GATEWAY_API = "gateway.networking.k8s.io/v1"
GKE_NETWORKING_API = "networking.gke.io/v1"
CERTMAP_ANNOTATION = "networking.gke.io/certmap"
HTTPS_LISTENER, HTTP_LISTENER = "https", "http"
HTTPS_ROUTE_NAME, REDIRECT_ROUTE_NAME = "airflow-ui", "airflow-ui-https-redirect"
# Where Google's front ends and health checkers reach the pods from (container-native load balancing: the
# packets arrive at the pod IPs from these ranges):
# https://cloud.google.com/load-balancing/docs/health-check-concepts#ip-ranges and
# https://cloud.google.com/kubernetes-engine/docs/how-to/deploying-gateways (firewall rules for proxies).
GOOGLE_FRONT_END_RANGES = ("35.191.0.0/16", "130.211.0.0/22")
# The UI keeps long requests (log streaming) open; the load balancer's default backend timeout is 30s.
BACKEND_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class FrontDoorNames:
    """The Google Cloud objects the Gateway refers to by name (components/frontdoor.py)."""
    address_name: str
    certificate_map_name: str


def _service_ref() -> dict:
    return {"group": "", "kind": "Service", "name": UI_SERVICE_NAME}


def gateway(spec: WorkloadSpec, names: FrontDoorNames) -> dict:
    host = spec.settings.front_door.ui_host
    listeners = [{"name": name, "protocol": protocol, "port": port, "hostname": host,
                  "allowedRoutes": {"namespaces": {"from": "Same"}}}
                 for name, protocol, port in ((HTTPS_LISTENER, "HTTPS", 443), (HTTP_LISTENER, "HTTP", 80))]
    # The HTTPS listener has no `tls`: its certificate comes from the Certificate Manager map the annotation
    # names (GKE's secure-gateway doc); the HTTP listener carries only the redirect route below.
    return {"apiVersion": GATEWAY_API, "kind": "Gateway",
            "metadata": metadata(spec, GATEWAY_NAME, "ui", {CERTMAP_ANNOTATION: names.certificate_map_name}),
            "spec": {"gatewayClassName": GATEWAY_CLASS, "listeners": listeners,
                     "addresses": [{"type": "NamedAddress", "value": names.address_name}]}}


def https_route(spec: WorkloadSpec) -> dict:
    return {"apiVersion": GATEWAY_API, "kind": "HTTPRoute",
            "metadata": metadata(spec, HTTPS_ROUTE_NAME, "ui"),
            "spec": {"parentRefs": [{"name": GATEWAY_NAME, "sectionName": HTTPS_LISTENER}],
                     "hostnames": [spec.settings.front_door.ui_host],
                     "rules": [{"backendRefs": [{"name": UI_SERVICE_NAME, "port": UI_SERVICE_PORT}]}]}}


def redirect_route(spec: WorkloadSpec) -> dict:
    """Plain HTTP never reaches Airflow: every request on port 80 gets a 301 to the same URL over HTTPS."""
    return {"apiVersion": GATEWAY_API, "kind": "HTTPRoute",
            "metadata": metadata(spec, REDIRECT_ROUTE_NAME, "ui"),
            "spec": {"parentRefs": [{"name": GATEWAY_NAME, "sectionName": HTTP_LISTENER}],
                     "hostnames": [spec.settings.front_door.ui_host],
                     "rules": [{"filters": [{"type": "RequestRedirect",
                                             "requestRedirect": {"scheme": "https", "statusCode": 301}}]}]}}


def health_check_policy(spec: WorkloadSpec) -> dict:
    """The load balancer probes the api-server's own health endpoint (unauthenticated in Airflow 3) on the
    port it serves on; without this it would probe `/` on the serving port and expect a 200."""
    return {"apiVersion": GKE_NETWORKING_API, "kind": "HealthCheckPolicy",
            "metadata": metadata(spec, UI_SERVICE_NAME, "ui"),
            "spec": {"default": {"checkIntervalSec": 15, "timeoutSec": 5, "healthyThreshold": 1,
                                 "unhealthyThreshold": 2,
                                 "config": {"type": "HTTP", "httpHealthCheck": {
                                     "portSpecification": "USE_SERVING_PORT", "requestPath": HEALTH_PATH}}},
                     "targetRef": _service_ref()}}


def identity_aware_proxy(spec: WorkloadSpec) -> Optional[dict]:
    """spec.default.iap of the backend policy: IAP in front of the UI when airflow-gke:uiAccess names anyone
    (pod/iap_sign_in.py); the policy pack flags an external Gateway's backend without it."""
    return iap_sign_in.backend_policy_iap(spec.settings)


def backend_policy(spec: WorkloadSpec) -> dict:
    default: dict = {"timeoutSec": BACKEND_TIMEOUT_SECONDS}
    iap = identity_aware_proxy(spec)
    if iap is not None:
        default["iap"] = iap
    return {"apiVersion": GKE_NETWORKING_API, "kind": "GCPBackendPolicy",
            "metadata": metadata(spec, UI_SERVICE_NAME, "ui"),
            "spec": {"default": default, "targetRef": _service_ref()}}


# (apiVersion, kind, name) of what front_door_objects returns, in its order: Pulumi declares each object
# before the address and map names (outputs) are known.
OBJECTS = ((GATEWAY_API, "Gateway", GATEWAY_NAME), (GATEWAY_API, "HTTPRoute", HTTPS_ROUTE_NAME),
           (GATEWAY_API, "HTTPRoute", REDIRECT_ROUTE_NAME), (GKE_NETWORKING_API, "HealthCheckPolicy", UI_SERVICE_NAME),
           (GKE_NETWORKING_API, "GCPBackendPolicy", UI_SERVICE_NAME))


def front_door_objects(spec: WorkloadSpec, names: FrontDoorNames) -> list[dict]:
    """Every Kubernetes object of the front door; none without airflow-gke:uiHost."""
    if not spec.settings.front_door.enabled:
        return []
    return [gateway(spec, names), https_route(spec), redirect_route(spec), health_check_policy(spec),
            backend_policy(spec)]
