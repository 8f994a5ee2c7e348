"""Prod as a team runs it (issue 17's "done when"): one preview with uiHost, uiAccess, workerRoles, the
Secret Manager backend (prod's default) and airflowConfig renders the front door, the grants and the
settings together; and the front door keys the committed Pulumi.prod.yaml leaves commented out work once
uncommented (they cannot rot there)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from components.airflow.pod.settings_env import SECRET_MANAGER_BACKEND
from components.config import ConfigError
from components.config.airflow_overrides import OWNED, OWNED_SECTIONS, env_name
from components.identity import SECRET_ACCESSOR_ROLE
from components.ui_access import IAP_ACCESSOR_ROLE
from preview.harness import Capture
from tests.conftest import run_stack, stack_settings
from tests.golden_manifests import MATRIX
from tests.unit.container_helpers import env
from tests.unit.test_task_access import PROJECT_MEMBER, airflow_containers, email_of, grants

ROOT = Path(__file__).resolve().parents[2]
STACK, TEAM = MATRIX["front-door"]
HOST = TEAM["uiHost"]


@pytest.fixture(scope="module")
def team() -> Capture:
    return run_stack(STACK, **TEAM)


def _objects(capture: Capture, kind: str) -> list[dict]:
    return [m for _, m in capture.kubernetes_objects() if m["kind"] == kind]


def test_the_front_door_serves_https_behind_iap(team):
    gateway, = _objects(team, "Gateway")
    assert {(listener["protocol"], listener["port"]) for listener in gateway["spec"]["listeners"]} == \
        {("HTTPS", 443), ("HTTP", 80)}
    policy, = _objects(team, "GCPBackendPolicy")
    assert policy["spec"]["default"]["iap"]["enabled"] is True
    assert {"ui_address", "ui_dns_record"} <= set(team.outputs)


def test_every_member_gets_iap_access_and_the_tasks_their_roles(team):
    members = {m for ms in json.loads(TEAM["uiAccess"]).values() for m in ms}
    iap = {r.inputs["member"] for r in team.of_type("gcp:iap/webTypeComputeIamMember:WebTypeComputeIamMember")
           if r.inputs["role"] == IAP_ACCESSOR_ROLE}
    assert iap == members
    assert set(grants(team, email_of(team, "airflow-worker"))) == set(json.loads(TEAM["workerRoles"]))
    secret_grant = grants(team, email_of(team, "airflow-airflow"))[SECRET_ACCESSOR_ROLE]
    assert "resource.name.startsWith" in secret_grant["condition"]["expression"]


def test_the_settings_reach_the_airflow_containers(team):
    containers = airflow_containers(team)
    (option, value), = json.loads(TEAM["airflowConfig"]).items()
    name = "AIRFLOW__" + "__".join(option.upper().split("."))
    assert containers and all(env(c)[name]["value"] == value for c in containers.values())
    api_server = next(c for key, c in containers.items() if key.endswith("/api-server"))
    assert env(api_server)["AIRFLOW__SECRETS__BACKEND"]["value"] == SECRET_MANAGER_BACKEND
    assert env(api_server)["AIRFLOW__API__BASE_URL"]["value"] == f"https://{HOST}"


def test_the_stack_passes_the_exposure_policy(team):
    from policy import rules
    assert rules.external_exposure_findings([(r.type, r.name, r.inputs) for r in team.resources]) == []


def test_prods_commented_front_door_keys_work_once_uncommented():
    text = (ROOT / "Pulumi.prod.yaml").read_text()
    commented = re.findall(r"^  # (airflow-gke:ui(?:Host|Access): .*)$", text, re.M)
    assert len(commented) == 2, commented
    keys = yaml.safe_load("\n".join(commented))
    overrides = {key.split(":", 1)[1]: json.dumps(value) if isinstance(value, dict) else value
                 for key, value in keys.items()}
    # the comment says: uncomment these and delete baseUrl
    airflow = stack_settings("prod", baseUrl="", **overrides).airflow
    assert airflow.front_door.ui_host == overrides["uiHost"] and airflow.ui_access
    assert airflow.base_url == f"https://{overrides['uiHost']}"


def test_every_airflow_setting_the_team_stack_renders_is_owned_or_the_sign_in_sections(team):
    """The IAP stack renders the auth manager's own section besides OWNED and the user's airflowConfig; the
    latter cannot reach the former."""
    rendered = {name for c in airflow_containers(team).values() for name in env(c) if name.startswith("AIRFLOW__")}
    sign_in = {name for name in rendered for section in OWNED_SECTIONS if name.startswith(f"AIRFLOW__{section.upper()}__")}
    users = {env_name(key) for key in json.loads(TEAM["airflowConfig"])}
    assert sign_in and rendered - sign_in - users - {env_name(key) for key in OWNED} == set()
    with pytest.raises(ConfigError) as info:
        stack_settings(STACK, **{**TEAM, "airflowConfig": json.dumps({"iap_auth.role_map": "{}"})})
    assert [p for p in info.value.problems if p.startswith("airflow-gke:airflowConfig") and "iap_auth" in p
            and "airflow-gke:uiAccess" in p]
