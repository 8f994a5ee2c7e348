"""IAP sign-in: the assertion verification and the e-mail -> role map that run inside the api-server
(auth/airflow_gke_iap.py), with test-signed tokens and a local JWK set."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.iap_tokens import AUDIENCE, PROJECT_NUMBER, JwkServer, Signer, iap, unsigned


@pytest.fixture(scope="module")
def google():
    return Signer()


@pytest.fixture
def keys(tmp_path):
    server = JwkServer(tmp_path)
    yield server
    server.close()


@pytest.fixture
def verifier(google, keys):
    return iap.IapVerifier(keys.write(google), iap.audience_pattern(PROJECT_NUMBER))


def test_a_token_iap_signed_for_this_project_is_accepted(google, verifier):
    claims = verifier.verify(google.token("ana@example.com"))
    assert claims["email"] == "ana@example.com" and claims["aud"] == AUDIENCE


@pytest.mark.parametrize("case", ["expired", "wrong audience", "other project", "wrong issuer", "no email",
                                  "alg none", "HS256 with the public key", "another key", "unknown kid",
                                  "garbage"])
def test_each_bad_token_is_refused(google, verifier, case):
    other = Signer()  # same kid, another private key: a forged signature
    now = int(time.time())
    token = {
        "expired": lambda: google.token(exp=now - 3600, iat=now - 4200),
        "wrong audience": lambda: google.token(aud="/projects/123456789012/global/backendServices/x"),
        "other project": lambda: google.token(aud="/projects/999999999999/global/backendServices/4242424242"),
        "wrong issuer": lambda: google.token(iss="https://accounts.google.com"),
        "no email": lambda: google.token(email=None),
        "alg none": lambda: unsigned(google.token()),
        "HS256 with the public key": lambda: jwt.encode(
            jwt.decode(google.token(), options={"verify_signature": False}), "secret-guess", algorithm="HS256",
            headers={"kid": google.kid}),
        "another key": lambda: other.token(),
        "unknown kid": lambda: Signer(kid="rotated-away").token(),
        "garbage": lambda: "not-a-jwt",
    }[case]()
    with pytest.raises(jwt.InvalidTokenError):
        verifier.verify(token)


def test_an_expired_token_says_so(google, verifier):
    # The api-server answers ExpiredSignatureError with 401 (the browser is sent through IAP again), others 403.
    with pytest.raises(jwt.ExpiredSignatureError):
        verifier.verify(google.token(exp=1_000_000, iat=999_000))


# What IAP signs for another IAP-protected backend service of the same project (another app, whose users
# this UI's uiAccess may not name): only the service id differs from AUDIENCE.
OTHER_BACKEND = f"/projects/{PROJECT_NUMBER}/global/backendServices/5151515151"


def test_a_pinned_backend_service_refuses_the_projects_other_services(google, keys):
    # airflow-gke:uiBackendServiceId -> AIRFLOW__IAP_AUTH__BACKEND_SERVICE_ID -> this pattern
    # (auth/airflow_gke_auth_manager.py `verifier`).
    pinned = iap.IapVerifier(keys.write(google),
                             iap.audience_pattern(PROJECT_NUMBER, "4242424242"))
    assert pinned.verify(google.token())["aud"] == AUDIENCE
    for audience in (OTHER_BACKEND, f"/projects/{PROJECT_NUMBER}/global/backendServices/1",
                     AUDIENCE + "0", AUDIENCE[:-1]):  # a longer or shorter id is another service, not a prefix
        # IapTokenError is an InvalidTokenError other than an expiry: the api-server answers 403.
        with pytest.raises(iap.IapTokenError, match="not this backend service"):
            pinned.verify(google.token(aud=audience))


def test_unpinned_another_backend_service_of_the_project_is_accepted(google, verifier):
    """The residual risk while airflow-gke:uiBackendServiceId is unset (the program warns): an assertion IAP
    signed for another IAP app of the project verifies here too, if replayed past IAP (from in the cluster)."""
    assert verifier.verify(google.token(aud=OTHER_BACKEND))["aud"] == OTHER_BACKEND


def test_keys_are_fetched_once_and_refetched_for_a_new_kid(google, keys):
    verifier = iap.IapVerifier(keys.write(google), iap.audience_pattern(PROJECT_NUMBER), refetch_cooldown=0)
    verifier.verify(google.token())
    keys.path.write_text('{"keys": []}')
    verifier.verify(google.token())  # served from the cache
    rotated = Signer(kid="next-key")
    keys.write(google, rotated)
    assert verifier.verify(rotated.token("bo@example.com"))["email"] == "bo@example.com"


ROLE_MAP = {"Admin": ["user:Ana@example.com"], "Op": ["serviceAccount:ci@p.iam.gserviceaccount.com"],
            "Viewer": ["domain:example.com", "group:data@example.com"]}


@pytest.mark.parametrize("claims, role", [
    ({"email": "ana@example.com", "hd": "example.com"}, "Admin"),  # highest of Admin (user) and Viewer (domain)
    ({"email": "bo@example.com", "hd": "example.com"}, "Viewer"),
    ({"email": "ci@p.iam.gserviceaccount.com"}, "Op"),
    ({"email": "eve@example.com"}, None),  # the address ends in the domain, the account is not the domain's
    ({"email": "eve@other.org", "hd": "other.org"}, None),
])
def test_the_verified_principal_gets_the_highest_role_that_names_it(claims, role):
    assert iap.role_for(claims, ROLE_MAP) == role


def test_group_members_get_a_role_only_through_the_group_check():
    claims = {"email": "cy@partner.org", "hd": "partner.org"}
    assert iap.role_for(claims, ROLE_MAP) is None
    assert iap.role_for(claims, ROLE_MAP, in_group=lambda e, g: (e, g) == ("cy@partner.org", "data@example.com")) \
        == "Viewer"


def test_the_role_map_refuses_unknown_roles():
    with pytest.raises(ValueError):
        iap.parse_role_map('{"Superuser": ["user:a@b.co"]}')
    assert iap.parse_role_map('{"Viewer": ["user:a@b.co"]}') == {"Viewer": ["user:a@b.co"]}
