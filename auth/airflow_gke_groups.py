"""Group membership for `group:` members of airflow-gke:uiAccess, asked of the Cloud Identity Groups API.

IAP's signed assertion names the person, not their groups, so the api-server asks Google itself, as its own
Google service account (Workload Identity): the access token comes from the GKE metadata server. Shipped in
the airflow-config ConfigMap beside airflow_gke_iap.py; standard library only (it runs in the official image).

The calls (https://cloud.google.com/identity/docs/reference/rest/v1/groups/lookup,
.../v1/groups.memberships/checkTransitiveMembership, .../v1/groups.memberships/lookup; each accepts the
cloud-platform scope the metadata server's token carries):
- `GET {api}/groups:lookup?groupKey.id=GROUP_EMAIL` -> `{"name": "groups/ID"}`;
- `GET {api}/groups/ID/memberships:checkTransitiveMembership?query=member_key_id == 'EMAIL'`
  -> `{"hasMembership": bool}` (nested groups count); Workspace Enterprise / Cloud Identity Premium only,
  403 PERMISSION_DENIED elsewhere;
- `GET {api}/groups/ID/memberships:lookup?memberKey.id=EMAIL` -> 200 for a direct member, 404 otherwise
  (every edition; nested groups are not followed).
The caller needs to see the group's members: a Workspace admin role (Groups Reader), not an IAM role
(docs/sign-in.md). Any failure other than a clear "not a member" denies the role for that request only: it is
logged and not cached, and never raised (a raised error would be a 500 for every request of that person).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, Mapping, Optional

from airflow_gke_iap import TtlCache

log = logging.getLogger(__name__)
CLOUD_IDENTITY_URL = "https://cloudidentity.googleapis.com/v1"
TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
GROUP_NAME_TTL = 3600  # a group's id never changes; an hour bounds the cost of a group recreated by name
MEMBERSHIP_TTL = 300  # removal from a group takes effect within this (docs/sign-in.md)
TOKEN_MARGIN = 60  # refresh the access token this long before it expires
TIMEOUT = 5


class GroupLookupError(Exception):
    """Google did not say whether the person is a member (the request is denied, nothing is cached)."""


def metadata_host() -> str:
    """The metadata server's host[:port], read the way google-auth reads it (GCE_METADATA_HOST, else the older
    GCE_METADATA_ROOT, else metadata.google.internal: googleapis/google-auth-library-python
    google/auth/compute_engine/_metadata.py), so a test can point it at loopback."""
    return os.environ.get("GCE_METADATA_HOST") or os.environ.get("GCE_METADATA_ROOT") or "metadata.google.internal"


def cel_string(value: str) -> str:
    """A single-quoted CEL string literal (backslash escapes: google/cel-spec doc/langdef.md, String literals):
    an apostrophe in an address must not end the query's string early."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def has_groups(role_map: Mapping[str, list]) -> bool:
    return any(str(m).startswith("group:") for members in role_map.values() for m in members)


class CloudIdentityGroups:
    """`(email, group email) -> member?` for airflow_gke_iap.role_for, with cached answers."""

    def __init__(self, api_url: str = CLOUD_IDENTITY_URL, timeout: float = TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api_url, self.timeout, self.clock = api_url.rstrip("/"), timeout, clock
        self._names = TtlCache(GROUP_NAME_TTL, clock)
        self._answers = TtlCache(MEMBERSHIP_TTL, clock)
        self._no_transitive = TtlCache(GROUP_NAME_TTL, clock)  # the edition refused it: retried hourly
        self._token: tuple[float, str] | None = None
        self._lock = threading.Lock()

    def __call__(self, email: str, group: str) -> bool:
        email, group = email.lower(), group.lower()
        cached = self._answers.get((email, group))
        if cached is not None:
            return cached
        try:
            answer = self._is_member(email, group)
        except GroupLookupError as error:
            log.warning("IAP sign-in: could not tell whether %s is in group %s, no role from it for this "
                        "request: %s", email, group, error)
            return False
        self._answers.put((email, group), answer)
        return answer

    def _is_member(self, email: str, group: str) -> bool:
        name = self._group_name(group)
        if self._no_transitive.get("denied") is None:
            query = urllib.parse.urlencode({"query": f"member_key_id == {cel_string(email)}"},
                                           quote_via=urllib.parse.quote)
            status, body = self._get(f"{name}/memberships:checkTransitiveMembership?{query}")
            if status == 200:
                return body.get("hasMembership") is True
            if status != 403:
                raise GroupLookupError(f"checkTransitiveMembership answered {status}")
            self._no_transitive.put("denied", True)
            log.warning("IAP sign-in: Cloud Identity refused checkTransitiveMembership (403: it needs Workspace "
                        "Enterprise or Cloud Identity Premium); only direct members of uiAccess groups get a "
                        "role, nested groups are not followed")
        status, _ = self._get(f"{name}/memberships:lookup?" + urllib.parse.urlencode({"memberKey.id": email}))
        if status in (200, 404):
            return status == 200
        raise GroupLookupError(f"memberships:lookup answered {status}")

    def _group_name(self, group: str) -> str:
        name = self._names.get(group)
        if name is None:
            status, body = self._get("groups:lookup?" + urllib.parse.urlencode({"groupKey.id": group}))
            name = body.get("name") if status == 200 else None
            if not isinstance(name, str) or not name.startswith("groups/"):
                hint = " (has the api-server's service account the Groups Reader admin role?)" if status in (
                    403, 404) else ""
                raise GroupLookupError(f"groups:lookup of {group} answered {status}{hint}")
            self._names.put(group, name)
        return name

    def _get(self, path: str) -> tuple[int, dict]:
        request = urllib.request.Request(f"{self.api_url}/{path}",
                                         headers={"Authorization": f"Bearer {self._access_token()}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as error:
            if error.code == 401:  # a token revoked or expired early: fetch a new one next time
                self._token = None
            return error.code, {}
        except (OSError, ValueError) as error:  # URLError, timeouts, a body that is not JSON
            raise GroupLookupError(f"Cloud Identity unreachable: {error}") from error

    def _access_token(self) -> str:
        with self._lock:
            if self._token and self._token[0] > self.clock():
                return self._token[1]
            request = urllib.request.Request(f"http://{metadata_host()}{TOKEN_PATH}",
                                             headers={"Metadata-Flavor": "Google"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    body = _json(response.read())
                token, lifetime = body["access_token"], float(body.get("expires_in", 0))
            except (OSError, ValueError, KeyError, TypeError) as error:
                raise GroupLookupError(f"no access token from the metadata server: {error}") from error
            self._token = (self.clock() + max(lifetime - TOKEN_MARGIN, 0), token)
            return token


def _json(raw: bytes) -> dict:
    value = json.loads(raw or b"{}")
    return value if isinstance(value, dict) else {}


def group_check(role_map: Mapping[str, list], api_url: str) -> Optional[CloudIdentityGroups]:
    """The check to hand role_for, or None when no uiAccess member is a group (no API call, ever)."""
    return CloudIdentityGroups(api_url) if has_groups(role_map) else None
