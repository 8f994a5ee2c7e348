"""airflow-gke:uiAccess: validated before any resource, one IAP grant per member, and the api-server
switched to the IAP auth manager with the role map and its modules (only when someone is to sign in)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from components.config import ConfigError, load_stack_config
from components.airflow.pod.iap_sign_in import backend_policy_iap
from components.ui_access import IAP_ACCESSOR_ROLE, iap_grants, ui_access_apis
from tests.conftest import run_stack
from tests.unit.test_config import assert_valid_set_command, config_with, load, problem_for

GRANT = "gcp:iap/webTypeComputeIamMember:WebTypeComputeIamMember"
HOST = "airflow.acme-data.io"
ACCESS = {"Admin": ["user:ana@example.com"], "Op": ["serviceAccount:ci@acme-data-123.iam.gserviceaccount.com"],
          "Viewer": ["domain:example.com", "group:data@example.com", "user:ana@example.com"]}


def test_a_valid_map_is_kept_in_role_order():
    access = dict(load(uiAccess=json.dumps(ACCESS), uiHost=HOST).airflow.ui_access)
    assert list(access) == ["Viewer", "Op", "Admin"]
    assert access["Viewer"] == ("domain:example.com", "group:data@example.com", "user:ana@example.com")


@pytest.mark.parametrize("value, key", [
    ({"Superuser": ["user:a@example.com"]}, "uiAccess.Superuser"),
    ({"Viewer": ["ana@example.com"]}, "uiAccess.Viewer[0]"),  # no prefix
    ({"Viewer": ["user:ana"]}, "uiAccess.Viewer[0]"),  # not an e-mail
    ({"Viewer": ["domain:Example"]}, "uiAccess.Viewer[0]"),
    ({"Viewer": ["allUsers"]}, "uiAccess.Viewer[0]"),  # IAP for anyone: not a member this key takes
    ({"Viewer": ["group:a@example.com", "robot:x@example.com"]}, "uiAccess.Viewer[1]"),
    ({"Viewer": "user:a@example.com"}, "uiAccess.Viewer"),
    (["user:a@example.com"], "uiAccess"),
])
def test_a_bad_map_fails_before_any_resource_naming_key_value_and_fix(value, key):
    with pytest.raises(ConfigError) as info:
        load_stack_config(config_with(uiAccess=json.dumps(value), uiHost=HOST))
    problem = problem_for(info.value, f"airflow-gke:{key}")
    assert "Fix: pulumi config" in problem
    assert_valid_set_command(problem, f"airflow-gke:{key.split('[')[0].split('.')[0]}")


def test_sign_in_needs_the_front_door():
    with pytest.raises(ConfigError) as info:
        load_stack_config(config_with(uiAccess=json.dumps(ACCESS)))
    assert_valid_set_command(problem_for(info.value, "airflow-gke:uiHost"), "airflow-gke:uiHost")
    assert not load(uiAccess="{}").airflow.ui_access


def test_each_member_gets_iap_access_once_whatever_its_roles():
    grants = iap_grants(tuple((r, tuple(m)) for r, m in ACCESS.items()))
    assert sorted(g["member"] for g in grants) == sorted(set(sum(ACCESS.values(), [])))
    assert {g["role"] for g in grants} == {IAP_ACCESSOR_ROLE}
    assert "condition" not in grants[0]
    hosted = iap_grants((("Viewer", ("user:a@example.com",)),), host="airflow.example.com")
    assert hosted[0]["condition"]["expression"] == 'request.host == "airflow.example.com"'


def test_the_backend_policy_turns_iap_on_only_when_someone_signs_in(signed_in):
    policy = next(m for m in _objects(signed_in) if m["kind"] == "GCPBackendPolicy")
    assert policy["spec"]["default"]["iap"] == {"enabled": True}
    signed = load(uiHost=HOST, uiAccess=json.dumps(ACCESS)).airflow
    assert backend_policy_iap(dataclasses.replace(signed, ui_access={})) is None


@pytest.fixture(scope="module")
def signed_in():
    return run_stack("dev", uiAccess=json.dumps(ACCESS), uiHost=HOST)


def test_the_program_grants_every_member_and_enables_the_iap_api(signed_in):
    grants = signed_in.of_type(GRANT)
    assert sorted(g.inputs["member"] for g in grants) == sorted(set(sum(ACCESS.values(), [])))
    assert all(g.inputs["role"] == IAP_ACCESSOR_ROLE and g.inputs["project"] for g in grants)
    # Limited to this UI's host: IAP grants on projects/P/iap_web/compute cover every IAP backend of the project.
    assert {g.inputs["condition"]["expression"] for g in grants} == {f'request.host == "{HOST}"'}
    apis = {r.inputs["service"] for r in signed_in.of_type("gcp:projects/service:Service")}
    assert "iap.googleapis.com" in apis
    assert "cloudidentity.googleapis.com" in apis  # the api-server asks it about group:data@example.com


def test_the_cloud_identity_api_is_enabled_only_for_group_members():
    assert ui_access_apis({"Viewer": ("group:data@example.com",)}) == ("iap.googleapis.com",
                                                                       "cloudidentity.googleapis.com")
    assert ui_access_apis({"Viewer": ("user:a@example.com", "domain:example.com")}) == ("iap.googleapis.com",)
    assert ui_access_apis({}) == ()


def test_without_uiaccess_nothing_changes(dev):
    assert not dev.of_type(GRANT)
    assert not {"iap.googleapis.com", "cloudidentity.googleapis.com"} & {
        r.inputs["service"] for r in dev.of_type("gcp:projects/service:Service")}
    api = _container(dev, "api-server")
    assert _env(api)["AIRFLOW__CORE__AUTH_MANAGER"].endswith("FabAuthManager")
    assert "AIRFLOW__IAP_AUTH__ROLE_MAP" not in _env(api)


def _objects(capture):
    return [m for _, m in capture.kubernetes_objects()]


def _container(capture, name: str) -> dict:
    deployment = next(m for m in _objects(capture) if m["kind"] == "Deployment" and m["metadata"]["name"] == "airflow")
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def _env(container: dict) -> dict:
    return {e["name"]: e.get("value") for e in container["env"]}


def test_the_api_server_signs_in_through_iap_with_the_map_and_its_modules(signed_in):
    api = _container(signed_in, "api-server")
    env = _env(api)
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == "airflow_gke_auth_manager.IapFabAuthManager"
    assert json.loads(env["AIRFLOW__IAP_AUTH__ROLE_MAP"]) == {r: list(dict.fromkeys(m)) for r, m in ACCESS.items()}
    config_map = next(m for m in _objects(signed_in) if m["kind"] == "ConfigMap")
    mounted = {m["mountPath"]: m["subPath"] for m in api["volumeMounts"] if m["name"] == "config"}
    for module in ("airflow_gke_iap.py", "airflow_gke_groups.py", "airflow_gke_auth_manager.py"):
        assert mounted[f"/opt/airflow/config/{module}"] == module and module in config_map["data"]
    assert "class IapFabAuthManager" in config_map["data"]["airflow_gke_auth_manager.py"]
    # The task pods get the same auth manager setting, so they need the module too.
    template = yaml.safe_load(config_map["data"]["pod_template_file.yaml"])
    base = template["spec"]["containers"][0]
    assert _env(base)["AIRFLOW__CORE__AUTH_MANAGER"] == env["AIRFLOW__CORE__AUTH_MANAGER"]
    assert "/opt/airflow/config/airflow_gke_auth_manager.py" in {m["mountPath"] for m in base["volumeMounts"]}


# --- IAP's OAuth client: Google-managed by default, the team's own with iapOAuthClientId/-Secret -------------

CLIENT_ID = "123456789012-abc123def.apps.googleusercontent.com"


@pytest.fixture(scope="module")
def own_client():
    return run_stack("dev", uiAccess=json.dumps(ACCESS), uiHost=HOST, iapOAuthClientId=CLIENT_ID,
                     iapOAuthClientSecret="GOCSPX-test-client-secret")


def test_an_own_oauth_client_goes_to_the_backend_policy_with_its_secret_beside_it(own_client):
    from tests.crd_schema import validate
    objects = _objects(own_client)
    policy = next(m for m in objects if m["kind"] == "GCPBackendPolicy")
    iap = policy["spec"]["default"]["iap"]
    assert iap["enabled"] is True and iap["clientID"] == CLIENT_ID
    validate(policy)  # the vendored CRD's own schema
    # GKE's controller reads the client secret from the Secret the policy names, in the policy's namespace.
    secret = next(m for m in objects if m["kind"] == "Secret" and m["metadata"]["name"] == iap["oauth2ClientSecret"]["name"])
    assert secret["metadata"]["namespace"] == policy["metadata"]["namespace"]
    assert secret["stringData"] == {"key": "GOCSPX-test-client-secret"}
    # Only the Gateway controller reads it: no pod mounts it or takes it as env.
    assert iap["oauth2ClientSecret"]["name"] not in json.dumps([m for m in objects if m["kind"] != "Secret"
                                                               and m["kind"] != "GCPBackendPolicy"])


def test_the_google_managed_client_needs_no_secret_object(signed_in):
    assert not [m for m in _objects(signed_in) if m["kind"] == "Secret" and "iap" in m["metadata"]["name"]]


@pytest.mark.parametrize("overrides, secrets, key", [
    ({"iapOAuthClientId": CLIENT_ID}, {}, "iapOAuthClientSecret"),  # half a client
    ({}, {"iapOAuthClientSecret": "s3cret"}, "iapOAuthClientId"),
    ({"iapOAuthClientId": "abc123.apps.googleusercontent.com"}, {"iapOAuthClientSecret": "s3cret"}, "iapOAuthClientId"),
    ({"iapOAuthClientId": CLIENT_ID, "uiAccess": "{}"}, {"iapOAuthClientSecret": "s3cret"}, "iapOAuthClientId"),
])
def test_a_half_or_unused_oauth_client_fails_naming_the_key(overrides, secrets, key):
    config = {"uiAccess": json.dumps(ACCESS), "uiHost": HOST, **overrides}
    with pytest.raises(ConfigError) as info:
        load_stack_config(config_with(secrets=secrets, **config))
    problem = problem_for(info.value, f"airflow-gke:{key}")
    assert "Fix: pulumi config" in problem


def test_a_whole_oauth_client_is_read():
    airflow = load_stack_config(config_with(secrets={"iapOAuthClientSecret": "s3cret"}, uiAccess=json.dumps(ACCESS),
                                            uiHost=HOST, iapOAuthClientId=CLIENT_ID)).airflow
    assert airflow.iap_client_id == CLIENT_ID and airflow.iap_client_secret is not None


# --- the audience IAP's assertion must name: airflow-gke:uiBackendServiceId ----------------------------------

BACKEND_ID = "4242424242"
BACKEND_ENV = "AIRFLOW__IAP_AUTH__BACKEND_SERVICE_ID"


@pytest.fixture(scope="module")
def pinned():
    return run_stack("dev", uiAccess=json.dumps(ACCESS), uiHost=HOST, uiBackendServiceId=BACKEND_ID)


def _with_backend_env(capture) -> dict[str, str]:
    """pod/container -> the env value, for every container of every pod the stack renders (task pod included)."""
    from tests.unit.container_helpers import env, every_container
    from tests.unit.test_task_access import pod_specs
    return {f"{pod}/{c['name']}": env(c)[BACKEND_ENV]["value"] for pod, spec in pod_specs(capture).items()
            for c in every_container(spec) if BACKEND_ENV in env(c)}


def test_a_pinned_backend_service_reaches_the_api_server_only(pinned):
    # Only the api-server verifies IAP's assertions (auth/airflow_gke_auth_manager.py `verifier`).
    assert _with_backend_env(pinned) == {"Deployment/airflow/api-server": BACKEND_ID}
    assert load(uiAccess=json.dumps(ACCESS), uiHost=HOST, uiBackendServiceId=BACKEND_ID).airflow \
        .ui_backend_service_id == BACKEND_ID


def test_unpinned_no_container_gets_the_variable(signed_in):
    assert _with_backend_env(signed_in) == {}


@pytest.mark.parametrize("value", ["abc", "42a", "-42", "0042", "42 42", "1" * 21,
                                   "projects/1/global/backendServices/42"])
def test_a_backend_service_id_that_is_not_digits_fails_before_any_resource(value):
    with pytest.raises(ConfigError) as info:
        load_stack_config(config_with(uiAccess=json.dumps(ACCESS), uiHost=HOST, uiBackendServiceId=value))
    problem = problem_for(info.value, "airflow-gke:uiBackendServiceId")
    assert problem.startswith(f"airflow-gke:uiBackendServiceId = {value!r} is not allowed: the numeric id"), problem
    assert "gcloud compute backend-services describe" in problem
    assert_valid_set_command(problem, "airflow-gke:uiBackendServiceId")


@pytest.mark.parametrize("overrides", [{}, {"uiHost": HOST}, {"uiHost": HOST, "uiAccess": "{}"}])
def test_a_backend_service_id_without_iap_sign_in_is_refused(overrides):
    # Nothing verifies an audience when nobody signs in through IAP: a pin there would be silently unused.
    with pytest.raises(ConfigError) as info:
        load_stack_config(config_with(uiBackendServiceId=BACKEND_ID, **overrides))
    problem = problem_for(info.value, "airflow-gke:uiBackendServiceId")
    assert "airflow-gke:uiAccess" in problem and BACKEND_ID in problem
    assert assert_valid_set_command(problem, "airflow-gke:uiBackendServiceId")[2] == "rm"


def _audience_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "airflow-gke:uiBackendServiceId is unset" in r.getMessage()]


def test_unpinned_iap_sign_in_warns_once_with_the_second_up_step(caplog):
    import logging
    with caplog.at_level(logging.WARNING):
        run_stack("dev", uiAccess=json.dumps(ACCESS), uiHost=HOST)
    (warning,) = _audience_warnings(caplog)
    assert "ANY IAP-protected backend service of this project" in warning
    assert 'gcloud compute backend-services list --filter="name~airflow-ui"' in warning
    assert ("pulumi config set airflow-gke:uiBackendServiceId $(gcloud compute backend-services describe NAME "
            "--global --format='value(id)') && pulumi up") in warning


@pytest.mark.parametrize("overrides", [{"uiAccess": json.dumps(ACCESS), "uiHost": HOST, "uiBackendServiceId": BACKEND_ID},
                                       {}])  # pinned, or no IAP (no front door: uiHost needs uiAccess)
def test_no_audience_warning_when_pinned_or_without_iap(caplog, overrides):
    import logging
    with caplog.at_level(logging.WARNING):  # the program under the engine's mocks: where pulumi.log reaches logging
        run_stack("dev", **overrides)
    assert _audience_warnings(caplog) == []
