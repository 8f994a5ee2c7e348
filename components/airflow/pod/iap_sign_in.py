"""IAP sign-in (airflow-gke:uiAccess set): the auth manager every Airflow container loads, the modules it
ships in the ConfigMap and the role map the api-server reads. Empty uiAccess: plain FAB, nothing shipped.

The modules (auth/ at the repository root; they import Airflow, so the Pulumi program only reads them as
text) are mounted into $AIRFLOW_HOME/config, which Airflow appends to sys.path before it imports the
auth manager (airflow/settings.py `prepare_syspath_for_config_and_plugins`, 3.3.2). Every container that
gets `[core] auth_manager` gets them too, so any process that loads the auth manager (the api-server, the
FAB `airflow users` commands of the migration Job) can import it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...config import AirflowSettings
from ..workload_spec import AIRFLOW_HOME
from .shared import env_var

FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
IAP_AUTH_MANAGER = "airflow_gke_auth_manager.IapFabAuthManager"
AUTH_DIR = Path(__file__).resolve().parents[3] / "auth"
# ConfigMap keys = file names
MODULES = ("airflow_gke_iap.py", "airflow_gke_groups.py", "airflow_gke_auth_manager.py")
MODULE_DIR = f"{AIRFLOW_HOME}/config"
API_SERVER = "api-server"  # the container that serves the UI and API, so the one IAP's assertions reach


def signs_in_with_iap(settings: AirflowSettings) -> bool:
    return any(members for _, members in settings.ui_access)


def auth_manager(settings: AirflowSettings) -> str:
    return IAP_AUTH_MANAGER if signs_in_with_iap(settings) else FAB_AUTH_MANAGER


def role_map(settings: AirflowSettings) -> str:
    return json.dumps({role: list(members) for role, members in settings.ui_access}, sort_keys=True)


def sign_in_env(settings: AirflowSettings, container: str = "") -> list[dict]:
    """[iap_auth] of the Airflow processes: who gets which role (the keys come from Google's endpoint), and
    for the api-server, the only one that verifies IAP's assertions, the backend service they must name."""
    if not signs_in_with_iap(settings):
        return []
    env = [env_var("AIRFLOW__IAP_AUTH__ROLE_MAP", role_map(settings))]
    if container == API_SERVER and settings.ui_backend_service_id:
        env.append(env_var("AIRFLOW__IAP_AUTH__BACKEND_SERVICE_ID", settings.ui_backend_service_id))
    return env


def module_mounts(settings: AirflowSettings) -> list[dict]:
    if not signs_in_with_iap(settings):
        return []
    return [{"name": "config", "mountPath": f"{MODULE_DIR}/{key}", "subPath": key, "readOnly": True}
            for key in MODULES]


# The Kubernetes Secret holding a custom OAuth client's secret, under the key GKE reads (GKE "Configure Gateway
# resources using Policies", https://cloud.google.com/kubernetes-engine/docs/how-to/configure-gateway-resources
# #configure_iap: `kubectl create secret generic NAME --from-literal=key=CLIENT_SECRET`).
OAUTH_SECRET_NAME = "iap-oauth-client"
OAUTH_SECRET_KEY = "key"


def uses_custom_oauth_client(settings: AirflowSettings) -> bool:
    return signs_in_with_iap(settings) and bool(settings.iap_client_id)


def backend_policy_iap(settings: AirflowSettings) -> dict | None:
    """`spec.default.iap` of the UI's GCPBackendPolicy. Without airflow-gke:iapOAuthClientId: the Google-managed
    OAuth client (no clientID or oauth2ClientSecret: optional from GKE 1.29.9-gke.1251000, same GKE page;
    organization users, browser only, https://cloud.google.com/iap/docs/custom-oauth-configuration). With it:
    that client, its secret in OAUTH_SECRET_NAME (the CRD: both are required together)."""
    if not signs_in_with_iap(settings):
        return None
    if not uses_custom_oauth_client(settings):
        return {"enabled": True}
    return {"enabled": True, "clientID": settings.iap_client_id, "oauth2ClientSecret": {"name": OAUTH_SECRET_NAME}}


def config_map_data(settings: AirflowSettings) -> dict[str, str]:
    return {key: (AUTH_DIR / key).read_text() for key in MODULES} if signs_in_with_iap(settings) else {}
