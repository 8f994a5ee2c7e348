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
from typing import Any, Mapping

from .reader import _Reader

KEY = "uiAccess"
# Lowest first: a member named under several roles (directly or through its domain) gets the highest.
AIRFLOW_ROLES = ("Viewer", "User", "Op", "Admin")
MEMBER_KINDS = ("user", "group", "serviceAccount", "domain")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
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
    IAP sits on the front door's load balancer: without airflow-gke:uiHost nobody could sign in."""
    raw = reader.raw(KEY)
    if raw is None:
        return {}
    if not has_front_door and raw not in ({}, "{}"):
        reader.fail("uiHost", "", "set when airflow-gke:uiAccess is (IAP signs people in at the front door)",
                    example="airflow.your-company.com")
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
