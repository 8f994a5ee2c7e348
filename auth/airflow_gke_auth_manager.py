"""`[core] auth_manager = airflow_gke_auth_manager.IapFabAuthManager`: FAB, signed in by IAP (runs in the image).

Airflow 3.3.2's api-server authenticates a request with `Authorization: Bearer <token>` (else the `_token`
cookie) and hands the token to `auth_manager.get_user_from_token` (airflow/api_fastapi/core_api/security.py
`get_user`, `resolve_user_from_token`: ExpiredSignatureError -> 401, other InvalidTokenError -> 403, none -> 401).
So:
- a middleware (BaseAuthManager.get_fastapi_middlewares) turns IAP's `x-goog-iap-jwt-assertion` into that
  bearer token, marked `iap:` so that it is verified as IAP's and nothing else is; whatever Authorization
  the client sent is dropped when IAP spoke (the IAP identity wins over any cookie or token);
- `get_user_from_token` verifies the assertion (airflow_gke_iap.py), maps the e-mail to a role (asking the
  Cloud Identity Groups API about `group:` members, airflow_gke_groups.py) and signs the
  request in as the FAB user named by that e-mail, created or re-roled on the fly; every other token is
  FAB's own (the break-glass admin through `kubectl port-forward`, which carries no IAP header).
Authorization stays FAB's: the roles are FAB's Admin/Op/User/Viewer with their stock permissions.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from airflow.configuration import conf
from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager
from airflow.utils.session import create_session
from jwt import InvalidTokenError
from sqlalchemy import or_, select
from werkzeug.security import generate_password_hash

import airflow_gke_groups as groups
import airflow_gke_iap as iap

log = logging.getLogger(__name__)
SECTION = "iap_auth"
IAP_BEARER_PREFIX = "iap:"  # not a JWT character: only the middleware writes it
_HEADER = iap.IAP_HEADER.encode()


class IapAssertionMiddleware:
    """ASGI: IAP's assertion becomes the request's bearer credential (a duplicate header fails closed)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            assertions = [value for name, value in scope["headers"] if name.lower() == _HEADER]
            if assertions:
                token = assertions[0] if len(assertions) == 1 else b"duplicate-assertions"
                headers = [(n, v) for n, v in scope["headers"] if n.lower() != b"authorization"]
                scope = {**scope, "headers": [*headers, (b"authorization", b"Bearer iap:" + token)]}
        await self.app(scope, receive, send)


def project_number() -> str:
    """[iap_auth] project_number, else the metadata server's (the GKE metadata server serves it)."""
    number = conf.get(SECTION, "project_number", fallback="")
    if number:
        return number
    import urllib.request
    request = urllib.request.Request(
        f"http://{groups.metadata_host()}/computeMetadata/v1/project/numeric-project-id",
        headers={"Metadata-Flavor": "Google"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read().decode().strip()


class IapFabAuthManager(FabAuthManager):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._verifier: iap.IapVerifier | None = None
        self._role_map = iap.parse_role_map(conf.get(SECTION, "role_map", fallback="{}"))
        self._user_ids = iap.TtlCache(ttl=60)
        self._in_group = groups.group_check(
            self._role_map, conf.get(SECTION, "cloud_identity_url", fallback=groups.CLOUD_IDENTITY_URL))

    def get_fastapi_middlewares(self):
        return [*super().get_fastapi_middlewares(), (IapAssertionMiddleware, {})]

    def verifier(self) -> iap.IapVerifier:
        if self._verifier is None:
            audience = iap.audience_pattern(project_number(), conf.get(SECTION, "backend_service_id", fallback=""))
            self._verifier = iap.IapVerifier(conf.get(SECTION, "jwks_url", fallback=iap.GOOGLE_IAP_JWKS_URL),
                                             audience)
        return self._verifier

    async def get_user_from_token(self, token: str):
        if not token.startswith(IAP_BEARER_PREFIX):
            return await super().get_user_from_token(token)
        claims = self.verifier().verify(token[len(IAP_BEARER_PREFIX):])
        if self._in_group is None:
            role = iap.role_for(claims, self._role_map)
        else:  # Cloud Identity calls block for up to seconds: off the event loop that serves every request
            role = await asyncio.to_thread(iap.role_for, claims, self._role_map, self._in_group)
        if role is None:
            log.warning("IAP let %s in, but airflow-gke:uiAccess gives it no Airflow role", claims["email"])
            raise InvalidTokenError(f"{claims['email']} has no Airflow role")
        return self.deserialize_user({"sub": str(self._user_id(claims["email"].lower(), role))})

    def _user_id(self, email: str, role_name: str) -> int:
        cached = self._user_ids.get((email, role_name))
        if cached is not None:
            return cached
        from airflow.providers.fab.auth_manager.models import Role, User

        with create_session() as session:
            users = session.scalars(select(User).where(or_(User.username == email, User.email == email))).all()
            if any(u.username != email for u in users):  # e.g. the break-glass admin's own e-mail: never taken over
                raise InvalidTokenError(f"{email} belongs to a user not managed by IAP sign-in")
            role = session.scalar(select(Role).where(Role.name == role_name))
            if role is None:
                raise InvalidTokenError(f"role {role_name} does not exist")
            user = users[0] if users else None
            if user is None:
                user = User(username=email, email=email, first_name=email.split("@")[0], last_name="(IAP)",
                            active=True, password=generate_password_hash(secrets.token_urlsafe(32)))
                session.add(user)
                log.info("IAP sign-in: created %s as %s", email, role_name)
            elif not user.active:
                raise InvalidTokenError(f"{email} is deactivated in Airflow")
            if [r.name for r in user.roles] != [role_name]:  # the map is the truth: demotions apply too
                user.roles = [role]
            session.flush()
            user_id = user.id
        self.cache.pop(user_id, None)  # FAB's deserialize_user memo must not serve the old roles
        self._user_ids.put((email, role_name), user_id)
        return user_id
