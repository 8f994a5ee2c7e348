"""IAP sign-in on real Airflow 3.3.2: the api-server rendered with airflow-gke:uiAccess, started from its
rendered command with the IAP auth manager (shipped through the ConfigMap), fed test-signed IAP assertions.
The deviations: the JWK set URL points at a loopback server holding the test key instead of
www.gstatic.com, the project number is given (the metadata server answers it on GKE), and the Cloud Identity
Groups API and the metadata server's token endpoint are a loopback stand-in (tests/cloud_identity_stub.py)
named by `[iap_auth] cloud_identity_url` and google-auth's GCE_METADATA_HOST: settings the production path
reads too."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from preview.harness import run_program
from preview.render import write_outputs
from tests.cloud_identity_stub import ACCESS_TOKEN, CloudIdentityStub, Group
from tests.conftest import stack_config
from tests.iap_tokens import AUDIENCE, PROJECT_NUMBER, JwkServer, Signer, unsigned

from .harness import API_CONTAINER_PORT, ROOT, admin_credentials, make_pod
from .pod import find, free_port, load_manifests, secret_data, wait_until

OPS_GROUP = "ops@example.com"
ACCESS = {"Admin": ["user:ana@example.com"], "Op": [f"group:{OPS_GROUP}"], "Viewer": ["domain:example.com"]}
# The audience pinned as after the second `pulumi up` (docs/sign-in.md): the test tokens' backend service.
BACKEND_SERVICE_ID = AUDIENCE.rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def signed_in_objects(rendered) -> list[dict]:
    capture = run_program("dev", stack_config("dev", uiAccess=json.dumps(ACCESS), uiHost="airflow.acme-data.io",
                                              uiBackendServiceId=BACKEND_SERVICE_ID))
    _, manifests_dir = write_outputs(capture, ROOT / "build" / "dev-iap")
    objects = load_manifests(manifests_dir)
    # Same stack, same database and secrets as the session's migrated database (mocks are deterministic).
    assert secret_data(find(objects, "Secret", "airflow-secrets")) == secret_data(find(rendered, "Secret",
                                                                                       "airflow-secrets"))
    return objects


@pytest.fixture(scope="module")
def google(tmp_path_factory):
    signer, server = Signer(), JwkServer(tmp_path_factory.mktemp("iap-keys"))
    server.write(signer)
    yield signer, server
    server.close()


@pytest.fixture(scope="module")
def cloud_identity():
    stub = CloudIdentityStub({OPS_GROUP: Group("0ops4242", direct={"cy@partner.org"})})
    yield stub
    stub.close()


@pytest.fixture(scope="module")
def api_server(signed_in_objects, google, cloud_identity, migrated):
    pod = make_pod(signed_in_objects, "Deployment", "airflow", "airflow-iap-pod")
    port = free_port()
    pod.start("api-server", {"AIRFLOW__LOGGING__REMOTE_LOGGING": "False",
                             "AIRFLOW__IAP_AUTH__JWKS_URL": google[1].url,
                             "AIRFLOW__IAP_AUTH__PROJECT_NUMBER": PROJECT_NUMBER,
                             "AIRFLOW__IAP_AUTH__CLOUD_IDENTITY_URL": cloud_identity.api_url,
                             "GCE_METADATA_HOST": cloud_identity.host},
              replace_args={str(API_CONTAINER_PORT): str(port)})
    try:
        wait_until(lambda: pod.probe("api-server", "startupProbe", port_map={API_CONTAINER_PORT: port})[0], 120,
                   what="api-server healthy")
        yield f"http://127.0.0.1:{port}", pod
    finally:
        pod.stop_all()
        print(f"--- api-server log tail ---\n{pod.log_tail('api-server', 30)}")


def call(base: str, method: str, path: str, assertion: str | None = None, bearer: str | None = None,
         body: dict | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if assertion is not None:
        headers["x-goog-iap-jwt-assertion"] = assertion
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    request = urllib.request.Request(base + path, data=json.dumps(body).encode() if body else None,
                                     headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, {"error": error.read().decode(errors="replace")[:500]}


def new_pool(name: str) -> dict:
    return {"name": f"{name}-{time.monotonic_ns()}", "slots": 1}


def test_iap_identities_get_their_mapped_role_and_nothing_else(api_server, google, signed_in_objects):
    base, _ = api_server
    signer = google[0]
    viewer, admin = signer.token("bo@example.com"), signer.token("ana@example.com")

    assert call(base, "GET", "/api/v2/dags")[0] == 401  # nobody without IAP (or an Airflow token)
    assert call(base, "GET", "/api/v2/dags", viewer)[0] == 200
    assert call(base, "POST", "/api/v2/pools", viewer, body=new_pool("viewer"))[0] == 403
    assert call(base, "POST", "/api/v2/dags/any_dag/dagRuns", viewer, body={"logical_date": None})[0] == 403
    assert call(base, "POST", "/api/v2/pools", admin, body=new_pool("admin"))[0] == 201
    status, me = call(base, "GET", "/api/v2/pools?limit=1", admin)
    assert status == 200, me

    bad = {
        "expired": signer.token("ana@example.com", exp=int(time.time()) - 3600, iat=int(time.time()) - 4000),
        "wrong audience": signer.token("ana@example.com", aud="/projects/1/global/backendServices/2"),
        # What IAP signs for another IAP app of this project: refused because uiBackendServiceId pins this one.
        "another backend service of the project": signer.token(
            "ana@example.com", aud=f"/projects/{PROJECT_NUMBER}/global/backendServices/5151515151"),
        "wrong issuer": signer.token("ana@example.com", iss="https://accounts.google.com"),
        "alg none": unsigned(admin),
        "another key": Signer().token("ana@example.com"),
        "no role": signer.token("eve@other.org", hd="other.org"),
        "address in the domain, account not": signer.token("eve@example.com", hd=None),
    }
    statuses = {case: call(base, "GET", "/api/v2/dags", token)[0] for case, token in bad.items()}
    assert statuses == {**{case: 403 for case in bad}, "expired": 401}, statuses

    # The break-glass admin, created by the rendered Job (whose `airflow users` commands load the IAP auth
    # manager from the shipped modules), still signs in with its password (port-forward: no IAP header)...
    job = make_pod(signed_in_objects, "Job", None, "migration-job-iap")
    created = job.run("create-admin-user", {"AIRFLOW__LOGGING__REMOTE_LOGGING": "False"})
    assert created.returncode == 0, created.stderr[-2000:]
    username, password = admin_credentials(signed_in_objects)
    status, body = call(base, "POST", "/auth/token", body={"username": username, "password": password})
    assert status in (200, 201), body
    airflow_token = body["access_token"]
    assert call(base, "POST", "/api/v2/pools", bearer=airflow_token, body=new_pool("breakglass"))[0] == 201
    # ...but when IAP spoke, its identity wins over any token the client adds.
    assert call(base, "POST", "/api/v2/pools", viewer, bearer=airflow_token, body=new_pool("mixed"))[0] == 403


def test_a_group_member_signs_in_with_the_groups_role(api_server, google, cloud_identity):
    base, _ = api_server
    member = google[0].token("cy@partner.org", hd="partner.org")  # named by no user:/domain: entry

    assert call(base, "POST", "/api/v2/pools", member, body=new_pool("op-by-group"))[0] == 201  # Op may
    assert call(base, "GET", "/auth/fab/v1/users", member)[0] == 403  # Admin's user management: Op may not
    assert call(base, "GET", "/auth/fab/v1/users", google[0].token("ana@example.com"))[0] == 200
    asked = cloud_identity.calls("transitive")
    assert asked and asked[-1]["query"]["query"] == ["member_key_id == 'cy@partner.org'"]
    assert {r["authorization"] for r in cloud_identity.requests if r["kind"] != "token"} == {f"Bearer {ACCESS_TOKEN}"}
    assert cloud_identity.calls("token")  # the api-server's own identity, from the metadata server

    cloud_identity.groups[OPS_GROUP].direct.clear()  # removed from the group: the cached answer still holds...
    assert call(base, "GET", "/api/v2/pools?limit=1", member)[0] == 200
    stranger = google[0].token("dan@partner.org", hd="partner.org")  # ...and a non-member gets nothing
    assert call(base, "GET", "/api/v2/dags", stranger)[0] == 403
