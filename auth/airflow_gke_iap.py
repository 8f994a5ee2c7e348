"""Verification of IAP's signed header and the e-mail -> Airflow role map (runs inside the Airflow image).

Shipped in the airflow-config ConfigMap and mounted in $AIRFLOW_HOME/config, which Airflow puts on
sys.path (airflow/settings.py `prepare_syspath_for_config_and_plugins`). Needs only PyJWT and
cryptography, both dependencies of apache-airflow-core 3.3.2 (so in the official image).

What a valid IAP assertion is (https://cloud.google.com/iap/docs/signed-headers-howto):
- header `x-goog-iap-jwt-assertion`, signed ES256 with one of the keys at
  https://www.gstatic.com/iap/verify/public_key-jwk (JWK set; the key is picked by the `kid` header),
- `iss` = https://cloud.google.com/iap, `aud` = /projects/PROJECT_NUMBER/global/backendServices/SERVICE_ID,
  `exp` in the future and `iat` in the past, `email` / `sub` the signed-in principal, `hd` its hosted domain.
GKE Gateway names the backend service itself, so the service id is not known before the first deploy: the
audience is checked as "a backend service of this project" unless `backend_service_id` pins it.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

import jwt

IAP_HEADER = "x-goog-iap-jwt-assertion"
IAP_ISSUER = "https://cloud.google.com/iap"
GOOGLE_IAP_JWKS_URL = "https://www.gstatic.com/iap/verify/public_key-jwk"
ALGORITHM = "ES256"
LEEWAY_SECONDS = 30  # clock skew between IAP and the node
ROLE_ORDER = ("Viewer", "User", "Op", "Admin")  # lowest first, as components/config/ui_access.py
REQUIRED_CLAIMS = ["exp", "iat", "aud", "iss", "sub", "email"]


class IapTokenError(jwt.InvalidTokenError):
    """The assertion is not one IAP signed for this backend (the api-server answers 403)."""


def audience_pattern(project_number: str, backend_service_id: str = "") -> re.Pattern:
    if not re.fullmatch(r"\d+", project_number or ""):
        raise ValueError(f"project number must be digits, got {project_number!r}")
    service = re.escape(backend_service_id) if backend_service_id else r"\d+"
    return re.compile(rf"/projects/{project_number}/global/backendServices/{service}")


@dataclass
class IapVerifier:
    """Verifies assertions against a JWK set fetched from `jwks_url` (cached; refetched on an unknown kid)."""

    jwks_url: str
    audience: re.Pattern
    leeway: int = LEEWAY_SECONDS
    refetch_cooldown: float = 30  # an unknown kid refetches the set at most this often (no refetch storm)
    _client: Optional[jwt.PyJWKClient] = field(default=None, repr=False)

    def signing_key(self, kid: str):
        if self._client is None:
            # The set is cached an hour; Google rotates its keys, and an unknown kid refetches it (PyJWT 2.15
            # jwks_client.py get_signing_key). http(s) URLs only, so no file:// can be named here.
            self._client = jwt.PyJWKClient(self.jwks_url, cache_jwk_set=True, lifespan=3600, timeout=10,
                                           cooldown_duration=self.refetch_cooldown)
        try:
            return self._client.get_signing_key(kid).key
        except jwt.PyJWKClientError as error:
            raise IapTokenError(f"no IAP key {kid!r}: {error}") from error

    def verify(self, token: str) -> dict:
        """The claims of a valid assertion, else IapTokenError (jwt.ExpiredSignatureError when expired)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as error:
            raise IapTokenError(f"not a JWT: {error}") from error
        if header.get("alg") != ALGORITHM:  # before any key lookup: `none` and HMAC never reach decode
            raise IapTokenError(f"algorithm {header.get('alg')!r} is not {ALGORITHM}")
        if not isinstance(header.get("kid"), str):
            raise IapTokenError("no key id")
        claims = jwt.decode(token, self.signing_key(header["kid"]), algorithms=[ALGORITHM], issuer=IAP_ISSUER,
                            leeway=self.leeway, options={"require": REQUIRED_CLAIMS, "verify_aud": False})
        if not isinstance(claims["aud"], str) or not self.audience.fullmatch(claims["aud"]):
            raise IapTokenError(f"audience {claims['aud']!r} is not this backend service")
        if not isinstance(claims["email"], str) or "@" not in claims["email"]:
            raise IapTokenError("no e-mail claim")
        return claims


# --- who gets which role ----------------------------------------------------------------------------

GroupCheck = Callable[[str, str], bool]  # (e-mail, group e-mail) -> member?


def role_for(claims: Mapping, role_map: Mapping[str, list], in_group: Optional[GroupCheck] = None) -> Optional[str]:
    """The highest Airflow role whose members include the verified principal, or None.

    user:/serviceAccount: match the e-mail; domain: the `hd` (hosted domain) claim, which IAP sets for
    Workspace / Cloud Identity accounts only, as IAM's domain: principal means (an address that merely ends
    in the domain is not enough); group: only through `in_group` (Cloud Identity), never by name. Groups are
    asked about only for roles above the one the e-mail or domain already gives (each answer is a remote call)."""
    email = str(claims.get("email", "")).lower()
    domain = str(claims.get("hd", "")).lower()
    direct = next((role for role in reversed(ROLE_ORDER)
                   if any(_names_directly(member, email, domain) for member in role_map.get(role, ()))), None)
    if in_group is None:
        return direct
    for role in reversed(ROLE_ORDER):
        if role == direct:
            break
        for member in role_map.get(role, ()):
            kind, _, value = str(member).partition(":")
            if kind == "group" and in_group(email, value.lower()):
                return role
    return direct


def _names_directly(member: str, email: str, domain: str) -> bool:
    kind, _, value = str(member).partition(":")
    value = value.lower()
    return (kind in ("user", "serviceAccount") and value == email) or (kind == "domain" and bool(domain)
                                                                        and value == domain)


def parse_role_map(raw: str) -> dict[str, list[str]]:
    value = json.loads(raw or "{}")
    if not isinstance(value, dict) or any(role not in ROLE_ORDER or not isinstance(m, list) for role, m in value.items()):
        raise ValueError(f"[iap_auth] role_map must map {', '.join(ROLE_ORDER)} to lists of members")
    return value


class TtlCache:
    """A tiny time-bounded memo (no dependency): sign-in lookups are cheap to redo, costly per request."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.clock, self._items = ttl, clock, {}

    def get(self, key):
        hit = self._items.get(key)
        if hit and hit[0] > self.clock():
            return hit[1]
        self._items.pop(key, None)
        return None

    def put(self, key, value) -> None:
        if len(self._items) > 4096:
            self._items.clear()
        self._items[key] = (self.clock() + self.ttl, value)
