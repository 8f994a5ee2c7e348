"""`airflow-gke:uiAccess`: who may sign in to the UI/API through IAP, and with which Airflow role.

An object from Airflow role to IAM members, e.g.
  {"Admin": ["user:ana@example.com"], "Viewer": ["domain:example.com"], "Op": ["serviceAccount:ci@p.iam.gserviceaccount.com"]}
Every member gets IAP access (roles/iap.httpsResourceAccessor, components/ui_access.py); the api-server maps
the e-mail IAP verified to the highest role that names it (auth/airflow_gke_iap.py). Empty: no IAP sign-in,
the UI stays behind `kubectl port-forward` with the generated admin.

Member prefixes are IAM's principal identifiers (https://cloud.google.com/iam/docs/principal-identifiers):
`user:`, `group:`, `domain:` (a Google Workspace / Cloud Identity domain) and `serviceAccount:` (CI callers).
The roles are FAB's default roles, the ones Airflow's FAB auth manager creates
(apache/airflow providers/fab/src/airflow/providers/fab/auth_manager/security_manager/override.py ROLE_CONFIGS).
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping, Optional

import pulumi

from .reader import _Reader

KEY = "uiAccess"
# Lowest first: a member named under several roles (directly or through its domain) gets the highest.
AIRFLOW_ROLES = ("Viewer", "User", "Op", "Admin")
MEMBER_KINDS = ("user", "group", "serviceAccount", "domain")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
# A Google OAuth 2.0 web client id: "<project number>-<random>.apps.googleusercontent.com" (Google Auth
# Platform > Clients; https://developers.google.com/identity/protocols/oauth2/web-server#creatingcred).
_OAUTH_CLIENT_ID = re.compile(r"^[0-9]+-[a-z0-9]+\.apps\.googleusercontent\.com$")
_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def member_problem(member: Any) -> str | None:
    """Why `member` is not an IAM member this key takes, or None."""
    if not isinstance(member, str) or ":" not in member:
        return f"a member with a kind prefix ({', '.join(k + ':' for k in MEMBER_KINDS)})"
    kind, _, value = member.partition(":")
    if kind not in MEMBER_KINDS:
        return f"a member kind among {', '.join(k + ':' for k in MEMBER_KINDS)} (not {kind}:)"
    if kind == "domain":
        return None if _DOMAIN.match(value) else "domain: followed by a lowercase DNS domain such as example.com"
    return None if _EMAIL.match(value) else f"{kind}: followed by an e-mail address"


def read_ui_access(reader: _Reader, has_front_door: bool) -> Mapping[str, tuple[str, ...]]:
    """The validated role -> members map (roles in AIRFLOW_ROLES order, members as given, de-duplicated).
    The two come together: IAP sits on the front door's load balancer (without airflow-gke:uiHost nobody could
    sign in), and a public front door without IAP would leave the password form as all that guards it (the
    policy pack's external-ui-tls-and-sign-in refuses such a stack; this says so before any resource). Judged
    on the parsed map, so `{"Admin": []}` counts as nobody."""
    problems_before = len(reader.problems)
    access = _parse_ui_access(reader, reader.raw(KEY))
    if access and not has_front_door:
        reader.fail("uiHost", "", "set when airflow-gke:uiAccess is (IAP signs people in at the front door)",
                    example="airflow.your-company.com")
    if has_front_door and not access and len(reader.problems) == problems_before:
        reader.fail(KEY, reader.raw(KEY) or {}, "at least one member when airflow-gke:uiHost is set (the public UI "
                    "signs people in with Google through IAP)",
                    fix=reader.path_fix(f"{KEY}.Admin[0]", "user:you@your-company.com"))
    return access


def _parse_ui_access(reader: _Reader, raw) -> Mapping[str, tuple[str, ...]]:
    if raw is None:
        return {}
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        value = None
    if not isinstance(value, dict):
        reader.fail(KEY, raw, f"a JSON object from Airflow role ({', '.join(AIRFLOW_ROLES)}) to a list of members",
                    fix=reader.path_fix(f"{KEY}.Viewer[0]", "user:you@example.com"))
        return {}
    access: dict[str, tuple[str, ...]] = {}
    for role, members in value.items():
        if role not in AIRFLOW_ROLES:
            reader.fail(f"{KEY}.{role}", members, f"an Airflow role among {', '.join(AIRFLOW_ROLES)} (move these "
                        "members under one of them)", fix=reader.path_fix(f"{KEY}.{role}", verb="rm"))
            continue
        if not isinstance(members, list):
            reader.fail(f"{KEY}.{role}", members, "a list of members",
                        fix=reader.path_fix(f"{KEY}.{role}[0]", "user:you@example.com"))
            continue
        for index, member in enumerate(members):
            problem = member_problem(member)
            if problem:
                reader.fail(f"{KEY}.{role}[{index}]", member, problem,
                            fix=reader.path_fix(f"{KEY}.{role}[{index}]", "user:you@example.com"))
        access[role] = tuple(dict.fromkeys(m for m in members if isinstance(m, str)))
    return {role: access[role] for role in AIRFLOW_ROLES if access.get(role)}


def all_members(access: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Every member once, whatever its role: each needs IAP access exactly once."""
    return tuple(dict.fromkeys(m for members in access.values() for m in members))


def read_iap_oauth_client(reader: _Reader, signs_in: bool) -> tuple[str, Optional[pulumi.Output[str]]]:
    """(client id, client secret) of the custom OAuth client IAP signs people in with, or ("", None) for the
    Google-managed client. The custom one is what admits users outside the organization and carries your own
    consent screen (https://cloud.google.com/iap/docs/custom-oauth-configuration); both halves or neither."""
    client_id = reader.string("iapOAuthClientId", "", pattern=_OAUTH_CLIENT_ID,
                              allowed="an OAuth 2.0 web client id (NUMBER-ID.apps.googleusercontent.com)",
                              example="123456789012-abc123.apps.googleusercontent.com")
    client_secret = reader.secret("iapOAuthClientSecret")
    if (client_id or client_secret is not None) and not signs_in:
        key = "iapOAuthClientId" if client_id else "iapOAuthClientSecret"
        reader.fail(key, client_id or "[secret]", "set only together with airflow-gke:uiAccess (the client is "
                    "IAP's, and IAP is on only when someone may sign in)", fix=f"pulumi config rm airflow-gke:{key}")
        return "", None
    if client_id and client_secret is None:
        reader.fail("iapOAuthClientSecret", "", "set when airflow-gke:iapOAuthClientId is (IAP needs the client's "
                    "secret)", fix="pulumi config set --secret airflow-gke:iapOAuthClientSecret < client-secret.txt")
    if client_secret is not None and not client_id:
        reader.fail("iapOAuthClientId", "", "set when airflow-gke:iapOAuthClientSecret is",
                    example="123456789012-abc123.apps.googleusercontent.com")
    return (client_id, client_secret) if client_id and client_secret is not None else ("", None)


BACKEND_SERVICE_KEY = "uiBackendServiceId"
# A Compute Engine resource id: an unsigned 64-bit integer the server assigns, in decimal
# (https://cloud.google.com/compute/docs/reference/rest/v1/backendServices, field `id`): at most 20 digits.
_BACKEND_SERVICE_ID = re.compile(r"^[1-9][0-9]{0,19}$")
LIST_BACKEND_SERVICES = 'gcloud compute backend-services list --filter="name~airflow-ui" --format="value(name)"'


def describe_backend_service_id(name: str = "NAME") -> str:
    return f"gcloud compute backend-services describe {name} --global --format='value(id)'"


def read_ui_backend_service_id(reader: _Reader, signs_in: bool) -> str:
    """The id of the UI's backend service that IAP's assertions must name, or "" (any of the project's).

    IAP signs `aud` = /projects/PROJECT_NUMBER/global/backendServices/SERVICE_ID
    (https://cloud.google.com/iap/docs/signed-headers-howto). GKE's Gateway controller creates that backend
    service, so its id exists only after the first `pulumi up`: unset, the api-server accepts an assertion
    IAP signed for any IAP backend of the project, which a caller inside the cluster could replay; the run
    warns until it is pinned."""
    raw = reader.raw(BACKEND_SERVICE_KEY)
    if raw is not None and not signs_in:
        reader.fail(BACKEND_SERVICE_KEY, raw, "set only together with airflow-gke:uiAccess (it pins the audience "
                    "of IAP's assertion, and IAP is on only when someone may sign in)",
                    fix=f"pulumi config rm {reader.full_key(BACKEND_SERVICE_KEY)}")
        return ""
    value = reader.string(BACKEND_SERVICE_KEY, "", pattern=_BACKEND_SERVICE_ID,
                          allowed="the numeric id of the UI's backend service (digits only, no leading zero, as "
                                  f"`{describe_backend_service_id()}` prints it)",
                          example=f'"$({describe_backend_service_id()})"')
    if signs_in and raw is None:
        pulumi.log.warn(unpinned_audience_warning(reader.full_key(BACKEND_SERVICE_KEY)))
    return value if _BACKEND_SERVICE_ID.match(value) else ""


def unpinned_audience_warning(key: str) -> str:
    return (f"{key} is unset: the api-server accepts an IAP assertion signed for ANY IAP-protected backend "
            "service of this project, so a token a user got for another IAP app of the project (one this UI's "
            "uiAccess may not name) is accepted if replayed from inside the cluster. GKE's Gateway creates the "
            "UI's backend service during the first `pulumi up`; after it, pin the audience: "
            f"{LIST_BACKEND_SERVICES} (the one whose name carries your namespace), then "
            f"pulumi config set {key} $({describe_backend_service_id()}) && pulumi up (docs/sign-in.md)")
