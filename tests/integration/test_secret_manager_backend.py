"""`secretsBackend: secret-manager` with the real Google provider: Airflow 3.3.2 builds the backend the stack
renders (class and kwargs from the rendered Deployment's env), and that backend reads connections and
variables from a Secret Manager stand-in, asking only for names the stack's IAM grant allows.

Real: Airflow 3.3.2 and apache-airflow-providers-google 22.4.0 (requirements-airflow-google.txt): Airflow
instantiates `CloudSecretManagerBackend` from AIRFLOW__SECRETS__BACKEND / _BACKEND_KWARGS (airflow.configuration
`initialize_secrets_backends`), the provider gets credentials with `google.auth.default()` (credentials_provider.py
`_get_credentials_using_adc`, as on GKE), builds `SecretManagerServiceClient(credentials=..., client_info=...)`
(secret_manager_client.py) with its default endpoint secretmanager.googleapis.com:443, and the client speaks
gRPC over TLS with a bearer token refreshed by google-auth, with its own retry and error mapping (NOT_FOUND -> None).

Stood in (tests/integration/secret_manager_stand_in.py), nothing patched in the client: GKE's metadata
server, from which the pod's Workload Identity token comes, is a loopback HTTP server google-auth finds through
GCE_METADATA_HOST / GCE_METADATA_IP (the provider's `authorized_user` route cannot be used: google-auth always
replaces its token_uri with Google's); the connection goes through a loopback HTTP CONNECT proxy named by gRPC
core's `grpc_proxy` variable (the client allows no endpoint override from the backend's kwargs, and DNS is
left alone); the server is a loopback gRPC server with a self-signed certificate for the real name, trusted
through GRPC_DEFAULT_SSL_ROOTS_FILE_PATH. Not covered: Google's IAM decision itself; the requested names are
held to the condition the stack renders, evaluated with CEL, with the project number Secret Manager uses.

The stack is rendered with secretsPrefix team-a: the provider's default prefixes (airflow-connections,
airflow-variables) equal prod's default ones, so only a non-default prefix shows the rendered kwargs at work."""

from __future__ import annotations

import json
import subprocess

from components.airflow.pod.settings_env import SECRET_MANAGER_BACKEND
from components.identity import SECRET_ACCESSOR_ROLE
from preview.harness import MOCK_PROJECT_NUMBER
from tests.conftest import run_stack
from tests.unit.test_ci_identity import cel

from .pod import AIRFLOW_VENV, ROOT

STAND_IN = ROOT / "tests" / "integration" / "secret_manager_stand_in.py"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
PREFIX = "team-a"
WAREHOUSE_URI = "postgresql://loader:s3cr%40t@warehouse.internal:5432/analytics"  # Airflow's URI form
WAREHOUSE = {"conn_type": "postgres", "host": "warehouse.internal", "login": "loader", "password": "s3cr@t",
             "port": 5432, "schema": "analytics", "extra": {}}
API_JSON = {"conn_type": "http", "host": "api.example.com", "login": "bot", "password": "p@ss", "port": None,
            "schema": None, "extra": {"timeout": 5}}  # Airflow's JSON form
ACCOUNT = "team-a-airflow@my-airflow-project-prod.iam.gserviceaccount.com"

# Runs in .venv-airflow with the rendered [secrets] env: the backend is the one Airflow builds from it.
CLIENT = """
import json
from airflow.configuration import ensure_secrets_loaded
from airflow.models.connection import Connection

def fields(c):
    return {"conn_type": c.conn_type, "host": c.host, "login": c.login, "password": c.password, "port": c.port,
            "schema": c.schema, "extra": c.extra_dejson}

backend = ensure_secrets_loaded()[0]
print(json.dumps({
    "backend": type(backend).__module__ + "." + type(backend).__qualname__,
    "api": fields(backend.get_connection("api")),
    "warehouse": fields(Connection.get_connection_from_secrets("warehouse")),  # the execution API's call
    "env": backend.get_variable("env"),
    "missing_connection": backend.get_conn_value("absent"),
    "missing_variable": backend.get_variable("absent"),
    "config": backend.get_config("sql_alchemy_conn"),
}))
"""


def rendered():
    capture = run_stack("prod", secretsPrefix=PREFIX)
    deployment = next(m for _, m in capture.kubernetes_objects()
                      if m["kind"] == "Deployment" and m["metadata"]["name"] == "airflow")
    scheduler = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "scheduler")
    env = {e["name"]: e["value"] for e in scheduler["env"] if e["name"].startswith("AIRFLOW__SECRETS__")}
    grant, = (r for r in capture.of_type(PROJECT_MEMBER) if r.inputs["role"] == SECRET_ACCESSOR_ROLE)
    return env, grant.inputs["condition"]["expression"]


def granted(expression: str, name: str, project: str) -> bool:
    """Whether the rendered IAM condition allows `name`: Secret Manager names resources by project number."""
    by_number = name.replace(f"projects/{project}/", f"projects/{MOCK_PROJECT_NUMBER}/", 1)
    return cel(expression, {"resource": {"name": by_number, "type": "secretmanager.googleapis.com/SecretVersion"}})


def secret(project: str, secret_id: str) -> str:
    return f"projects/{project}/secrets/{secret_id}"


def run_against_stand_in(tmp_path, stored: dict[str, str], env: dict[str, str], project: str) -> tuple[dict, list]:
    (tmp_path / "secrets.json").write_text(json.dumps(stored))
    record, cert = tmp_path / "record.jsonl", tmp_path / "stand-in.pem"
    python = str(AIRFLOW_VENV / "bin" / "python")
    stand_in = subprocess.Popen([python, str(STAND_IN), str(tmp_path / "secrets.json"), str(record), str(cert),
                                 project, ACCOUNT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ports = json.loads(stand_in.stdout.readline())
        metadata = f"127.0.0.1:{ports['metadata_port']}"
        (tmp_path / "gcloud").mkdir()
        result = subprocess.run([python, "-c", CLIENT], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                                env={"PATH": "/usr/bin:/bin", "AIRFLOW_HOME": str(tmp_path / "home"), **env,
                                     "GCE_METADATA_HOST": metadata, "GCE_METADATA_IP": metadata,
                                     "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),  # no gcloud credentials here
                                     "grpc_proxy": f"http://127.0.0.1:{ports['proxy_port']}",
                                     "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(cert)})
    finally:
        stand_in.communicate(timeout=30)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), \
        [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def test_the_rendered_backend_reads_connections_and_variables_from_secret_manager(tmp_path):
    env, condition = rendered()
    kwargs = json.loads(env["AIRFLOW__SECRETS__BACKEND_KWARGS"])
    project, sep = kwargs["project_id"], kwargs["sep"]
    stored = {secret(project, f"{kwargs['connections_prefix']}{sep}warehouse"): WAREHOUSE_URI,
              secret(project, f"{kwargs['connections_prefix']}{sep}api"): json.dumps(API_JSON),
              secret(project, f"{kwargs['variables_prefix']}{sep}env"): "production"}
    # Decoys a wrong prefix or separator, or the provider's default prefixes, would read instead.
    stored.update({secret(project, wrong): "wrong" for wrong in (
        "warehouse", "airflow-connections-warehouse", f"{PREFIX}-connections_warehouse", "airflow-variables-env",
        "airflow-config-sql_alchemy_conn")})
    read, events = run_against_stand_in(tmp_path, stored, env, project)

    assert read["backend"] == env["AIRFLOW__SECRETS__BACKEND"] == SECRET_MANAGER_BACKEND
    assert read["warehouse"] == WAREHOUSE
    assert read["api"] == API_JSON
    assert read["env"] == "production"
    assert read["missing_connection"] is None and read["missing_variable"] is None and read["config"] is None

    accessed = [e["name"] for e in events if e["event"] == "access"]
    expected = [f"{secret(project, PREFIX + suffix)}/versions/latest" for suffix in (
        "-connections-api", "-connections-warehouse", "-variables-env", "-connections-absent", "-variables-absent")]
    assert accessed == expected  # in call order; nothing else (no config prefix, no decoy) was asked for
    for name in accessed:
        assert granted(condition, name, project), (name, condition)  # the grant covers every name the backend reads
    assert not granted(condition, f"{secret(project, 'airflow-connections-warehouse')}/versions/latest", project)

    issued = {f"Bearer {e['access_token']}" for e in events if e.get("access_token")}
    assert issued and all(e["flavor"] == "Google" for e in events if e["event"] == "metadata")
    assert all(e["authorization"] in issued for e in events if e["event"] == "access")
    connects = {e["target"] for e in events if e["event"] == "connect"}
    assert connects == {"secretmanager.googleapis.com:443"}, connects  # the client's real endpoint, tunnelled here

